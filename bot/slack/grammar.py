"""The /otajob command's grammar, as a pure function from text to a request.

/otajob                               usage
/otajob help                          usage
/otajob <JobId> [instance <IotInstanceId>]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Alibaba's JobIds are letters and digits (26 in the ones seen so far); leave room.
JOB_ID = re.compile(r"^[A-Za-z0-9]{6,64}$")
INSTANCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$")
HELP_WORDS = frozenset({"help", "-h", "--help", "?", "usage"})
# Quotes and backticks people paste around an ID from docs or chat.
_STRIP = "`'\"“”‘’<>"


@dataclass(frozen=True)
class ShowHelp:
    pass


@dataclass(frozen=True)
class QueryJob:
    job_id: str
    instance_id: str | None = None


@dataclass(frozen=True)
class BadInput:
    """``reason`` picks the message in templates/bad_input.json.j2; ``value`` is quoted."""

    reason: str  # masked_id | bad_job_id | bad_instance | missing_instance | extra_words
    value: str = ""


Parsed = ShowHelp | QueryJob | BadInput


def check_job_id(raw: str) -> str | BadInput:
    value = raw.strip(_STRIP)
    if "*" in value:
        return BadInput("masked_id", value)
    if not JOB_ID.match(value):
        return BadInput("bad_job_id", value)
    return value


def check_instance_id(raw: str) -> str | BadInput:
    value = raw.strip(_STRIP)
    if "*" in value:
        return BadInput("masked_id", value)
    if not INSTANCE_ID.match(value):
        return BadInput("bad_instance", value)
    return value


def parse_command(text: str | None) -> Parsed:
    words = (text or "").split()
    if not words or words[0].lower() in HELP_WORDS:
        return ShowHelp()
    job_id = check_job_id(words[0])
    if isinstance(job_id, BadInput):
        return job_id
    rest = words[1:]
    instance_id = None
    if rest and rest[0].lower() == "instance":
        if len(rest) < 2:
            return BadInput("missing_instance")
        checked = check_instance_id(rest[1])
        if isinstance(checked, BadInput):
            return checked
        instance_id, rest = checked, rest[2:]
    if rest:
        return BadInput("extra_words", " ".join(rest))
    return QueryJob(job_id, instance_id)
