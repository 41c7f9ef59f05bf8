"""Jinja templates -> Block Kit messages, safe by construction.

Templates under ``templates/`` write JSON. Every ``{{ value }}`` is meant to sit inside a
JSON string literal, and one ``finalize`` step turns it into string content: Slack-escaped
(``& < >`` only, so data can never become ``<!channel>``, ``<@U1>`` or a disguised link)
and JSON-escaped (so quotes, backslashes and newlines cannot break the document). Markup
the template itself means (a date token, a link) comes from helpers that return
:class:`SlackText`, which is escaped already. Macros return template-written JSON, passed
through as is.

After rendering, the JSON is parsed and validated against Block Kit's limits, including
those slack_sdk's models miss, so a bad template fails loudly in tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import BytecodeCache, Environment, FileSystemLoader, StrictUndefined
from jinja2.bccache import Bucket
from markupsafe import Markup

from .blockkit import (
    MAX_FALLBACK,
    MAX_VIEW_BLOCKS,
    MAX_VIEW_JSON,
    RenderError,
    validate_blocks,
)
from .languages import ENGLISH, Catalogues
from .mrkdwn import (
    PlainText,
    SlackText,
    Speaker,
    Words,
    as_text,
    bold,
    code,
    cut,
    cut_escaped,
    plain,
    safe_join,
    slack_escape,
)

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def _from_epoch(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _n_(message: str) -> str:
    """Marks a message for the catalogues (``make messages``); it is translated where used."""
    return message


# Units for durations, as a person reads them at a glance: the two largest.
_UNITS = (
    (_n_("%(n)s d"), 86400),
    (_n_("%(n)s h"), 3600),
    (_n_("%(n)s min"), 60),
    (_n_("%(n)s s"), 1),
)
NOT_APPLICABLE = _n_("n/a")

# What a person reads for an error whose message is otajob's own diagnostic (not the
# API's text): words for its Code, in their language. The diagnostic goes to the log.
OWN_ERROR_WORDS = {
    "Timeout": _n_("No complete answer came in time."),
    "ConnectionError": _n_("Could not connect to Alibaba Cloud's endpoint."),
    "ConnectionLost": _n_("The connection broke before the answer was complete."),
    "InvalidResponse": _n_("The answer was not the JSON the API documents."),
    "CredentialsUnavailable": _n_("No usable Alibaba Cloud credentials were found."),
    "Unexpected": _n_("An unexpected error inside otajob: its log says more."),
}
UNREADABLE_HTTP = _n_("The endpoint answered HTTP %(status)s without the API's JSON.")


def error_text(error: Any, speaker: Speaker) -> str:
    """An error's message as a person reads it: the API's own text as it is; otajob's
    diagnostics as words for their Code."""
    if getattr(error, "api_message", True):
        return error.message
    words = OWN_ERROR_WORDS.get(error.code)
    if words:
        return speaker.gettext(words)
    if error.code.startswith("HTTP") and error.http_status:
        return speaker.gettext(UNREADABLE_HTTP, status=error.http_status)
    return error.message


def duration(value: timedelta | float | None, gettext: Callable[[str], str] = _n_) -> str:
    """``3 h 12 min`` (``3 時間 12 分`` in Japanese): the two largest units."""
    if value is None:
        return ""
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else value)
    parts = []
    for unit, size in _UNITS:
        if seconds >= size or (size == 1 and not parts):
            parts.append(gettext(unit) % {"n": seconds // size})
            seconds %= size
    return " ".join(parts[:2])


CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,30}$")


def channel_link(channel_id: str) -> SlackText:
    """``<#C123>``: Slack shows the channel's name. Only for IDs we validated."""
    if not CHANNEL_ID.match(channel_id or ""):
        return cut(channel_id, 40)
    return SlackText(f"<#{channel_id}>")


# Whom the app may ever mention: IDs a person configured (a watch's notify list), checked
# again here, so no text from the API or a user can become a mention.
MENTIONABLE = re.compile(r"^[UWS][A-Z0-9]{2,30}$")


def mention(ids: Any) -> SlackText:
    """``<@U1> <!subteam^S2>`` for validated IDs; anything else is left out: it can be
    no one to notify."""
    parts = []
    for raw in ids or ():
        value = str(raw)
        if MENTIONABLE.match(value):
            parts.append(f"<!subteam^{value}>" if value.startswith("S") else f"<@{value}>")
    return SlackText(" ".join(parts))


def number(value: Any) -> str:
    """``12345`` -> ``12,345``."""
    return f"{int(value or 0):,}"


def percent(fraction: float | None, gettext: Callable[[str], str] = _n_) -> str:
    """``0.0912`` -> ``9.1%``; None (nothing to divide by) -> ``n/a``."""
    return gettext(NOT_APPLICABLE) if fraction is None else f"{fraction * 100:.1f}%"


def _compact_json(value: Any) -> str:
    """A value of unknown shape as readable JSON (escaped later like any other text)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def slack_date(moment: datetime | None, style: str = "{date_short_pretty} {time}") -> SlackText:
    """``<!date^...>`` token: each reader sees the time in their own time zone."""
    if moment is None:
        return SlackText("")
    unix = int(moment.timestamp())
    fallback = slack_escape(as_text(moment))
    return SlackText(f"<!date^{unix}^{style}|{fallback}>")


def _finalize(value: Any) -> Markup:
    if isinstance(value, Markup):  # a macro's output: JSON the template itself wrote
        return value
    if isinstance(value, Words):
        text = value.mrkdwn
    elif isinstance(value, SlackText | PlainText):
        text = str(value)
    else:
        text = slack_escape(as_text(value))
    return Markup(json.dumps(text, ensure_ascii=False)[1:-1])


@dataclass
class Message:
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def as_kwargs(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}

    def as_json(self, **extra: Any) -> str:
        return json.dumps({**extra, **self.as_kwargs()}, ensure_ascii=False)


def _verbatim(node: Any) -> None:
    """Mark every mrkdwn text object ``verbatim``: Slack then leaves data as written (no
    automatic links of URLs or channel names, no parsing of words like @channel), while
    the control sequences we write on purpose (dates, channel links, mentions) still
    work (https://api.slack.com/reference/block-kit/composition-objects#text)."""
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
            node["verbatim"] = True
        for value in node.values():
            _verbatim(value)
    elif isinstance(node, list):
        for value in node:
            _verbatim(value)


class _InMemoryBytecode(BytecodeCache):
    """Jinja's compiled templates, kept in memory and shared by environments alike."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if (code := self._code.get(bucket.key)) is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


class Renderer:
    """Renders templates in any language of ``catalogues``: one pair of Jinja environments
    (Block Kit and terminal text) per language, made the first time it is asked for."""

    def __init__(self, templates: Path = TEMPLATES, catalogues: Catalogues | None = None) -> None:
        self._loader = FileSystemLoader(str(templates))
        self.catalogues = catalogues or Catalogues.load()
        self._envs: dict[tuple[str, bool], Environment] = {}
        # Compiled once for all languages: the environments of one kind differ only in
        # their globals and filters, which compiled code looks up when it runs.
        self._compiled = {True: _InMemoryBytecode(), False: _InMemoryBytecode()}

    def _env(self, lang: str, blocks: bool) -> Environment:
        key = (lang if lang in self.catalogues.by_language else ENGLISH, blocks)
        env = self._envs.get(key)
        if env is None:
            env = self._envs[key] = self._make_env(*key)
        return env

    def _make_env(self, lang: str, blocks: bool) -> Environment:
        common: dict[str, Any] = {
            "loader": self._loader,
            "undefined": StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "keep_trailing_newline": False,
            "extensions": ["jinja2.ext.i18n", "jinja2.ext.do"],
            "bytecode_cache": self._compiled[blocks],
        }
        if blocks:
            # autoescape=True only so that macro output comes back as Markup (passed
            # through as template-written JSON); finalize does all escaping.
            env = Environment(finalize=_finalize, autoescape=True, **common)
        else:
            env = Environment(autoescape=False, **common)
        speaker = Speaker(self.catalogues.get(lang))
        # Jinja's i18n extension with our own callables: newstyle (arguments by name),
        # and each message comes back as Words, escaped for the place it lands in.
        env.newstyle_gettext = True  # type: ignore[attr-defined]
        env.filters.update(
            plain=plain,
            text=as_text,
            compact=_compact_json,
            duration=lambda value: duration(value, speaker.word),
            num=number,
            pct=lambda value: percent(value, speaker.word),
            error_text=lambda error: error_text(error, speaker),
            # In a terminal nothing is parsed as markup: cut without escaping.
            cut=cut if blocks else plain,
        )
        env.globals.update(
            _=speaker.gettext,
            gettext=speaker.gettext,
            ngettext=speaker.ngettext,
            pgettext=speaker.pgettext,
            lang=lang,
            # Between two sentences: a space in English; none after 。 in Japanese and
            # Chinese, whose full stops carry their own. (Not before a sentence that may
            # open with markup: Slack needs a space before a `code` or *bold* span.)
            gap="" if lang in ("ja", "zh_CN") else " ",
            date=slack_date,
            channel=channel_link,
            epoch=_from_epoch,
            mention=mention,
            safe_join=safe_join,
            code=code,
            bold=bold,
        )
        return env

    def warm(self, lang: str) -> None:
        """Compile every template now (about half a second), not under the first burst
        of requests: a server calls this before it listens."""
        for blocks in (True, False):
            env = self._env(lang, blocks)
            for name in env.list_templates(extensions=["j2"]):
                if name.endswith(".txt.j2") != blocks:
                    env.get_template(name)

    def _doc(self, name: str, lang: str, context: dict[str, Any]) -> dict[str, Any]:
        source = self._env(lang, True).get_template(f"{name}.json.j2").render(**context)
        try:
            doc = json.loads(source)
        except json.JSONDecodeError as exc:
            raise RenderError(f"template {name} produced invalid JSON: {exc}") from exc
        _verbatim(doc)
        return doc

    def view(self, name: str, *, lang: str, **context: Any) -> dict[str, Any]:
        """Render ``templates/<name>.json.j2`` into a Home tab or modal view (100 blocks)."""
        doc = self._doc(name, lang, context)
        validate_blocks(doc.get("blocks") or [], max_blocks=MAX_VIEW_BLOCKS, max_json=MAX_VIEW_JSON)
        return doc

    def render(self, name: str, *, lang: str, **context: Any) -> Message:
        """Render ``templates/<name>.json.j2`` in ``lang`` into a validated message."""
        doc = self._doc(name, lang, context)
        text = doc.get("text") or ""
        if not text.strip():
            raise RenderError(f"template {name} has no fallback text")
        blocks = doc.get("blocks") or []
        validate_blocks(blocks)
        return Message(text=cut_escaped(text, MAX_FALLBACK), blocks=blocks)

    def render_fitting(self, name: str, rows: list[Any], *, lang: str, **context: Any) -> Message:
        """Render with as many of ``rows`` as fit Slack's limits (the template gets
        ``rows``, the ones shown, and ``more``, how many were left out), so a long list
        is cut with a word about the rest instead of refused."""

        def attempt(n: int) -> Message:
            return self.render(name, lang=lang, rows=rows[:n], more=len(rows) - n, **context)

        try:
            return attempt(len(rows))
        except RenderError:
            pass
        fits, too_many = 0, len(rows)  # binary search for the most rows that render
        while too_many - fits > 1:
            middle = (fits + too_many) // 2
            try:
                attempt(middle)
                fits = middle
            except RenderError:
                too_many = middle
        return attempt(fits)

    def text(self, name: str, *, lang: str, **context: Any) -> str:
        """Render ``templates/<name>.txt.j2`` in ``lang`` as plain text (terminal output)."""
        return self._env(lang, False).get_template(f"{name}.txt.j2").render(**context)


def job_card(
    renderer: Renderer,
    result: Any,
    *,
    lang: str,
    ref: Any,
    instance_id: str | None,
    demo: bool,
    buttons: Any,
    counts: Any = None,
    watching: dict[str, Any] | None = None,
) -> Message:
    """The job card (templates/job.json.j2) for a JobResult, as the ephemeral, shared and
    watched cards all show it. ``counts`` (a card_counts.Counts) None leaves device
    results off; ``ref`` (a JobRef) goes into the buttons."""
    return renderer.render(
        "job",
        lang=lang,
        job=result.job,
        job_id=ref.job_id,
        request_id=result.request_id,
        checked_at=result.fetched_at,
        instance_id=instance_id,
        demo=demo,
        shared_by=ref.shared_by,
        buttons=buttons,
        button_value=ref.to_value(),
        watching=watching,
        counts=counts.counts if counts else None,
        counts_error=counts.error if counts else None,
        counts_loading=bool(counts and counts.loading),
        counts_slow=bool(counts and counts.slow),
    )
