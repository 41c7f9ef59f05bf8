"""The fake Slack refuses what real Slack refuses: trigger IDs, Block Kit limits, message
length, rate limits and response_url limits (each rule's source is beside it in fakes/).

Time is the fake's injected clock, moved by the tests; nothing here sleeps."""

import re

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from fakes import FakeSlack
from fakes.block_kit import message_errors, view_errors


class Clock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def fake(clock):
    async with FakeSlack(clock=clock) as fake:
        yield fake


@pytest.fixture
def client(fake):
    return AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)


async def error_of(call) -> tuple[str, dict]:
    """The error code and the whole answer of a Web API call that must fail."""
    with pytest.raises(SlackApiError) as info:
        await call
    return info.value.response["error"], info.value.response.data


async def post_to(fake: FakeSlack, key: str, body: dict) -> tuple[int, str]:
    url = fake.response_url(key)
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as resp:
        return resp.status, await resp.text()


def text(value: str, kind: str = "mrkdwn") -> dict:
    return {"type": kind, "text": value}


def plain(value: str) -> dict:
    return text(value, "plain_text")


def section(value: str = "hi", **extra) -> dict:
    return {"type": "section", "text": text(value), **extra}


def button(label: str = "Go", **extra) -> dict:
    return {"type": "button", "text": plain(label), "action_id": "go", **extra}


def modal(**extra) -> dict:
    return {"type": "modal", "title": plain("Watch"), "blocks": [section()], **extra}


# ---- trigger_id ----------------------------------------------------------------------------
async def test_new_trigger_id_is_shaped_like_slacks_and_unique(fake):
    """views.open reference: trigger_id example "12345.98765.abcd2358fdea"."""
    first, second = fake.new_trigger_id(), fake.new_trigger_id()
    assert re.fullmatch(r"\d+\.\d+\.[0-9a-f]+", first) and first != second


async def test_trigger_id_is_used_once_within_three_seconds(fake, client, clock):
    """views.open errors: invalid_trigger_id, exchanged_trigger_id, expired_trigger_id."""
    assert (await error_of(client.views_open(trigger_id="1.2.3", view=modal())))[0] == (
        "invalid_trigger_id"
    )
    trigger = fake.new_trigger_id()
    clock.advance(3.0)  # still within its three seconds
    assert (await client.views_open(trigger_id=trigger, view=modal()))["ok"]
    again = await error_of(client.views_open(trigger_id=trigger, view=modal()))
    assert again[0] == "exchanged_trigger_id"

    late = fake.new_trigger_id()
    clock.advance(3.01)
    assert (await error_of(client.views_open(trigger_id=late, view=modal())))[0] == (
        "expired_trigger_id"
    )
    assert [c.error for c in fake.calls_to("views.open")] == [
        "invalid_trigger_id",
        None,
        "exchanged_trigger_id",
        "expired_trigger_id",
    ]
    assert len(fake.views) == 1


async def test_views_push_exchanges_a_trigger_like_views_open(fake, client, clock):
    trigger = fake.new_trigger_id()
    assert (await client.views_push(trigger_id=trigger, view=modal()))["ok"]
    assert (await error_of(client.views_push(trigger_id=trigger, view=modal())))[0] == (
        "exchanged_trigger_id"
    )
    late = fake.new_trigger_id()
    clock.advance(4)
    assert (await error_of(client.views_push(trigger_id=late, view=modal())))[0] == (
        "expired_trigger_id"
    )


# ---- Block Kit in messages ------------------------------------------------------------------
FIFTY = [section(str(i)) for i in range(50)]
GOOD_MESSAGES = [
    FIFTY,
    [section("x" * 3000)],
    [{"type": "section", "fields": [text("f" * 2000)] * 10}],
    [{"type": "header", "text": plain("h" * 150)}],
    [{"type": "actions", "elements": [button("b" * 75, value="v" * 2000, url="u" * 3000)]}],
    [section(block_id="b" * 255, accessory=button(action_id="a" * 255))],
    [{"type": "context", "elements": [text("c")] * 10}],
    [{"type": "actions", "elements": [button(action_id=f"a{i}") for i in range(25)]}],
    [{"type": "divider"}, section(block_id="one"), section(block_id="two")],
]

BAD_MESSAGES = {  # what breaks -> (blocks, where Slack points)
    "51 blocks": ([*FIFTY, section()], "/blocks]"),
    "section text 3001": ([section("x" * 3001)], "/blocks/0/text/text"),
    "11 fields": ([{"type": "section", "fields": [text("f")] * 11}], "/blocks/0/fields]"),
    "field 2001": ([{"type": "section", "fields": [text("f" * 2001)]}], "/blocks/0/fields/0/text"),
    "header 151": ([{"type": "header", "text": plain("h" * 151)}], "/blocks/0/text/text"),
    "header mrkdwn": ([{"type": "header", "text": text("h")}], "/blocks/0/text"),
    "button text 76": (
        [{"type": "actions", "elements": [button("b" * 76)]}],
        "/blocks/0/elements/0/text/text",
    ),
    "button value 2001": (
        [{"type": "actions", "elements": [button(value="v" * 2001)]}],
        "/blocks/0/elements/0/value",
    ),
    "button url 3001": (
        [{"type": "actions", "elements": [button(url="u" * 3001)]}],
        "/blocks/0/elements/0/url",
    ),
    "action_id 256": (
        [section(accessory=button(action_id="a" * 256))],
        "/blocks/0/accessory/action_id",
    ),
    "block_id 256": ([section(block_id="b" * 256)], "/blocks/0/block_id"),
    "duplicate block_id": (
        [section(block_id="same"), section(block_id="same")],
        "/blocks/1/block_id",
    ),
    "duplicate action_id": (
        [{"type": "actions", "elements": [button(), button()]}],
        "/blocks/0/elements/1",
    ),
    "context 11 elements": (
        [{"type": "context", "elements": [text("c")] * 11}],
        "/blocks/0/elements]",
    ),
    "actions 26 elements": (
        [{"type": "actions", "elements": [button(action_id=f"a{i}") for i in range(26)]}],
        "/blocks/0/elements]",
    ),
    "unknown block type": ([{"type": "sektion", "text": text("x")}], "/blocks/0/type"),
    "wrong text object type": ([section() | {"text": text("x", "markdown")}], "/blocks/0/text"),
    "empty mrkdwn text": ([section("")], "/blocks/0/text/text"),
    "empty plain_text button": (
        [{"type": "actions", "elements": [button("")]}],
        "/blocks/0/elements/0/text/text",
    ),
    "section without text or fields": ([{"type": "section"}], "/blocks/0]"),
    "blocks not a list": ({"type": "divider"}, "/blocks]"),
}


@pytest.mark.parametrize("blocks", GOOD_MESSAGES)
async def test_messages_at_the_limits_are_accepted(client, blocks):
    assert message_errors(blocks) == []
    assert (await client.chat_postMessage(channel="C1", text="fallback", blocks=blocks))["ok"]


@pytest.mark.parametrize("case", sorted(BAD_MESSAGES))
async def test_messages_past_a_limit_get_invalid_blocks(fake, client, case):
    blocks, pointer = BAD_MESSAGES[case]
    error, data = await error_of(client.chat_postMessage(channel="C1", text="x", blocks=blocks))
    assert error == "invalid_blocks", case
    messages = data["response_metadata"]["messages"]
    assert all(m.startswith("[ERROR] ") for m in messages)
    assert any(pointer in m for m in messages), messages
    assert data["errors"] == [m.removeprefix("[ERROR] ") for m in messages]
    assert fake.messages("C1") == []  # nothing was posted


async def test_every_message_method_checks_blocks(fake, client):
    """chat.postMessage, chat.postEphemeral, chat.update and response_url posts."""
    bad = BAD_MESSAGES["section text 3001"][0]
    posted = await client.chat_postMessage(channel="C1", text="card")
    calls = [
        client.chat_postEphemeral(channel="C1", user="U1", text="x", blocks=bad),
        client.chat_update(channel="C1", ts=posted["ts"], text="x", blocks=bad),
    ]
    for call in calls:
        assert (await error_of(call))[0] == "invalid_blocks"
    assert fake.messages("C1")[0]["text"] == "card" and fake.ephemerals == []

    assert await post_to(fake, "r1", {"text": "x", "blocks": bad}) == (400, "invalid_blocks")
    assert fake.posts_to("r1")[0].error == "invalid_blocks"


async def test_blocks_that_are_not_json_get_invalid_blocks_format(fake):
    async with aiohttp.ClientSession() as http:
        data = {"token": fake.bot_token, "channel": "C1", "blocks": "[{not json"}
        async with http.post(fake.api_url + "chat.postMessage", data=data) as resp:
            assert (await resp.json())["error"] == "invalid_blocks_format"


# ---- Block Kit in views ---------------------------------------------------------------------
GOOD_VIEWS = [
    modal(
        title=plain("t" * 24),
        submit=plain("s" * 24),
        close=plain("c" * 24),
        private_metadata="m" * 3000,
        callback_id="c" * 255,
        blocks=[section(str(i)) for i in range(100)],
    ),
    modal(
        submit=plain("Save"),
        blocks=[
            {
                "type": "input",
                "label": plain("Job"),
                "element": {"type": "plain_text_input", "action_id": "job"},
            }
        ],
    ),
]
BAD_VIEWS = {
    "101 blocks": (modal(blocks=[section()] * 101), "/view/blocks]"),
    "title 25": (modal(title=plain("t" * 25)), "/view/title/text"),
    "title mrkdwn": (modal(title=text("t")), "/view/title"),
    "submit 25": (modal(submit=plain("s" * 25)), "/view/submit/text"),
    "close 25": (modal(close=plain("c" * 25)), "/view/close/text"),
    "private_metadata 3001": (modal(private_metadata="m" * 3001), "/view/private_metadata"),
    "callback_id 256": (modal(callback_id="c" * 256), "/view/callback_id"),
    "no title": ({"type": "modal", "blocks": []}, "/view]"),
    "input without submit": (
        modal(
            blocks=[
                {
                    "type": "input",
                    "label": plain("Job"),
                    "element": {"type": "plain_text_input", "action_id": "job"},
                }
            ]
        ),
        "/view]",
    ),
    "bad block inside": (modal(blocks=[section("x" * 3001)]), "/view/blocks/0/text/text"),
}


@pytest.mark.parametrize("view", GOOD_VIEWS)
async def test_modals_at_the_limits_open(fake, client, view):
    assert view_errors(view, "views.open") == []
    assert (await client.views_open(trigger_id=fake.new_trigger_id(), view=view))["ok"]


@pytest.mark.parametrize("case", sorted(BAD_VIEWS))
async def test_modals_past_a_limit_get_invalid_arguments(fake, client, case):
    """views.open / .push / .update list invalid_arguments, answered with details in
    response_metadata.messages; the trigger is not used up."""
    view, pointer = BAD_VIEWS[case]
    trigger = fake.new_trigger_id()
    error, data = await error_of(client.views_open(trigger_id=trigger, view=view))
    assert error == "invalid_arguments", case
    assert any(pointer in m for m in data["response_metadata"]["messages"]), data
    assert fake.views == {}
    assert (await client.views_open(trigger_id=trigger, view=modal()))["ok"]


async def test_views_update_and_publish_check_the_view(fake, client):
    opened = await client.views_open(trigger_id=fake.new_trigger_id(), view=modal())
    view_id = opened["view"]["id"]
    bad_update = client.views_update(view_id=view_id, view=modal(title=plain("t" * 25)))
    assert (await error_of(bad_update))[0] == "invalid_arguments"

    home = {"type": "home", "blocks": [section(str(i)) for i in range(100)]}
    assert (await client.views_publish(user_id="U1", view=home))["ok"]
    too_many = home | {"blocks": home["blocks"] + [section()]}
    error, data = await error_of(client.views_publish(user_id="U1", view=too_many))
    assert error == "invalid_arguments"
    assert (
        "[ERROR] no more than 100 items allowed [json-pointer:/view/blocks]"
        in (data["response_metadata"]["messages"])
    )
    as_modal = client.views_publish(user_id="U1", view=modal())  # publish takes a Home tab
    assert (await error_of(as_modal))[0] == "invalid_arguments"
    assert len(fake.home["U1"]["blocks"]) == 100


# ---- message text ---------------------------------------------------------------------------
async def test_text_over_40000_characters_gets_msg_too_long(fake, client):
    long = "x" * 40_001
    assert (await client.chat_postMessage(channel="C1", text="x" * 40_000))["ok"]
    posted = await client.chat_postMessage(channel="C1", text="short")
    calls = [
        client.chat_postMessage(channel="C1", text=long),
        client.chat_postEphemeral(channel="C1", user="U1", text=long),
        client.chat_update(channel="C1", ts=posted["ts"], text=long),
    ]
    for call in calls:
        assert (await error_of(call))[0] == "msg_too_long"
    assert await post_to(fake, "r1", {"text": long}) == (400, "msg_too_long")


async def test_response_url_needs_content(fake):
    assert await post_to(fake, "r1", {"response_type": "ephemeral"}) == (400, "no_text")
    assert await post_to(fake, "r1", {"delete_original": True}) == (200, "ok")


# ---- chat.update and the channel model -------------------------------------------------------
async def test_chat_update_refuses_what_slack_refuses(fake, client):
    """chat.update errors: message_not_found, cant_update_message, no_text, and a user ID
    where the DM's ID is needed gets channel_not_found."""
    theirs = fake.add_message("C1", "a person wrote this", user="U7")
    assert (await error_of(client.chat_update(channel="C1", ts=theirs["ts"], text="x")))[0] == (
        "cant_update_message"
    )
    assert fake.messages("C1")[0]["text"] == "a person wrote this"
    assert (await error_of(client.chat_update(channel="C1", ts="1.000001", text="x")))[0] == (
        "message_not_found"
    )
    ours = await client.chat_postMessage(channel="C1", text="card")
    with pytest.warns(UserWarning, match="top-level `text`"):  # slack_sdk warns too
        assert (await error_of(client.chat_update(channel="C1", ts=ours["ts"])))[0] == "no_text"
    dm = await client.chat_postMessage(channel="U7", text="hi")
    assert dm["channel"] == "DU7"
    assert (await error_of(client.chat_update(channel="U7", ts=dm["ts"], text="x")))[0] == (
        "channel_not_found"
    )
    assert (await client.chat_update(channel="DU7", ts=dm["ts"], text="edited"))["ok"]


async def test_ephemeral_user_must_be_in_the_channel(fake, client):
    """chat.postEphemeral errors: user_not_in_channel."""
    fake.add_channel("C5", members=("U1",))
    error = await error_of(client.chat_postEphemeral(channel="C5", user="U2", text="x"))
    assert error[0] == "user_not_in_channel"


# ---- rate limits ----------------------------------------------------------------------------
async def rate_limited(call) -> int:
    """The Retry-After (seconds) of a call that must be answered 429 ratelimited."""
    with pytest.raises(SlackApiError) as info:
        await call
    response = info.value.response
    assert response.status_code == 429 and response["error"] == "ratelimited"
    return int(response.headers["Retry-After"])


async def test_post_message_allows_a_burst_of_five_per_channel(fake, client, clock):
    """About 1 message per second per channel, short bursts allowed: 5 in any 5 seconds."""
    for i in range(5):
        assert (await client.chat_postMessage(channel="C1", text=str(i)))["ok"]
    assert await rate_limited(client.chat_postMessage(channel="C1", text="6th")) == 5
    assert (await client.chat_postMessage(channel="C2", text="other channel"))["ok"]
    clock.advance(2.5)
    assert await rate_limited(client.chat_postMessage(channel="C1", text="still")) == 3
    clock.advance(2.5)  # the first five leave the window together
    assert (await client.chat_postMessage(channel="C1", text="now"))["ok"]
    assert len(fake.messages("C1")) == 6
    assert [c.error for c in fake.calls_to("chat.postMessage")].count("ratelimited") == 2


async def test_post_message_sustains_one_per_second(client, clock):
    for i in range(20):
        assert (await client.chat_postMessage(channel="C1", text=str(i)))["ok"]
        clock.advance(1.0)


@pytest.mark.parametrize(
    ("method", "per_minute"),
    [("chat.update", 50), ("chat.postEphemeral", 100), ("usergroups.users.list", 20)],
)
async def test_tiered_methods_allow_their_tier_per_minute(fake, client, clock, method, per_minute):
    fake.usergroups["S1"] = ["U1"]
    posted = await client.chat_postMessage(channel="C1", text="card")
    args = {
        "chat.update": {"channel": "C1", "ts": posted["ts"], "text": "x"},
        "chat.postEphemeral": {"channel": "C1", "user": "U1", "text": "x"},
        "usergroups.users.list": {"usergroup": "S1"},
    }[method]
    for _ in range(per_minute):
        assert (await client.api_call(method, json=args))["ok"]
        clock.advance(0.1)
    assert await rate_limited(client.api_call(method, json=args)) == 60 - per_minute // 10
    clock.advance(60 - per_minute / 10)
    assert (await client.api_call(method, json=args))["ok"]


async def test_views_publish_is_tier_4(client, clock):
    home = {"type": "home", "blocks": []}
    for _ in range(100):
        await client.views_publish(user_id="U1", view=home)
    assert await rate_limited(client.views_publish(user_id="U1", view=home)) == 60


async def test_a_test_can_set_a_methods_limit(fake, client, clock):
    """conversations.history: 1 per minute for non-Marketplace commercially distributed apps."""
    fake.limiter.per_minute["conversations.history"] = 1
    assert (await client.conversations_history(channel="C1"))["ok"]
    assert await rate_limited(client.conversations_history(channel="C1")) == 60
    clock.advance(60)
    assert (await client.conversations_history(channel="C1"))["ok"]


async def test_rate_limits_can_be_switched_off(clock):
    async with FakeSlack(clock=clock, rate_limits=False) as fake:
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
        for i in range(30):
            assert (await client.chat_postMessage(channel="C1", text=str(i)))["ok"]


async def test_scripted_failures_win_over_the_rate_model(fake, client):
    for i in range(5):
        await client.chat_postMessage(channel="C1", text=str(i))
    fake.fail_next("chat.postMessage", "channel_not_found")
    assert (await error_of(client.chat_postMessage(channel="C1", text="x")))[0] == (
        "channel_not_found"
    )
    fake.fail_next("chat.postMessage", retry_after=7)
    assert await rate_limited(client.chat_postMessage(channel="C1", text="x")) == 7


# ---- response_url ---------------------------------------------------------------------------
async def test_response_url_takes_five_posts(fake):
    """Up to 5 responses within 30 minutes of the interaction; the sixth is refused."""
    for i in range(5):
        assert await post_to(fake, "r1", {"text": str(i)}) == (200, "ok")
    assert await post_to(fake, "r1", {"text": "sixth"}) == (404, "used_url")
    assert [p.error for p in fake.posts_to("r1")] == [None] * 5 + ["used_url"]
    assert await post_to(fake, "r2", {"text": "another interaction"}) == (200, "ok")


async def test_refused_posts_do_not_use_up_a_response_url(fake):
    assert await post_to(fake, "r1", {"text": "x", "blocks": [section("")]}) == (
        400,
        "invalid_blocks",
    )
    for i in range(5):
        assert await post_to(fake, "r1", {"text": str(i)}) == (200, "ok")


async def test_response_url_expires_thirty_minutes_after_it_was_issued(fake, clock):
    fake.response_url("r1")  # issued with the interaction
    clock.advance(29 * 60)
    assert await post_to(fake, "r1", {"text": "in time"}) == (200, "ok")
    clock.advance(60.5)
    assert await post_to(fake, "r1", {"text": "late"}) == (404, "expired_url")
    assert fake.posts_to("r1")[-1].error == "expired_url"


async def test_calls_are_stamped_with_the_injected_clock(fake, client, clock):
    clock.advance(12.5)
    await client.auth_test()
    await post_to(fake, "r1", {"text": "x"})
    assert fake.calls_to("auth.test")[0].at == 1012.5 and fake.posts[0].at == 1012.5
