"""Reading Slack's escaped text back into what was typed: tokens kept whole."""

from __future__ import annotations

from bot.slack.typed_text import Token, unescape, words


def test_entities_are_unescaped_once() -> None:
    assert unescape("a &lt;b&gt; &amp;amp; c") == "a <b> &amp; c"


def test_tokens_keep_their_kind_id_and_label() -> None:
    found = words("notify <@U012AB3CD|alice> <!subteam^S0614TZR7|@oncall> in <#C0ABC|ops> <!here>")
    tokens = [w for w in found if isinstance(w, Token)]
    assert [(t.kind, t.ident, t.label, str(t)) for t in tokens] == [
        ("user", "U012AB3CD", "alice", "<@U012AB3CD>"),
        ("group", "S0614TZR7", "@oncall", "<!subteam^S0614TZR7>"),
        ("channel", "C0ABC", "ops", "<#C0ABC>"),
        ("special", "here", "", "<!here>"),
    ]
    assert found[0] == "notify" and found[3] == "in"


def test_typed_out_mentions_are_plain_text() -> None:
    found = words("&lt;@U012AB3CD&gt; &lt;!channel&gt;")
    assert found == ["<@U012AB3CD>", "<!channel>"]
    assert not any(isinstance(w, Token) for w in found)


def test_links_become_what_the_person_saw() -> None:
    assert words(
        "<https://x.example/a?b=1&amp;c=2|the label> <mailto:a@b.example|a@b.example>"
    ) == [
        "the",
        "label",
        "a@b.example",
    ]
    assert words("<https://x.example/a?b=1&amp;c=2>") == ["https://x.example/a?b=1&c=2"]


def test_tokens_glued_to_commas_are_split() -> None:
    assert words("<@U1AAA|a>,<@U2BBB|b>") == ["<@U1AAA>", ",", "<@U2BBB>"]
