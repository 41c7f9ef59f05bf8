"""Shared fixtures: the IoT emulator and the fake Slack run as real HTTP servers on
127.0.0.1; tests never reach Alibaba Cloud or Slack."""

from __future__ import annotations

import os

# Alibaba's default credential chain may ask the ECS metadata service; never from tests.
os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
