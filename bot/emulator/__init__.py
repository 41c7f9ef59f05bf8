"""An emulator of the IoT Platform gateway for the OTA read API (tests, benchmarks, demo)."""

from bot.emulator.server import (
    DEMO_ACCESS_KEY_ID,
    DEMO_ACCESS_KEY_SECRET,
    DEMO_SECURITY_TOKEN,
    Call,
    IotEmulator,
)

__all__ = [
    "DEMO_ACCESS_KEY_ID",
    "DEMO_ACCESS_KEY_SECRET",
    "DEMO_SECURITY_TOKEN",
    "Call",
    "IotEmulator",
]
