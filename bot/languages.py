"""The languages otajob speaks: which one a Slack locale, a typed word or an environment
means, and the message catalogues (``locales/<language>.po``) loaded at start.

Catalogues are read from their ``.po`` files with Babel when the app starts, so nobody
compiles anything: adding a language is adding one ``.po`` file (and its name below).
"""

from __future__ import annotations

import functools
import gettext
import io
from dataclasses import dataclass
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES = Path(__file__).resolve().parent.parent / "locales"

ENGLISH = "en"
# Language -> its own name (shown in `/otajob language` and `watches`). English is the
# source language: its words are the message ids themselves.
NAMES = {"en": "English", "ja": "日本語", "zh_CN": "简体中文"}
SUPPORTED = tuple(NAMES)

# What people type after `/otajob language`, and what Slack and POSIX locales start with.
_WORDS = {
    "en": "en",
    "english": "en",
    "ja": "ja",
    "jp": "ja",
    "japanese": "ja",
    "日本語": "ja",
    "zh": "zh_CN",
    "cn": "zh_CN",
    "chinese": "zh_CN",
    "中文": "zh_CN",
    "简体中文": "zh_CN",
    "zh_cn": "zh_CN",
    "zh-cn": "zh_CN",
    "zh-hans": "zh_CN",
}


def spoken(language: str | None, default: str) -> str:
    """``language`` if otajob speaks it (a stored setting may predate a removed one),
    else ``default``."""
    return language if language in NAMES else default


def language_word(word: str) -> str | None:
    """``ja`` / ``日本語`` / ``zh`` / ``zh-CN`` / ``en`` -> a supported language, else None."""
    return _WORDS.get(word.strip().lower())


def language_of_locale(locale: str | None) -> str | None:
    """A Slack locale (``ja-JP``, ``zh-CN``, ``en-GB``) or a POSIX one (``ja_JP.UTF-8``)
    -> a supported language, or None for one otajob does not speak (``fr-FR``), so the
    caller falls back to the channel's or workspace's language.

    Every Chinese locale, Traditional ones included (``zh-TW``), reads Simplified Chinese:
    otajob has no Traditional catalogue, and its readers know Alibaba Cloud's Simplified
    Chinese console terms better than an English fallback."""
    if not locale:
        return None
    base = locale.split(".")[0].split("@")[0].replace("_", "-").lower()
    if base in ("c", "posix"):
        return ENGLISH
    primary = base.split("-")[0]
    if primary == "zh":
        return "zh_CN"
    return primary if primary in NAMES else None


def language_of_environment(environ: dict[str, str]) -> str:
    """The terminal's language, as POSIX programs read it: LC_ALL, then LC_MESSAGES, then
    LANG; English when none names a language otajob speaks."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name)
        if value:
            return language_of_locale(value) or ENGLISH
    return ENGLISH


@dataclass(frozen=True)
class Catalogues:
    """One gettext translations object per language (English: the message ids)."""

    by_language: dict[str, gettext.NullTranslations]

    def get(self, language: str) -> gettext.NullTranslations:
        return self.by_language.get(language) or self.by_language[ENGLISH]

    @classmethod
    def load(cls, folder: Path = LOCALES) -> Catalogues:
        """The folder's catalogues, read once per process (they do not change while it
        runs; every runtime and renderer shares them read-only)."""
        return _load(folder)


@functools.cache
def _load(folder: Path) -> Catalogues:
    found: dict[str, gettext.NullTranslations] = {ENGLISH: gettext.NullTranslations()}
    for language in SUPPORTED:
        path = folder / f"{language}.po"
        if language != ENGLISH and path.exists():
            found[language] = _translations(path)
    return Catalogues(found)


def _translations(path: Path) -> gettext.GNUTranslations:
    """A ``.po`` file as gettext translations, compiled in memory. Fuzzy entries are left
    out, as msgfmt does: a guess is not a translation."""
    with path.open("rb") as po:
        catalog = read_po(po, locale=path.stem, domain="messages")
    mo = io.BytesIO()
    write_mo(mo, catalog, use_fuzzy=False)
    mo.seek(0)
    return gettext.GNUTranslations(mo)
