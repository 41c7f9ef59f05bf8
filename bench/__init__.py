"""Benchmarks: ``make bench`` runs bench.run against the IoT emulator and a fake Slack."""
