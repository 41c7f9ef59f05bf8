"""The request builder of the fake Slack (fakes/inbound.py): text escaped and picks
turned into tokens as Slack does, Slack's payload shapes, retries and signatures."""

from __future__ import annotations

import json
import time

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from fakes import (
    FakeSlack,
    Inbound,
    as_http,
    checkboxes,
    static_select,
    text_input,
    users_select,
)
from fakes.inbound import escape

SECRET = "shhh"


@pytest.fixture
def fake() -> FakeSlack:
    """A fake Slack that knows some people, a user group and channels (not started: these
    tests only build requests)."""
    fake = FakeSlack()
    fake.directory.add_user("U0ONCALL1", "oncall")
    fake.directory.add_usergroup("S0FW1", "fw", ("U0ONCALL1",))
    fake.add_channel("C0PS", "ops")
    fake.add_channel("G0SEC", "secret", is_private=True)
    return fake


@pytest.fixture
def slack(fake) -> Inbound:
    return Inbound(fake, SECRET)


def typed(slack: Inbound, text: str, **kwargs) -> str:
    return slack.command(text, **kwargs).body["text"]


def headers_of(request) -> dict[str, str]:
    return as_http(request)[1]


# ---- text ---------------------------------------------------------------------------------


def test_only_ampersand_and_angle_brackets_are_escaped():
    assert escape("a & b < c > d 'e' \"f\"") == "a &amp; b &lt; c &gt; d 'e' \"f\""


def test_what_a_person_typed_arrives_escaped_with_picks_as_tokens(slack):
    text = typed(slack, "watch J1 alert failed>5% notify @oncall")
    assert text == "watch J1 alert failed&gt;5% notify <@U0ONCALL1|oncall>"
    assert typed(slack, "a & <b>") == "a &amp; &lt;b&gt;"


def test_tokens_with_and_without_labels(slack):
    said = "@oncall @fw #ops #secret"
    assert typed(slack, said) == "<@U0ONCALL1|oncall> <!subteam^S0FW1|@fw> <#C0PS|ops> <#G0SEC|>"
    assert typed(slack, said, labels=False) == "<@U0ONCALL1> <!subteam^S0FW1> <#C0PS> <#G0SEC>"


def test_broadcasts_and_links(slack):
    assert typed(slack, "@here @channel @everyone") == "<!here> <!channel> <!everyone>"
    assert typed(slack, "see https://x.example/a?b=1&c=2.") == (
        "see <https://x.example/a?b=1&amp;c=2>."
    )
    assert typed(slack, "www.foo.com") == "<http://www.foo.com|www.foo.com>"
    assert typed(slack, "mail bob@example.com") == "mail <mailto:bob@example.com|bob@example.com>"


def test_names_slack_does_not_know_stay_text(slack):
    assert typed(slack, "notify @nobody in #nowhere") == "notify @nobody in #nowhere"
    # Punctuation after a name is not part of it.
    assert typed(slack, "@oncall, #ops.") == "<@U0ONCALL1|oncall>, <#C0PS|ops>."


def test_without_should_escape_only_the_entities_are_escaped(slack):
    text = typed(slack, "notify @oncall in #ops > 5 https://x.example", should_escape=False)
    assert text == "notify @oncall in #ops &gt; 5 https://x.example"
    assert Inbound(None, SECRET, should_escape=False).command("@here & x").body["text"] == (
        "@here &amp; x"
    )


def test_typed_tokens_are_text_unless_pasted_as_tokens(slack):
    assert typed(slack, "watch J1 <#C999|x>") == "watch J1 &lt;#C999|x&gt;"
    pasted = typed(slack, "watch J1 <#C999|x> <@U1> & @oncall", preformatted=True)
    assert pasted == "watch J1 <#C999|x> <@U1> &amp; <@U0ONCALL1|oncall>"


# ---- slash commands -------------------------------------------------------------------------


def test_slash_command_fields(fake, slack):
    body = slack.command("status", key="k1").body
    assert list(body) == [
        "token",
        "team_id",
        "team_domain",
        "channel_id",
        "channel_name",
        "user_id",
        "user_name",
        "command",
        "text",
        "api_app_id",
        "is_enterprise_install",
        "response_url",
        "trigger_id",
    ]
    assert (body["team_id"], body["user_id"], body["user_name"]) == ("T0001", "U123", "alice")
    assert (body["channel_id"], body["command"], body["text"]) == ("C123", "/otajob", "status")
    assert body["response_url"] == fake.response_url("k1")
    assert body["is_enterprise_install"] == "false"


def test_channel_names_as_slack_sends_them(slack):
    assert slack.command("x", channel_id="C0PS").body["channel_name"] == "ops"
    assert slack.command("x", channel_id="G0SEC").body["channel_name"] == "privategroup"
    assert slack.command("x", channel_id="D0DM1").body["channel_name"] == "directmessage"


def test_an_enterprise_grid_workspace_adds_its_org(fake):
    grid = Inbound(fake, SECRET, enterprise_id="E0001", enterprise_name="Globular Construct")
    body = grid.command("x").body
    assert (body["enterprise_id"], body["enterprise_name"]) == ("E0001", "Globular Construct")
    click = grid.click("a", "v").body
    assert click["enterprise"] == {"id": "E0001", "name": "Globular Construct"}
    envelope = grid.home_opened().body
    assert envelope["enterprise_id"] == "E0001"
    assert envelope["authorizations"][0]["enterprise_id"] == "E0001"
    assert "enterprise_id" not in Inbound(fake, SECRET).command("x").body


def test_slack_connect_members_of_another_org_cannot_use_the_command(fake, slack):
    fake.directory.add_user("U0EXT", "ext", team_id="T0THEM")
    with pytest.raises(ValueError, match="no slash command"):
        slack.command("x", user_id="U0EXT")


async def test_trigger_ids_come_from_the_fake_and_expire_after_3_seconds():
    now = [1000.0]
    async with FakeSlack(clock=lambda: now[0]) as fake:
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
        view = {"type": "modal", "title": {"type": "plain_text", "text": "x"}, "blocks": []}
        slack = Inbound(fake, SECRET)
        fresh, late = slack.command("x").body, slack.click("a", "v").body
        assert (await client.views_open(trigger_id=fresh["trigger_id"], view=view))["ok"]
        now[0] += 3.5
        with pytest.raises(SlackApiError, match="expired_trigger_id"):
            await client.views_open(trigger_id=late["trigger_id"], view=view)


# ---- buttons --------------------------------------------------------------------------------


def test_a_click_in_a_channel_message_carries_the_message(fake, slack):
    ts = fake.add_message("C0PS", "card", user="UBOT")["ts"]
    payload = slack.click("job_refresh", "v", channel_id="C0PS", message_ts=ts).body
    assert payload["type"] == "block_actions"
    assert payload["user"] == {
        "id": "U123",
        "username": "alice",
        "name": "alice",
        "team_id": "T0001",
    }
    assert payload["container"] == {
        "type": "message",
        "message_ts": ts,
        "channel_id": "C0PS",
        "is_ephemeral": False,
    }
    assert payload["channel"] == {"id": "C0PS", "name": "ops"}
    assert payload["message"]["text"] == "card" and payload["message"]["ts"] == ts
    assert "channel" not in payload["message"]
    assert payload["response_url"] == fake.response_url("b1")
    assert payload["state"] == {"values": {}}
    (action,) = payload["actions"]
    assert (action["action_id"], action["value"], action["type"]) == ("job_refresh", "v", "button")


def test_a_click_in_an_ephemeral_message_has_no_message(fake, slack):
    payload = slack.click("job_refresh", "v", where="ephemeral", channel_id="G0SEC").body
    assert payload["container"]["is_ephemeral"] is True
    assert "message" not in payload
    assert payload["channel"] == {"id": "G0SEC", "name": "privategroup"}
    assert payload["response_url"] == fake.response_url("b1")


def test_a_click_on_the_home_tab_or_in_a_modal_names_the_view(fake, slack):
    fake.home["U123"] = {"id": "V0HOME", "type": "home", "blocks": [{"type": "divider"}]}
    home = slack.click("home_refresh", "r", where="home").body
    assert home["container"] == {"type": "view", "view_id": "V0HOME"}
    assert home["view"]["type"] == "home" and home["view"]["blocks"] == [{"type": "divider"}]
    assert "channel" not in home and "response_url" not in home and "message" not in home

    fake.views["V0MOD"] = {"id": "V0MOD", "type": "modal", "callback_id": "cb", "blocks": []}
    modal = slack.click("pick", "x", container={"type": "view", "view_id": "V0MOD"}).body
    assert modal["view"]["type"] == "modal" and modal["view"]["callback_id"] == "cb"


# ---- modal submissions ----------------------------------------------------------------------


def test_a_submission_carries_the_view_as_opened_and_the_values(fake, slack):
    fake.views["V0MOD"] = {
        "id": "V0MOD",
        "type": "modal",
        "callback_id": "cancel_confirm",
        "private_metadata": '{"job": "J1"}',
        "title": {"type": "plain_text", "text": "Cancel"},
        "blocks": [{"type": "divider"}],
    }
    values = {
        "why": {"reason": text_input("it's <broken> & late")},
        "opts": {"in_progress": checkboxes("in_progress", ("q", "Queued"))},
        "size": {"pick": static_select("big")},
        "who": {"user": users_select("U0ONCALL1")},
    }
    payload = slack.submit(view_id="V0MOD", values=values).body
    assert payload["type"] == "view_submission"
    view = payload["view"]
    assert (view["id"], view["callback_id"], view["private_metadata"]) == (
        "V0MOD",
        "cancel_confirm",
        '{"job": "J1"}',
    )
    assert view["blocks"] == [{"type": "divider"}] and view["type"] == "modal"
    state = view["state"]["values"]
    assert state["why"]["reason"] == {"type": "plain_text_input", "value": "it's <broken> & late"}
    assert [o["value"] for o in state["opts"]["in_progress"]["selected_options"]] == [
        "in_progress",
        "q",
    ]
    assert state["opts"]["in_progress"]["selected_options"][1]["text"]["text"] == "Queued"
    assert state["size"]["pick"]["selected_option"]["value"] == "big"
    assert state["who"]["user"] == {"type": "users_select", "selected_user": "U0ONCALL1"}
    assert payload["user"]["id"] == "U123" and payload["trigger_id"]


# ---- Events API -----------------------------------------------------------------------------


def test_an_event_callback_envelope(slack):
    envelope = slack.mention("@otajob status J1 @oncall", event_id="Ev9", ts="1.000002").body
    assert envelope["type"] == "event_callback" and envelope["event_id"] == "Ev9"
    assert (envelope["team_id"], envelope["api_app_id"]) == ("T0001", "A0001")
    assert abs(envelope["event_time"] - time.time()) < 5
    assert envelope["authorizations"] == [
        {
            "enterprise_id": None,
            "team_id": "T0001",
            "user_id": "UBOT",
            "is_bot": True,
            "is_enterprise_install": False,
        }
    ]
    assert envelope["is_ext_shared_channel"] is False and envelope["event_context"]
    event = envelope["event"]
    assert (event["type"], event["user"], event["channel"], event["ts"]) == (
        "app_mention",
        "U123",
        "C123",
        "1.000002",
    )
    assert event["text"] == "<@UBOT> status J1 <@U0ONCALL1>"
    (section,) = event["blocks"][0]["elements"]
    assert section["elements"] == [
        {"type": "user", "user_id": "UBOT"},
        {"type": "text", "text": " status J1 "},
        {"type": "user", "user_id": "U0ONCALL1"},
    ]
    assert "thread_ts" not in event
    assert slack.mention("@otajob x", thread_ts="1.000001").body["event"]["thread_ts"] == "1.000001"


def test_mention_text_is_escaped_like_any_message(slack):
    event = slack.mention_event("@otajob watch J1 alert failed>5% & <stuff>")
    assert event["text"] == "<@UBOT> watch J1 alert failed&gt;5% &amp; &lt;stuff&gt;"
    named = slack.mention_event("J1 @otajob", labels=True)
    assert named["text"] == "J1 <@UBOT|otajob>"


def test_a_slack_connect_member_of_another_org(fake, slack):
    fake.directory.add_user("U0EXT", "ext", team_id="T0THEM")
    envelope = slack.mention("@otajob J1", user_id="U0EXT").body
    event = envelope["event"]
    assert (event["user_team"], event["source_team"], event["team"]) == ("T0THEM",) * 3
    assert envelope["team_id"] == "T0001" and envelope["is_ext_shared_channel"] is True


def test_app_home_opened_carries_the_published_view(fake, slack):
    event = slack.home_opened_event("U123")
    assert (event["type"], event["user"], event["tab"]) == ("app_home_opened", "U123", "home")
    assert event["channel"].startswith("D") and "view" not in event
    fake.home["U123"] = {"id": "V0HOME", "type": "home", "blocks": []}
    assert slack.home_opened_event("U123")["view"]["id"] == "V0HOME"
    assert "view" not in slack.home_opened_event("U123", tab="messages")


def test_a_retry_is_the_same_body_with_retry_headers(slack):
    first = slack.home_opened(event_id="Ev1")
    again = slack.retry(first, 2, "http_error")
    assert again.raw_body == first.raw_body
    headers = headers_of(again)
    assert (headers["x-slack-retry-num"], headers["x-slack-retry-reason"]) == ("2", "http_error")
    assert "x-slack-retry-num" not in headers_of(first)
    with pytest.raises(ValueError):
        slack.retry(first, 4)
    with pytest.raises(ValueError):
        slack.retry(first, 1, "bored")


# ---- signing --------------------------------------------------------------------------------


def test_every_request_is_signed_as_slack_signs(fake, slack):
    fake.views["V1"] = {"id": "V1", "type": "modal", "blocks": []}
    requests = [
        slack.command("watch J1"),
        slack.click("a", "v"),
        slack.click("a", "v", where="home"),
        slack.submit("cb", view_id="V1", values={}),
        slack.mention("@otajob J1"),
        slack.home_opened(),
        slack.retry(slack.mention("@otajob J1"), 1),
    ]
    verifier = SignatureVerifier(SECRET)
    for request in requests:
        body, headers = as_http(request)
        assert verifier.is_valid_request(body, headers)
        assert not SignatureVerifier("other").is_valid_request(body, headers)
    content_types = [headers_of(r)["content-type"] for r in requests]
    assert content_types == ["application/x-www-form-urlencoded"] * 4 + ["application/json"] * 3
    assert json.loads(requests[4].raw_body)["type"] == "event_callback"


def test_a_forged_or_old_request(slack):
    forged = slack.command("x", signing_secret="not-ours")
    assert not SignatureVerifier(SECRET).is_valid_request(*as_http(forged))
    old = slack.command("x", timestamp=int(time.time()) - 600)
    body, headers = as_http(old)
    assert headers["x-slack-request-timestamp"] == str(int(time.time()) - 600)
    assert not SignatureVerifier(SECRET).is_valid_request(body, headers)  # too old
