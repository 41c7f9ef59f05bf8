"""The /otajob command's grammar, as a pure function from text to a request.

/otajob                               usage
/otajob help                          usage
/otajob <JobId> [instance <IotInstanceId>]
/otajob <JobId> failed [instance <id>]                 failed devices by reason (+ CSV)
/otajob device <ProductKey> <DeviceName> [firmware <FirmwareId>] [instance <id>]
/otajob firmware <FirmwareId> [instance <id>]
/otajob watch <JobId> [#channel] [instance <id>] [only <states>] [quiet]
              [alert failed>5% | alert failed>20 | alert off] [notify @person @group ...]
/otajob unwatch <JobId> [#channel] [instance <id>]
/otajob watches [all]
/otajob language [en | ja | zh | default]     this channel's language (shown alone)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..iot.ids import DEVICE_NAME, FIRMWARE_ID, INSTANCE_ID, JOB_ID, PRODUCT_KEY, cleaned, problem
from ..languages import language_of_locale, language_word
from ..watch.alerts import AlertRule
from ..watch.transitions import parse_states
from .typed_text import Token, words

HELP_WORDS = frozenset({"help", "-h", "--help", "?", "usage"})
# <!here>, <!channel>, <!everyone>: never accepted as someone to notify.
MAX_NOTIFY = 10  # people and groups one alert may notify
WHOLE_CHANNEL = re.compile(r"^<!(here|channel|everyone)(?:\|[^>]*)?>$|^@(here|channel|everyone)$")


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
    #             bad_channel | bad_states | missing_states | missing_job | bad_alert |
    #             missing_alert | plain_mention | whole_channel | missing_notify |
    #             notify_without_alert | bad_product_key | bad_device_name |
    #             bad_firmware_id | missing_device | missing_firmware | too_many_notify |
    #             bad_language
    value: str = ""


@dataclass(frozen=True)
class WatchJob:
    job_id: str
    channel_id: str | None = None  # None: the channel the command was typed in
    instance_id: str | None = None
    only: frozenset[str] = frozenset()
    quiet: bool = False
    alert: AlertRule | None = None
    notify: tuple[str, ...] = ()  # Slack user and user group IDs, as typed mentions
    alert_off: bool = False  # `alert off`: remove the watch's alert


@dataclass(frozen=True)
class FailedDevices:
    job_id: str
    instance_id: str | None = None


@dataclass(frozen=True)
class DeviceJobs:
    product_key: str
    device_name: str
    firmware_id: str | None = None
    instance_id: str | None = None


@dataclass(frozen=True)
class FirmwareJobs:
    firmware_id: str
    instance_id: str | None = None


@dataclass(frozen=True)
class UnwatchJob:
    job_id: str
    channel_id: str | None = None
    instance_id: str | None = None


@dataclass(frozen=True)
class ListWatches:
    everywhere: bool = False


@dataclass(frozen=True)
class ChannelLanguage:
    """``/otajob language``: show this channel's language; with a word, set it (``None``:
    back to the workspace's default)."""

    change: bool = False
    language: str | None = None


RESET_WORDS = frozenset({"default", "reset", "none", "off"})


Parsed = (
    ShowHelp
    | QueryJob
    | FailedDevices
    | DeviceJobs
    | FirmwareJobs
    | WatchJob
    | UnwatchJob
    | ListWatches
    | ChannelLanguage
    | BadInput
)


def _check(raw: str, pattern: re.Pattern[str], reason: str) -> str | BadInput:
    value = cleaned(raw)
    found = problem(value, pattern)
    if found is None:
        return value
    return BadInput("masked_id" if found == "masked" else reason, value)


def check_job_id(raw: str) -> str | BadInput:
    return _check(raw, JOB_ID, "bad_job_id")


def check_instance_id(raw: str) -> str | BadInput:
    return _check(raw, INSTANCE_ID, "bad_instance")


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
            # Only a channel picked from autocomplete names one (a typed "#name" that
            # Slack did not recognise stays text).
            if not (isinstance(word, Token) and word.kind == "channel"):
                return BadInput("bad_channel", word)
            found["channel"] = word.ident
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
        elif lowered == "alert" and "alert" in allowed:
            if not rest:
                return BadInput("missing_alert")
            if rest[0].lower() in ("off", "none"):  # remove a watch's alert
                rest.pop(0)
                found["alert_off"] = True
                continue
            # "failed>5%", or typed with spaces: "failed > 5 %"
            text = rest.pop(0)
            while rest and AlertRule.parse(text) is None and len(text) < 20:
                if rest[0].lower() in ("notify", "quiet", "only", "instance"):
                    break
                text += rest.pop(0)
            if rest and rest[0] == "%":  # "failed > 5 %": the rate, not 5 devices
                text += rest.pop(0)
            rule = AlertRule.parse(text)
            if rule is None:
                return BadInput("bad_alert", text)
            found["alert"] = rule
        elif lowered == "notify" and "notify" in allowed:
            ids: list[str] = []
            while rest and (rest[0].startswith(("<", "@", ",")) or isinstance(rest[0], Token)):
                if getattr(rest[0], "kind", "") == "channel":
                    break  # `notify @a #ops`: the channel is the watch's, not someone to page
                word = rest.pop(0)
                word = word if isinstance(word, Token) else word.strip(",")
                if not word:
                    continue
                if WHOLE_CHANNEL.match(word) or getattr(word, "kind", "") == "special":
                    return BadInput("whole_channel", word)
                found_id = notify_id(word)
                if found_id is None:
                    return BadInput("plain_mention", word)
                if found_id not in ids:
                    ids.append(found_id)
            if not ids:
                return BadInput("missing_notify")
            if len(ids) > MAX_NOTIFY:
                return BadInput("too_many_notify", str(MAX_NOTIFY))
            found["notify"] = tuple(ids)
        elif lowered == "firmware" and "firmware" in allowed:
            if not rest:
                return BadInput("missing_firmware")
            checked = _check(rest.pop(0), FIRMWARE_ID, "bad_firmware_id")
            if isinstance(checked, BadInput):
                return checked
            found["firmware"] = checked
        elif lowered == "failed" and "failed" in allowed:
            found["failed"] = True
        else:
            return BadInput("extra_words", " ".join([word, *rest]))
    return found


def notify_id(word: str) -> str | None:
    """The Slack ID of a person or group picked from autocomplete, else None: a typed
    ``@name`` or a typed-out ``<@U…>`` is never taken for one."""
    if isinstance(word, Token) and word.kind in ("user", "group"):
        return word.ident
    return None


def parse_command(text: str | None) -> Parsed:
    """Parse the text exactly as Slack sent it (escaped, with control tokens)."""
    return parse_words(words(text))


def parse_words(words: list[str]) -> Parsed:
    """Parse the command's words (see :func:`bot.slack.typed_text.words`)."""
    if not words or words[0].lower() in HELP_WORDS:
        return ShowHelp()
    verb = words[0].lower()
    if verb == "device":
        return _device(words[1:])
    if verb == "firmware":
        if len(words) < 2:
            return BadInput("missing_firmware")
        firmware_id = _check(words[1], FIRMWARE_ID, "bad_firmware_id")
        if isinstance(firmware_id, BadInput):
            return firmware_id
        options = _options(words[2:], {"instance"})
        if isinstance(options, BadInput):
            return options
        return FirmwareJobs(firmware_id, options.get("instance"))  # type: ignore[arg-type]
    if verb == "failed" and len(words) > 1 and JOB_ID.match(cleaned(words[1])):
        words = [words[1], "failed", *words[2:]]  # "/otajob failed <JobId>" reads the same
    if verb == "watches":
        if [w.lower() for w in words[1:]] in ([], ["all"]):
            return ListWatches(everywhere=len(words) > 1)
        return BadInput("extra_words", " ".join(words[1:]))
    if verb == "language":
        return _language(words[1:])
    if verb in ("watch", "unwatch"):
        if len(words) < 2:
            return BadInput("missing_job", verb)
        job_id = check_job_id(words[1])
        if isinstance(job_id, BadInput):
            return job_id
        watch_words = {"only", "quiet", "alert", "notify"}
        allowed = {"instance", "channel"} | (watch_words if verb == "watch" else set())
        options = _options(words[2:], allowed)
        if isinstance(options, BadInput):
            return options
        if "notify" in options and "alert" not in options:
            return BadInput("notify_without_alert")
        if "alert_off" in options and "alert" in options:
            return BadInput("extra_words", "alert off")
        channel, instance = options.get("channel"), options.get("instance")
        if verb == "unwatch":
            return UnwatchJob(job_id, channel, instance)  # type: ignore[arg-type]
        return WatchJob(
            job_id,
            channel,  # type: ignore[arg-type]
            instance,  # type: ignore[arg-type]
            options.get("only", frozenset()),  # type: ignore[arg-type]
            bool(options.get("quiet", False)),
            options.get("alert"),  # type: ignore[arg-type]
            options.get("notify", ()),  # type: ignore[arg-type]
            bool(options.get("alert_off", False)),
        )
    job_id = check_job_id(words[0])
    if isinstance(job_id, BadInput):
        return job_id
    options = _options(words[1:], {"instance", "failed"})
    if isinstance(options, BadInput):
        return options
    if options.get("failed"):
        return FailedDevices(job_id, options.get("instance"))  # type: ignore[arg-type]
    return QueryJob(job_id, options.get("instance"))  # type: ignore[arg-type]


def _language(words: list[str]) -> ChannelLanguage | BadInput:
    if not words:
        return ChannelLanguage()
    if len(words) > 1:
        return BadInput("extra_words", " ".join(words[1:]))
    if words[0].lower() in RESET_WORDS:
        return ChannelLanguage(change=True)
    language = language_word(words[0]) or language_of_locale(words[0])
    if language is None:
        return BadInput("bad_language", words[0])
    return ChannelLanguage(change=True, language=language)


def _device(words: list[str]) -> DeviceJobs | BadInput:
    if len(words) < 2:
        return BadInput("missing_device")
    product_key = _check(words[0], PRODUCT_KEY, "bad_product_key")
    if isinstance(product_key, BadInput):
        return product_key
    device_name = _check(words[1], DEVICE_NAME, "bad_device_name")
    if isinstance(device_name, BadInput):
        return device_name
    options = _options(words[2:], {"instance", "firmware"})
    if isinstance(options, BadInput):
        return options
    return DeviceJobs(
        product_key,
        device_name,
        options.get("firmware"),  # type: ignore[arg-type]
        options.get("instance"),  # type: ignore[arg-type]
    )
