"""Text for Slack: mrkdwn escaping and cutting, plain_text, and translated ``Words``.

Data is escaped (``& < >`` only, so it can never become ``<!channel>``, ``<@U1>`` or a
disguised link); markup meant on purpose is :class:`SlackText`, already safe. A translated
message is :class:`Words`: plain text and its mrkdwn form at once, so one catalogue entry
serves a header (plain_text) and a section (mrkdwn) alike.
"""

from __future__ import annotations

import gettext
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup

ELLIPSIS = "…"


class SlackText(str):
    """Text already safe for mrkdwn: escaped data, or markup a helper built on purpose."""


class PlainText(str):
    """Text for a plain_text object or a button value: Slack shows it as is."""


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut_escaped(escaped: str, limit: int) -> str:
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
    if isinstance(value, Words):
        text = value.mrkdwn
    elif isinstance(value, SlackText):
        text = value
    else:
        text = slack_escape(as_text(value))
    return SlackText(cut_escaped(text, limit))


def plain(value: Any, limit: int | None = None) -> PlainText:
    text = as_text(value)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + ELLIPSIS
    return PlainText(text)


# C0 control characters other than tab and newline: they show as nothing useful and
# JSON-encode to six characters each, which could push a message past Slack's size limit.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return _CONTROL.sub("", value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def safe_join(parts: Any, sep: str = "") -> SlackText:
    """Join text for mrkdwn: data parts are escaped, SlackText parts (``cut`` output, date
    tokens, mentions) kept. Jinja's ``~`` and ``join`` would lose which is which."""
    return SlackText(
        slack_escape(sep).join(
            p.mrkdwn
            if isinstance(p, Words)
            else p
            if isinstance(p, SlackText)
            else slack_escape(as_text(p))
            for p in parts
        )
    )


def code(value: Any) -> SlackText:
    """```value```, escaped: markup kept outside a message, so translators place it whole."""
    return SlackText(f"`{_mrkdwn_arg(value)}`")


def bold(value: Any) -> SlackText:
    """``*value*``, escaped (Slack needs a space or punctuation around it, also in CJK)."""
    return SlackText(f"*{_mrkdwn_arg(value)}*")


class Words(str):
    """A translated message. Its string value is plain text (for plain_text objects and
    the terminal); ``mrkdwn`` is the same text Slack-escaped, with the markup arguments
    (dates, channel links, mentions) kept. Concatenating it with ``~`` keeps the plain
    text only, which is then escaped like any data: safe, though links show as text."""

    mrkdwn: str

    def __new__(cls, plain_text: str, mrkdwn: str) -> Words:
        words = super().__new__(cls, plain_text)
        words.mrkdwn = mrkdwn
        return words


def _macro_text(value: Markup) -> SlackText:
    """A macro's output is JSON string content; as an argument it is the text itself."""
    return SlackText(json.loads(f'"{value.strip()}"'))


def _mrkdwn_arg(value: Any) -> str:
    if isinstance(value, Markup):
        return _macro_text(value)
    if isinstance(value, Words):
        return value.mrkdwn
    if isinstance(value, SlackText):
        return value
    return slack_escape(as_text(value))


def _plain_arg(value: Any) -> str:
    if isinstance(value, Markup):
        return _macro_text(value)
    return as_text(value)


def _words(message: str, values: dict[str, Any]) -> Words:
    """Fill a translated message's ``%(name)s`` places. Like Jinja's newstyle gettext,
    every message is formatted, so a literal percent sign is written ``%%``."""
    plain_values = {k: _plain_arg(v) for k, v in values.items()}
    mrkdwn_values = {k: _mrkdwn_arg(v) for k, v in values.items()}
    return Words(message % plain_values, slack_escape(message) % mrkdwn_values)


@dataclass(frozen=True)
class Speaker:
    """The gettext functions templates call, for one language."""

    translations: gettext.NullTranslations

    # Positional-only: a template may well name an argument `message`.
    def gettext(self, msgid: str, /, **values: Any) -> Words:
        return _words(self.translations.gettext(msgid), values)

    def ngettext(self, singular: str, plural: str, num: int, /, **values: Any) -> Words:
        chosen = self.translations.ngettext(singular, plural, num)
        return _words(chosen, {"num": num, **values})

    def pgettext(self, context: str, msgid: str, /, **values: Any) -> Words:
        return _words(self.translations.pgettext(context, msgid), values)

    def word(self, message: str) -> str:
        """A message without places (duration units, ``n/a``), as plain text."""
        return self.translations.gettext(message)
