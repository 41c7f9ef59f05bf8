"""Languages: complete, well-formed catalogues, and every template in every language."""

from __future__ import annotations

import gettext
import re
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from bot.blockkit import MAX_FALLBACK
from bot.failures import CSV_COLUMNS
from bot.languages import (
    ENGLISH,
    SUPPORTED,
    Catalogues,
    language_of_environment,
    language_of_locale,
    language_word,
)
from bot.mrkdwn import slack_escape
from bot.render import Message, Renderer
from fakes.block_kit import message_errors, view_errors
from tests.helpers import ROOT, texts_in
from tests.render_cases import (
    CASES,
    NOTIFY,
    SELECTORS,
    VIEWS,
    build_cases,
    hostile_data,
    injected,
    render_case,
)

LOCALES = ROOT / "locales"
TEMPLATES = ROOT / "templates"
PO_FILES = sorted(LOCALES.glob("*.po"))
RENDERER = Renderer()
TRANSLATED = tuple(lang for lang in SUPPORTED if lang != ENGLISH)
CASE_IDS = [case_id for case_id, _, _ in CASES]


def catalog(path: Path):
    with path.open("rb") as po:
        return read_po(po, locale=path.stem)


def key(message_id, context) -> tuple[str | None, str]:
    """A message as gettext finds it: its context and its (singular) id."""
    return context, message_id[0] if isinstance(message_id, tuple) else message_id


def show(entry: tuple[str | None, str]) -> str:
    context, message_id = entry
    return f"{context} | {message_id!r}" if context else repr(message_id)


def extracted() -> dict[tuple[str | None, str], object]:
    """The messages of the sources, extracted as `make messages` does (locales/babel.cfg,
    with `_n_` as a keyword)."""
    with (LOCALES / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg, "babel.cfg")
    keywords = {**DEFAULT_KEYWORDS, "_n_": None}
    found = extract_from_dir(str(ROOT), method_map, options_map, keywords=keywords)
    return {key(message, context): message for _, _, message, _, context in found}


# --- the catalogues --------------------------------------------------------------------------


def test_there_is_a_catalogue_for_every_language() -> None:
    """Every language otajob offers besides English has its .po file, and no other exists."""
    assert sorted(path.stem for path in PO_FILES) == sorted(TRANSLATED)


def test_catalogues_are_complete() -> None:
    """Every message of the templates and bot/render.py is in messages.pot and translated,
    not fuzzy, in every .po, which holds nothing else (no obsolete or stale entries)."""
    sources = extracted()
    problems = []
    pot = {key(m.id, m.context) for m in catalog(LOCALES / "messages.pot") if m.id}
    problems += [f"messages.pot lacks {show(e)}" for e in sorted(sources.keys() - pot, key=str)]
    problems += [
        f"messages.pot has unused {show(e)}" for e in sorted(pot - sources.keys(), key=str)
    ]
    for path in PO_FILES:
        po = catalog(path)
        entries = {key(m.id, m.context): m for m in po if m.id}
        for entry in sorted(sources.keys() - entries.keys(), key=str):
            problems.append(f"{path.name}: missing {show(entry)}")
        for entry in sorted(entries.keys() - sources.keys(), key=str):
            problems.append(f"{path.name}: not in the sources (stale) {show(entry)}")
        for entry in sorted(entries.keys() & sources.keys(), key=str):
            message = entries[entry]
            forms = message.string if isinstance(message.string, tuple) else (message.string,)
            if message.fuzzy:
                problems.append(f"{path.name}: fuzzy {show(entry)}")
            if isinstance(message.id, tuple) != isinstance(sources[entry], tuple):
                problems.append(
                    f"{path.name}: singular/plural differs from the source {show(entry)}"
                )
            elif isinstance(message.id, tuple) and len(forms) != po.num_plurals:
                problems.append(
                    f"{path.name}: {len(forms)} of {po.num_plurals} plural forms {show(entry)}"
                )
            if not all(form and form.strip() for form in forms):
                problems.append(f"{path.name}: untranslated {show(entry)}")
        problems += [f"{path.name}: obsolete {show((None, i))}" for i in po.obsolete]
    assert not problems, (
        "The catalogues do not match the sources:\n  "
        + "\n  ".join(problems)
        + "\nRun `make messages`, then translate every new or fuzzy entry in locales/*.po"
        " (terms: locales/GLOSSARY.md)."
    )


PLACE = re.compile(r"%(?:%|\((\w+)\)([a-z]))")


def places(message: str) -> Counter:
    """The ``%(name)s`` places and ``%%`` signs of a message, counted."""
    return Counter(match.group(0) for match in PLACE.finditer(message))


def translations(path: Path):
    """(message, its translations: one form, or one per plural form) of a .po file."""
    for message in catalog(path):
        if message.id:
            strings = message.string
            yield message, strings if isinstance(strings, tuple) else (strings,)


@pytest.mark.parametrize("path", PO_FILES, ids=lambda path: path.name)
def test_translations_keep_the_placeholders(path: Path) -> None:
    """Each translation has the same %(name)s places and %% signs as its message, and
    formats with them."""
    problems = []
    for message, forms in translations(path):
        source = message.id[-1] if isinstance(message.id, tuple) else message.id
        for form in forms:
            if places(form) != places(source):
                problems.append(f"{source!r}: {places(source)} but {form!r}: {places(form)}")
            dummies = {name: "x" for name in re.findall(r"%\((\w+)\)", form)}
            try:  # Speaker formats every message, places or not
                assert isinstance(form % dummies, str)
            except (ValueError, TypeError, KeyError) as exc:
                problems.append(f"{form!r} does not format: {exc}")
    assert not problems, "\n".join(problems)


# A letter of Japanese or Chinese: hiragana, katakana (not its middle dot), CJK ideographs.
CJK_LETTER = re.compile(
    r"[\u3040-\u309f\u30a0-\u30fa\u30fc-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
)
CODE_SPAN = re.compile(r"`[^`\n]*`")
BOLD_SPAN = re.compile(r"\*[^*\n]+\*")


def markup_against_letters(text: str) -> list[str]:
    """Code and bold spans whose opening or closing mark touches a CJK letter outside the
    span: Slack then shows the marks instead of the markup."""
    spans = [m.span() for m in CODE_SPAN.finditer(text)]
    outside_code = CODE_SPAN.sub(lambda m: "\0" * len(m.group()), text)
    spans += [m.span() for m in BOLD_SPAN.finditer(outside_code)]
    return [
        text[max(start - 3, 0) : end + 3]
        for start, end in spans
        if (start > 0 and CJK_LETTER.match(text[start - 1]))
        or (end < len(text) and CJK_LETTER.match(text[end]))
    ]


def test_the_markup_check_sees_what_slack_would_not_render() -> None:
    """The check below finds marks against letters and accepts spaces and punctuation."""
    assert markup_against_letters("これは*太字*です") == ["これは*太字*です"]
    assert markup_against_letters("`/otajob help`で") == ["`/otajob help`で"]
    assert markup_against_letters("これは *太字* です。`a` 、「`b`」") == []
    assert markup_against_letters("`*` と `****`") == []


@pytest.mark.parametrize("path", PO_FILES, ids=lambda path: path.name)
def test_markup_in_translations_is_set_apart(path: Path) -> None:
    """In a translation, a * or ` that opens or closes a span has a space or punctuation on
    its outer side, never a Japanese or Chinese letter."""
    problems = [
        f"{message.id!r}: {found}"
        for message, forms in translations(path)
        for form in forms
        for found in markup_against_letters(form)
    ]
    assert not problems, "Add a space between the mark and the letter:\n" + "\n".join(problems)


# --- every case in every language ------------------------------------------------------------


def test_every_template_has_cases() -> None:
    """tests/render_cases.py renders every template (partials aside) and every kind, reason
    and outcome a template tells apart."""
    templates = {p.name.removesuffix(".j2") for p in TEMPLATES.glob("*.j2")}
    templates = {name for name in templates if not name.startswith("_")}
    covered = {name for _, name, _ in CASES}
    assert templates - covered == set(), "templates without a case in tests/render_cases.py"
    assert covered - templates == set(), "cases of templates that do not exist"
    assert len(set(CASE_IDS)) == len(CASE_IDS), "case ids must be unique"
    missing = []
    for name in sorted(templates):
        source = (TEMPLATES / f"{name}.j2").read_text()
        selectors = "|".join(SELECTORS)
        wanted = set(re.findall(rf'\b(?:{selectors}) [!=]= "(\w+)"', source))
        for table in re.findall(r"{% set (?:MESSAGES|WORDS) = {(.*?)} %}", source, re.DOTALL):
            wanted |= set(re.findall(r'^\s*"(\w+)":', table, re.MULTILINE))  # keyed by reason
        given = {
            value
            for _, case_name, context in CASES
            if case_name == name
            for selector in SELECTORS
            if isinstance(value := context.get(selector), str)
        }
        missing += [f"{name}: {value}" for value in sorted(wanted - given)]
    assert not missing, "branches without a case:\n" + "\n".join(missing)


DATE_TOKEN = re.compile(r"<!date\^\d+\^[^|<>]*\|[^<>]*>")
CHANNEL_LINK = re.compile(r"<#[CGD][A-Z0-9]{2,30}>")  # made only from validated IDs
MENTIONS = re.compile("|".join(re.escape(f"<@{i}>") for i in NOTIFY if i.startswith("U")))
GROUPS = re.compile("|".join(re.escape(f"<!subteam^{i}>") for i in NOTIFY if i.startswith("S")))


def check_message(message: Message) -> None:
    """Valid for Slack (its Block Kit rules), with a fallback text, and no markup but what the
    templates mean: dates, channel links and the configured mentions."""
    assert message.text.strip() and len(message.text) <= MAX_FALLBACK
    assert message_errors(message.blocks) == [], message_errors(message.blocks)
    for text in [message.text, *texts_in(message.blocks, mrkdwn_only=True)]:
        stripped = GROUPS.sub("", MENTIONS.sub("", CHANNEL_LINK.sub("", DATE_TOKEN.sub("", text))))
        assert "<" not in stripped and ">" not in stripped, text


def check_view(view: dict) -> None:
    """Valid for views.publish (Home tab) or views.open (modal), with no markup from data."""
    method = "views.publish" if view.get("type") == "home" else "views.open"
    assert view_errors(view, method) == [], view_errors(view, method)
    for text in texts_in(view.get("blocks"), mrkdwn_only=True):
        stripped = CHANNEL_LINK.sub("", DATE_TOKEN.sub("", text))
        assert "<" not in stripped and ">" not in stripped, text


def check(name: str, rendered) -> None:
    if name.endswith(".txt"):
        assert isinstance(rendered, str) and rendered.strip()
    elif name in VIEWS:
        check_view(rendered)
    else:
        check_message(rendered)


@pytest.mark.parametrize("lang", SUPPORTED)
@pytest.mark.parametrize(("case_id", "name", "context"), CASES, ids=CASE_IDS)
def test_every_case_renders_in_every_language(case_id, name, context, lang) -> None:
    """Each case renders in English, Japanese and Chinese as Block Kit Slack takes."""
    check(name, render_case(RENDERER, name, context, lang))


# --- no English left in Japanese and Chinese --------------------------------------------------

# English a Japanese or Chinese reader is meant to see: names that are never translated.
ALLOWED = frozenset(
    {
        # The API's IDs and field names, as its documentation and console write them.
        *("JobId", "RequestId", "ProductKey", "DeviceName", "FirmwareId", "IotInstanceId"),
        *("TaskId", "IotId"),
        # API actions, named so an admin finds them in the API reference.
        *("QueryOTAJob", "ListOTATaskByJob", "CancelOTATaskByJob", "CancelOTAStrategyByJob"),
        "ReupgradeOTATask",
        # Products and services, and the credentials an admin configures, by their names:
        # RAM (Resource Access Management), its AccessKey and policy, OIDC, Alibaba Cloud CLI,
        # and the README file that says how.
        *("Alibaba", "Cloud", "IoT", "Platform", "Slack", "otajob", "OTA"),
        *("RAM", "AccessKey", "AliyunIOTReadOnlyAccess", "OIDC", "CLI", "README"),
        # Formats, protocols and abbreviations Japanese and Chinese write in Latin letters.
        *("CSV", "API", "HTTP", "HTTPS", "UTC", "ID"),
        # Slack's Japanese interface says DM; the Chinese console says App (GLOSSARY.md).
        *("DM", "App"),
    }
)
# And in the CSV's header: its columns name the API's fields after their words.
ALLOWED_IN = {"csv_header.txt": frozenset(CSV_COLUMNS)}
# A word: two or more Latin letters on their own. Identifiers with digits or underscores
# (IDs, environment variables such as OTAJOB_FAILED_MAX, error codes) are not words.
WORD = re.compile(r"(?<![A-Za-z0-9_])[A-Za-z]{2,}(?![A-Za-z0-9_])")
EMOJI = re.compile(r":[a-z0-9_+\-]+:")
SLACK_LINK = re.compile(r"<[#@!][^<>]*>")  # channel links, mentions, date tokens
URL = re.compile(r"https?://[^\s|<>]+")
DATA = injected()


def seen_texts(name: str, rendered) -> list[str]:
    """All the text a person sees: the fallback, every text object (sections, fields,
    context, headers, buttons, options, confirm dialogs, a modal's title, submit and
    close), or a terminal's output."""
    if name.endswith(".txt"):
        return [rendered]
    if isinstance(rendered, Message):
        return [rendered.text, *texts_in(rendered.blocks)]
    return texts_in(rendered)


def english_left(text: str) -> list[str]:
    """The words of ``text`` once data, links, code, emoji and URLs are taken out."""
    for value in DATA:  # the case's data, as written and as escaped
        text = text.replace(slack_escape(value), " ").replace(value, " ")
    text = SLACK_LINK.sub(" ", text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    text = URL.sub(" ", EMOJI.sub(" ", CODE_SPAN.sub(" ", text)))
    return WORD.findall(text)


@pytest.mark.parametrize("lang", TRANSLATED)
@pytest.mark.parametrize(("case_id", "name", "context"), CASES, ids=CASE_IDS)
def test_no_english_is_left_in_translations(case_id, name, context, lang) -> None:
    """What a Japanese or Chinese reader sees has no English words, apart from the data,
    code, emoji, links and the names that are never translated."""
    allowed = ALLOWED | ALLOWED_IN.get(name, frozenset())
    left = [
        (word, text)
        for text in seen_texts(name, render_case(RENDERER, name, context, lang))
        for word in english_left(text)
        if word not in allowed
    ]
    assert not left, "English in a translation:\n" + "\n".join(f"{w!r} in {t!r}" for w, t in left)


def mrkdwn_seen(name: str, rendered) -> list[str]:
    """The texts Slack reads as mrkdwn: a message's fallback and its mrkdwn objects."""
    if isinstance(rendered, Message):
        return [rendered.text, *texts_in(rendered.blocks, mrkdwn_only=True)]
    return texts_in(rendered, mrkdwn_only=True)


@pytest.mark.parametrize("lang", TRANSLATED)
def test_markup_in_rendered_translations_is_set_apart(lang: str) -> None:
    """Rendered in Japanese or Chinese, every case's code and bold spans, also those a
    placeholder brings in, have a space or punctuation on their outer side."""
    problems = [
        f"{case_id}: {found}"
        for case_id, name, context in CASES
        if not name.endswith(".txt")
        for text in mrkdwn_seen(name, render_case(RENDERER, name, context, lang))
        for found in markup_against_letters(text)
    ]
    assert not problems, "Add a space between the mark and the letter:\n" + "\n".join(problems)


# --- the longest words of every language, the longest data ----------------------------------


class Longest(gettext.NullTranslations):
    """Each message in whichever language says it longest."""

    def __init__(self, catalogues: Catalogues) -> None:
        super().__init__()
        self._all = [catalogues.get(lang) for lang in SUPPORTED]

    def gettext(self, message):
        return max((t.gettext(message) for t in self._all), key=len)

    def ngettext(self, singular, plural, n):
        return max((t.ngettext(singular, plural, n) for t in self._all), key=len)

    def pgettext(self, context, message):
        return max((t.pgettext(context, message) for t in self._all), key=len)


LONGEST = "longest"
LONGEST_RENDERER = Renderer(
    catalogues=Catalogues(
        {ENGLISH: gettext.NullTranslations(), LONGEST: Longest(Catalogues.load())}
    )
)
HOSTILE_CASES = build_cases(hostile_data())
# Slack's limits on plain_text a template cuts with |plain(n): a cut one ends in "…" at n.
LIMITS = {"header": 150, "button": 75, "option": 75, "title": 100, "confirm": 30, "modal": 24}


def test_the_longest_language_is_the_longest() -> None:
    """The 'longest' catalogue picks the longest of the languages' words."""
    longest = LONGEST_RENDERER.catalogues.get(LONGEST)
    japanese = Catalogues.load().get("ja")
    assert longest.gettext("Refresh") == max("Refresh", japanese.gettext("Refresh"), key=len)
    assert len(longest.gettext("Cancel rollout")) >= len(japanese.gettext("Cancel rollout"))
    assert HOSTILE_CASES and [c[0] for c in HOSTILE_CASES] == CASE_IDS


@pytest.mark.parametrize(
    ("case_id", "name", "context"),
    [case for case in HOSTILE_CASES],
    ids=CASE_IDS,
)
def test_longest_words_with_longest_data_fit(case_id, name, context) -> None:
    """Every case with 5,000 characters of mentions, quotes, backslashes, emoji and Japanese
    in every field, each message in its longest language, stays within Slack's limits."""
    check(name, render_case(LONGEST_RENDERER, name, context, LONGEST))


def cut_texts(rendered) -> list[str]:
    """Texts with a Slack limit of their own that were cut to it."""
    found = []

    def cut(obj, limit: int) -> None:
        text = obj.get("text") if isinstance(obj, dict) else None
        if isinstance(text, str) and len(text) >= limit and text.endswith("…"):
            found.append(text)

    def walk(node) -> None:
        if isinstance(node, dict):
            if node.get("type") == "header":
                cut(node.get("text"), LIMITS["header"])
            if node.get("type") == "button":
                cut(node.get("text"), LIMITS["button"])
            for option in node.get("options") or ():
                cut(option.get("text"), LIMITS["option"])
                cut(option.get("description"), LIMITS["option"])
            if isinstance(node.get("confirm"), dict) and "title" in node["confirm"]:
                cut(node["confirm"]["title"], LIMITS["title"])
                cut(node["confirm"].get("confirm"), LIMITS["confirm"])
                cut(node["confirm"].get("deny"), LIMITS["confirm"])
            if node.get("type") == "modal":
                for part in ("title", "submit", "close"):
                    cut(node.get(part), LIMITS["modal"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(rendered.blocks if isinstance(rendered, Message) else rendered)
    return found


@pytest.mark.parametrize("lang", [*SUPPORTED, LONGEST])
def test_words_fit_slack_limits_uncut(lang: str) -> None:
    """Headers, buttons, options, confirm dialogs and a modal's title, submit and close are
    short enough in every language to show whole (with short data)."""
    renderer = LONGEST_RENDERER if lang == LONGEST else RENDERER
    cut = {
        case_id: texts
        for case_id, name, context in CASES
        if not name.endswith(".txt")
        and (texts := cut_texts(render_case(renderer, name, context, lang)))
    }
    assert not cut, cut


# --- bot/languages.py ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "language"),
    [
        ("ja-JP", "ja"),
        ("zh-CN", "zh_CN"),
        ("zh-TW", "zh_CN"),
        ("en-GB", "en"),
        ("en-US", "en"),
        ("fr-FR", None),
        ("ja_JP.UTF-8", "ja"),
        ("zh_CN.UTF-8", "zh_CN"),
        ("de_DE.UTF-8@euro", None),
        ("C", "en"),
        ("C.UTF-8", "en"),
        ("POSIX", "en"),
        ("", None),
        (None, None),
    ],
)
def test_language_of_locale(locale, language) -> None:
    """Slack and POSIX locales map to the language otajob speaks for them, or None."""
    assert language_of_locale(locale) == language


@pytest.mark.parametrize(
    ("word", "language"),
    [
        ("ja", "ja"),
        ("JP", "ja"),
        ("日本語", "ja"),
        (" zh ", "zh_CN"),
        ("zh-CN", "zh_CN"),
        ("中文", "zh_CN"),
        ("English", "en"),
        ("en", "en"),
        ("fr", None),
        ("default", None),
        ("", None),
    ],
)
def test_language_word(word, language) -> None:
    """What people type after `/otajob language` names a language, or nothing."""
    assert language_word(word) == language


@pytest.mark.parametrize(
    ("environ", "language"),
    [
        ({"LC_ALL": "ja_JP.UTF-8", "LC_MESSAGES": "en_US", "LANG": "zh_CN.UTF-8"}, "ja"),
        ({"LC_MESSAGES": "zh_CN.UTF-8", "LANG": "ja_JP.UTF-8"}, "zh_CN"),
        ({"LANG": "zh_TW.UTF-8"}, "zh_CN"),
        ({"LC_ALL": "", "LANG": "ja_JP.UTF-8"}, "ja"),
        ({"LC_ALL": "fr_FR.UTF-8", "LANG": "ja_JP.UTF-8"}, "en"),
        ({"LANG": "C"}, "en"),
        ({}, "en"),
    ],
)
def test_language_of_environment(environ, language) -> None:
    """LC_ALL beats LC_MESSAGES beats LANG; a language otajob does not speak means English."""
    assert language_of_environment(environ) == language


def test_catalogues_load_every_language_and_fall_back_to_english() -> None:
    """The catalogues hold English and every .po; an unknown language gets English."""
    catalogues = Catalogues.load()
    assert set(catalogues.by_language) == set(SUPPORTED)
    assert catalogues.get("xx") is catalogues.get(ENGLISH)
    assert catalogues.get(ENGLISH).gettext("Refresh") == "Refresh"
    assert catalogues.get("ja").gettext("Refresh") != "Refresh"


def test_catalogues_leave_out_fuzzy_entries(tmp_path: Path) -> None:
    """A fuzzy entry is a guess, not a translation: the message stays in English."""
    (tmp_path / "ja.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n'
        '"Plural-Forms: nplurals=1; plural=0;\\n"\n\n'
        'msgid "Refresh"\nmsgstr "更新"\n\n'
        '#, fuzzy\nmsgid "Open"\nmsgstr "開く"\n',
        encoding="utf-8",
    )
    catalogues = Catalogues.load(tmp_path)
    assert set(catalogues.by_language) == {ENGLISH, "ja"}
    assert catalogues.get("ja").gettext("Refresh") == "更新"
    assert catalogues.get("ja").gettext("Open") == "Open"
