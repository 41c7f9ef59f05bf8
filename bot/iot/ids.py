"""The shapes of Alibaba Cloud IDs (JobId, IotInstanceId, ...) and reading one as pasted.

Pure: the grammar (bot/slack), button values (bot/job_ref.py) and the CLI check IDs here
before any API call is made for input that cannot be one.
"""

from __future__ import annotations

import re

# Alibaba's JobIds are letters and digits (26 in the ones seen so far); leave room.
JOB_ID = re.compile(r"^[A-Za-z0-9]{6,64}$")
INSTANCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$")
PRODUCT_KEY = re.compile(r"^[A-Za-z0-9]{4,32}$")
# Alibaba allows letters, digits and - _ @ . : in a DeviceName, 4 to 32 characters;
# a little more room here, so a name from an older product is not refused.
DEVICE_NAME = re.compile(r"^[A-Za-z0-9_@.:\-]{2,64}$")
FIRMWARE_ID = re.compile(r"^[A-Za-z0-9]{2,64}$")
# Quotes, backticks and angle brackets people paste around an ID from docs or chat.
_STRIP = "`'\"“”‘’<>"


def cleaned(raw: str) -> str:
    """An ID as pasted, without the quotes or brackets around it."""
    return raw.strip(_STRIP)


def problem(value: str, pattern: re.Pattern[str]) -> str | None:
    """Why a cleaned value is not an ID of this shape: "masked" (an example from
    Alibaba's documentation, with ``****``), "shape", or None when it is one."""
    if "*" in value:
        return "masked"
    return None if pattern.match(value) else "shape"
