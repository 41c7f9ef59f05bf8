"""What a person typed, read back from the text Slack sends: pure functions.

Slack escapes `&`, `<` and `>` in slash-command and message text (`&amp;`, `&lt;`,
`&gt;`), and with the command's ``should_escape`` it sends what was picked from
autocomplete as control tokens: ``<@U123|name>``, ``<!subteam^S123|@group>``,
``<#C123|name>``, ``<!here>``, ``<https://…|label>``, ``<mailto:…|label>``
(https://api.slack.com/interactivity/slash-commands#creating_commands "Escape channels,
users, and links"; https://api.slack.com/reference/surfaces/formatting#escaping).
A real ``<`` in that text can only start a control token, so the tokens are taken out
first and the three entities are unescaped once in what is left. A token stays a
:class:`Token` (a ``str`` that knows what it is), so typed text that merely looks like a
mention (``&lt;@U1&gt;``, unescaped to ``<@U1>``) is never taken for a picked one.
"""

from __future__ import annotations

import re

# <@U123>, <@U123|name>, <!subteam^S123|@group>, <#C123|name>, <#C123|>, <!here>, links.
_TOKEN = re.compile(r"<([^<>]*)>")
_USER = re.compile(r"^@([UW][A-Z0-9]{2,30})(?:\|(.*))?$", re.DOTALL)
_GROUP = re.compile(r"^!subteam\^(S[A-Z0-9]{2,30})(?:\|(.*))?$", re.DOTALL)
_CHANNEL = re.compile(r"^#([CGD][A-Z0-9]{2,30})(?:\|(.*))?$", re.DOTALL)
_SPECIAL = re.compile(r"^!(here|channel|everyone)(?:\|(.*))?$", re.DOTALL)
_LINK = re.compile(r"^((?:https?|mailto):[^|]*)(?:\|(.*))?$", re.DOTALL)
_ENTITIES = {"&lt;": "<", "&gt;": ">", "&amp;": "&"}
_ENTITY = re.compile("|".join(_ENTITIES))


class Token(str):
    """One control token from Slack, as its canonical text (``<@U123>``), with what it is:
    ``kind`` is user, group, channel, special (here/channel/everyone) or link."""

    kind: str
    ident: str  # the ID (U…, S…, C…), the special word, or the link's target
    label: str  # what the person saw: a name, a handle, a link's text ("" when none)

    def __new__(cls, text: str, kind: str, ident: str, label: str = "") -> Token:
        token = super().__new__(cls, text)
        token.kind, token.ident, token.label = kind, ident, label
        return token


def unescape(text: str) -> str:
    """`&lt;` `&gt;` `&amp;` back to `<` `>` `&`, once (``&amp;lt;`` becomes ``&lt;``)."""
    return _ENTITY.sub(lambda m: _ENTITIES[m[0]], text)


def _token(inner: str) -> Token | str:
    """The token for the inside of ``<…>``; a link becomes its label (or target) as text."""
    if m := _USER.match(inner):
        return Token(f"<@{m[1]}>", "user", m[1], unescape(m[2] or ""))
    if m := _GROUP.match(inner):
        return Token(f"<!subteam^{m[1]}>", "group", m[1], unescape(m[2] or ""))
    if m := _CHANNEL.match(inner):
        return Token(f"<#{m[1]}>", "channel", m[1], unescape(m[2] or ""))
    if m := _SPECIAL.match(inner):
        return Token(f"<!{m[1]}>", "special", m[1], unescape(m[2] or ""))
    if m := _LINK.match(inner):
        # Slack made a link of what was pasted (a URL, or an ID that carried a link):
        # what the person meant is the text they saw.
        return unescape(m[2] or m[1])
    # Anything else in angle brackets is not from a person (Slack escapes a typed "<"):
    # read it as the text it carries.
    return unescape(inner)


# What a Japanese or Chinese input method types in full width: the ideographic space,
# U+FF01-FF5E (full-width ASCII: ＡＢＣ１２３＞％) and the ideographic comma read as ASCII,
# so `/otajob　watch　<JobId>　alert failed＞５％` means what it says.
_HALF_WIDTH = {0x3000: " ", 0x3001: ",", **{c: chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)}}


def half_width(text: str) -> str:
    """Full-width spaces, letters, digits and signs -> their ASCII forms."""
    return text.translate(_HALF_WIDTH)


def words(text: str | None) -> list[str]:
    """The words of Slack's escaped text, tokens kept whole as :class:`Token`; what is
    typed between them is read in half width (:func:`half_width`)."""
    out: list[str] = []
    rest = text or ""
    pos = 0
    for m in _TOKEN.finditer(rest):
        out.extend(half_width(unescape(rest[pos : m.start()])).split())
        token = _token(m[1])
        if isinstance(token, Token):
            out.append(token)
        else:
            out.extend(half_width(token).split())
        pos = m.end()
    out.extend(half_width(unescape(rest[pos:])).split())
    return out
