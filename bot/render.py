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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
ELLIPSIS = "…"

MAX_BLOCKS = 50
MAX_FIELD = 2000
MAX_FIELDS = 10
MAX_HEADER = 150
MAX_TEXT = 3000
MAX_FALLBACK = 3000
# Slack rejects large messages with msg_blocks_too_long; reported near 13k characters.
MAX_BLOCKS_JSON = 12000
MAX_VIEW_BLOCKS = 100  # a Home tab or a modal
MAX_VIEW_JSON = 100_000


class RenderError(ValueError):
    """A template produced something Slack would reject."""


class SlackText(str):
    """Text already safe for mrkdwn: escaped data, or markup a helper built on purpose."""


class PlainText(str):
    """Text for a plain_text object or a button value: Slack shows it as is."""


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut_escaped(escaped: str, limit: int) -> str:
    """Cut already-escaped text to ``limit`` characters without splitting an entity."""
    if len(escaped) <= limit:
        return escaped
    head = escaped[: max(limit - 1, 0)]
    amp = head.rfind("&", max(len(head) - 4, 0))
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    return head + ELLIPSIS


def cut(value: Any, limit: int) -> SlackText:
    """Escape, then cut to ``limit`` characters as Slack counts them, with an ellipsis."""
    text = value if isinstance(value, SlackText) else slack_escape(_as_text(value))
    return SlackText(_cut_escaped(text, limit))


def plain(value: Any, limit: int | None = None) -> PlainText:
    text = _as_text(value)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + ELLIPSIS
    return PlainText(text)


# C0 control characters other than tab and newline: they show as nothing useful and
# JSON-encode to six characters each, which could push a message past Slack's size limit.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return _CONTROL.sub("", value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def _from_epoch(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def duration(value: timedelta | float | None) -> str:
    """``3 h 12 min``: the two largest units, which is what a person reads at a glance."""
    if value is None:
        return ""
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else value)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size} {unit}")
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


def percent(fraction: float | None) -> str:
    """``0.0912`` -> ``9.1%``; None (nothing to divide by) -> ``n/a``."""
    return "n/a" if fraction is None else f"{fraction * 100:.1f}%"


def safe_join(parts: Any, sep: str = "") -> SlackText:
    """Join text for mrkdwn: data parts are escaped, SlackText parts (``cut`` output, date
    tokens, mentions) kept. Jinja's ``~`` and ``join`` would lose which is which."""
    return SlackText(
        slack_escape(sep).join(
            p if isinstance(p, SlackText) else slack_escape(_as_text(p)) for p in parts
        )
    )


def _compact_json(value: Any) -> str:
    """A value of unknown shape as readable JSON (escaped later like any other text)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def slack_date(moment: datetime | None, style: str = "{date_short_pretty} {time}") -> SlackText:
    """``<!date^...>`` token: each reader sees the time in their own time zone."""
    if moment is None:
        return SlackText("")
    unix = int(moment.timestamp())
    fallback = slack_escape(_as_text(moment))
    return SlackText(f"<!date^{unix}^{style}|{fallback}>")


def _finalize(value: Any) -> Markup:
    if isinstance(value, Markup):  # a macro's output: JSON the template itself wrote
        return value
    safe = isinstance(value, SlackText | PlainText)
    text = str(value) if safe else slack_escape(_as_text(value))
    return Markup(json.dumps(text, ensure_ascii=False)[1:-1])


@dataclass
class Message:
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def as_kwargs(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}

    def as_json(self, **extra: Any) -> str:
        return json.dumps({**extra, **self.as_kwargs()}, ensure_ascii=False)


def validate_blocks(
    blocks: list[dict[str, Any]], *, max_blocks: int = MAX_BLOCKS, max_json: int = MAX_BLOCKS_JSON
) -> None:
    """Block Kit limits: slack_sdk's models, plus what they do not check."""
    if len(blocks) > max_blocks:
        raise RenderError(f"{len(blocks)} blocks; Slack allows {max_blocks}")
    for index, (raw, block) in enumerate(zip(blocks, Block.parse_all(blocks), strict=True)):
        if block is None:
            raise RenderError(f"block {index}: unknown type {raw.get('type')!r}")
        try:
            block.to_dict()
        except SlackObjectFormationError as exc:
            raise RenderError(f"block {index}: {exc}") from exc
        if raw["type"] == "header" and raw["text"].get("type") != "plain_text":
            raise RenderError(f"block {index}: a header must be plain_text")
        fields = raw.get("fields") or []
        if len(fields) > MAX_FIELDS:
            raise RenderError(f"block {index}: {len(fields)} fields; Slack allows {MAX_FIELDS}")
        for f in fields:
            if len(f.get("text", "")) > MAX_FIELD:
                raise RenderError(f"block {index}: a field over {MAX_FIELD} characters")
    size = len(json.dumps(blocks, ensure_ascii=False))
    if size > max_json:
        raise RenderError(f"blocks are {size} characters of JSON; keep under {max_json}")


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


class Renderer:
    def __init__(self, templates: Path = TEMPLATES) -> None:
        loader = FileSystemLoader(str(templates))
        common: dict[str, Any] = {
            "loader": loader,
            "undefined": StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "keep_trailing_newline": False,
        }
        # autoescape=True only so that macro output comes back as Markup (passed through
        # as template-written JSON); finalize does all escaping and returns Markup too.
        self._blocks_env = Environment(finalize=_finalize, autoescape=True, **common)
        self._text_env = Environment(autoescape=False, **common)
        for env in (self._blocks_env, self._text_env):
            env.filters.update(
                plain=plain,
                text=_as_text,
                compact=_compact_json,
                duration=duration,
                num=number,
                pct=percent,
            )
            env.globals.update(
                date=slack_date,
                channel=channel_link,
                epoch=_from_epoch,
                mention=mention,
                safe_join=safe_join,
            )
        self._blocks_env.filters["cut"] = cut
        # In a terminal nothing is parsed as markup: cut without escaping.
        self._text_env.filters["cut"] = plain

    def _doc(self, name: str, context: dict[str, Any]) -> dict[str, Any]:
        source = self._blocks_env.get_template(f"{name}.json.j2").render(**context)
        try:
            doc = json.loads(source)
        except json.JSONDecodeError as exc:
            raise RenderError(f"template {name} produced invalid JSON: {exc}") from exc
        _verbatim(doc)
        return doc

    def view(self, name: str, **context: Any) -> dict[str, Any]:
        """Render ``templates/<name>.json.j2`` into a Home tab or modal view (100 blocks)."""
        doc = self._doc(name, context)
        validate_blocks(doc.get("blocks") or [], max_blocks=MAX_VIEW_BLOCKS, max_json=MAX_VIEW_JSON)
        return doc

    def render(self, name: str, **context: Any) -> Message:
        """Render ``templates/<name>.json.j2`` into a validated message."""
        doc = self._doc(name, context)
        text = doc.get("text") or ""
        if not text.strip():
            raise RenderError(f"template {name} has no fallback text")
        blocks = doc.get("blocks") or []
        validate_blocks(blocks)
        return Message(text=_cut_escaped(text, MAX_FALLBACK), blocks=blocks)

    def render_fitting(self, name: str, rows: list[Any], **context: Any) -> Message:
        """Render with as many of ``rows`` as fit Slack's limits (the template gets
        ``rows``, the ones shown, and ``more``, how many were left out), so a long list
        is cut with a word about the rest instead of refused."""

        def attempt(n: int) -> Message:
            return self.render(name, rows=rows[:n], more=len(rows) - n, **context)

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

    def text(self, name: str, **context: Any) -> str:
        """Render ``templates/<name>.txt.j2`` as plain text (terminal output)."""
        return self._text_env.get_template(f"{name}.txt.j2").render(**context)


def job_card(
    renderer: Renderer,
    result: Any,
    *,
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
