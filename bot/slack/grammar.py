"""The /otajob command's grammar, as a pure function from text to a request.

/otajob                               usage
/otajob help                          usage
/otajob <JobId> [instance <IotInstanceId>]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..watch.transitions import parse_states

# Alibaba's JobIds are letters and digits (26 in the ones seen so far); leave room.
JOB_ID = re.compile(r"^[A-Za-z0-9]{6,64}$")
INSTANCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$")
HELP_WORDS = frozenset({"help", "-h", "--help", "?", "usage"})
CHANNEL = re.compile(r"^<#([CGD][A-Z0-9]{2,30})(?:\|[^>]*)?>$")
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

    reason: str  # masked_id | bad_job_id | bad_instance | missing_instance | extra_words |
    #             bad_channel | bad_states | missing_states | missing_job
    value: str = ""


@dataclass(frozen=True)
class WatchJob:
    job_id: str
    channel_id: str | None = None  # None: the channel the command was typed in
    instance_id: str | None = None
    only: frozenset[str] = frozenset()
    quiet: bool = False


@dataclass(frozen=True)
class UnwatchJob:
    job_id: str
    channel_id: str | None = None
    instance_id: str | None = None


@dataclass(frozen=True)
class ListWatches:
    everywhere: bool = False


Parsed = ShowHelp | QueryJob | WatchJob | UnwatchJob | ListWatches | BadInput


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


def _options(words: list[str], allowed: set[str]) -> dict[str, object] | BadInput:
    """Parse the words after a JobId: ``instance <id>``, a channel, ``only <states>``,
    ``quiet`` (whichever of those ``allowed`` names), in any order."""
    found: dict[str, object] = {}
    rest = list(words)
    while rest:
        word = rest.pop(0)
        lowered = word.lower()
        if lowered == "instance" and "instance" in allowed:
            if not rest:
                return BadInput("missing_instance")
            checked = check_instance_id(rest.pop(0))
            if isinstance(checked, BadInput):
                return checked
            found["instance"] = checked
        elif word.startswith(("<#", "#")) and "channel" in allowed:
            match = CHANNEL.match(word)
            if not match:
                return BadInput("bad_channel", word)
            found["channel"] = match.group(1)
        elif lowered == "only" and "only" in allowed:
            # "only completed,canceled" or "only completed, canceled"
            if not rest:
                return BadInput("missing_states")
            text = rest.pop(0)
            while text.endswith(",") and rest:
                text += rest.pop(0)
            states = parse_states(text)
            if isinstance(states, str):
                return BadInput("bad_states", states)
            found["only"] = states
        elif lowered == "quiet" and "quiet" in allowed:
            found["quiet"] = True
        else:
            return BadInput("extra_words", " ".join([word, *rest]))
    return found


def parse_command(text: str | None) -> Parsed:
    words = (text or "").split()
    if not words or words[0].lower() in HELP_WORDS:
        return ShowHelp()
    verb = words[0].lower()
    if verb == "watches":
        if [w.lower() for w in words[1:]] in ([], ["all"]):
            return ListWatches(everywhere=len(words) > 1)
        return BadInput("extra_words", " ".join(words[1:]))
    if verb in ("watch", "unwatch"):
        if len(words) < 2:
            return BadInput("missing_job", verb)
        job_id = check_job_id(words[1])
        if isinstance(job_id, BadInput):
            return job_id
        allowed = {"instance", "channel"} | ({"only", "quiet"} if verb == "watch" else set())
        options = _options(words[2:], allowed)
        if isinstance(options, BadInput):
            return options
        channel, instance = options.get("channel"), options.get("instance")
        if verb == "unwatch":
            return UnwatchJob(job_id, channel, instance)  # type: ignore[arg-type]
        return WatchJob(
            job_id,
            channel,  # type: ignore[arg-type]
            instance,  # type: ignore[arg-type]
            options.get("only", frozenset()),  # type: ignore[arg-type]
            bool(options.get("quiet", False)),
        )
    job_id = check_job_id(words[0])
    if isinstance(job_id, BadInput):
        return job_id
    options = _options(words[1:], {"instance"})
    if isinstance(options, BadInput):
        return options
    return QueryJob(job_id, options.get("instance"))  # type: ignore[arg-type]
