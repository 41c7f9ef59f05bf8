"""Tests for the fake Slack server in fakes/slack.py (real HTTP on 127.0.0.1)."""

import json
import time
from unittest.mock import ANY

import aiohttp
import pytest
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from fakes import FakeSlack, Inbound, text_input

SECRET = "shhh"


@pytest.fixture
async def fake():
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def client(fake):
    return AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)


async def test_auth_post_and_update(fake, client):
    """auth.test, chat.postMessage (unique, increasing ts) and chat.update work via slack_sdk."""
    auth = await client.auth_test()
    assert (auth["user_id"], auth["team_id"]) == ("UBOT", "T0001")

    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]
    first = await client.chat_postMessage(channel="C1", text="hi", blocks=blocks)
    second = await client.chat_postMessage(channel="C1", text="again")
    assert first["channel"] == "C1" and first["message"]["blocks"] == blocks
    assert first["ts"] < second["ts"]

    updated = await client.chat_update(channel="C1", ts=first["ts"], text="edited")
    assert (updated["ts"], updated["text"]) == (first["ts"], "edited")
    call = fake.calls_to("chat.update")[0]
    assert call.token == "xoxb-test" and call.args["ts"] == first["ts"]


async def test_form_encoded_blocks_are_decoded(fake):
    """Form-encoded JSON values such as blocks are recorded as Python objects."""
    async with aiohttp.ClientSession() as http:
        data = {"channel": "C1", "blocks": '[{"type": "divider"}]', "token": "xoxb-test"}
        async with http.post(fake.api_url + "chat.postMessage", data=data) as resp:
            assert (await resp.json())["ok"] is True
    assert fake.calls_to("chat.postMessage")[0].args["blocks"] == [{"type": "divider"}]


async def test_ratelimit_is_retried_after_retry_after(fake):
    """A scripted 429 is retried by AsyncRateLimitErrorRetryHandler after Retry-After seconds."""
    client = AsyncWebClient(
        token=fake.bot_token,
        base_url=fake.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    fake.fail_next("chat.postMessage", retry_after=1)
    started = time.monotonic()
    resp = await client.chat_postMessage(channel="C1", text="hi")
    assert resp["ok"] and time.monotonic() - started >= 0.95
    attempts = fake.calls_to("chat.postMessage")
    assert [c.error for c in attempts] == ["ratelimited", None]


async def test_scripted_error_raises_slack_api_error(fake, client):
    """A scripted channel_not_found surfaces as SlackApiError, and only for `count` calls."""
    fake.fail_next("chat.postMessage", "channel_not_found")
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C404", text="hi")
    assert err.value.response["error"] == "channel_not_found"
    assert (await client.chat_postMessage(channel="C1", text="hi"))["ok"]


async def test_webhook_post_is_recorded(fake):
    """AsyncWebhookClient posts to response_url are answered "ok" and seen by wait_for_posts."""
    resp = await AsyncWebhookClient(fake.response_url("k")).send(text="done", replace_original=True)
    assert (resp.status_code, resp.body) == (200, "ok")
    posts = await fake.wait_for_posts("k")
    assert posts[0].body == {"text": "done", "replace_original": True}


async def test_wait_for_posts_times_out_with_assertion(fake):
    """wait_for_posts raises AssertionError naming what arrived when too few posts come."""
    with pytest.raises(AssertionError, match="got 0"):
        await fake.wait_for_posts("nobody", timeout=0.1)


async def test_files_upload_v2_end_to_end(fake, client):
    """files_upload_v2 (getUploadURLExternal, POST, completeUploadExternal) records the file."""
    csv = "device,status\nd1,ok\n"
    resp = await client.files_upload_v2(
        channel="C1",
        content=csv,
        filename="r.csv",
        title="R",
        initial_comment="report",
        thread_ts="1700000000.000100",
    )
    file_id = resp["file"]["id"]
    assert (resp["file"]["title"], resp["file"]["name"]) == ("R", "r.csv")
    assert fake.uploads[file_id] == csv.encode()
    assert [c.method for c in fake.calls] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
    assert fake.files == [
        {
            "id": file_id,
            "title": "R",
            "filename": "r.csv",
            "channel_id": "C1",
            "initial_comment": "report",
            "thread_ts": "1700000000.000100",
            "content": csv.encode(),
            "ts": ANY,
        }
    ]

    untitled = await client.files_upload_v2(channel="U9", content=b"\x00\x01", filename="b.bin")
    assert untitled["file"]["title"] == "b.bin"
    assert fake.files[-1] | {"id": "x"} == {
        "id": "x",
        "title": "b.bin",
        "filename": "b.bin",
        "channel_id": "U9",
        "initial_comment": None,
        "thread_ts": None,
        "content": b"\x00\x01",
        "ts": ANY,
    }


async def test_files_upload_v2_refused_where_the_bot_cannot_post(fake, client):
    """completeUploadExternal follows chat.postMessage: not_in_channel, is_archived, not found."""
    fake.add_channel("C9", is_member=False)
    fake.add_channel("C8", is_archived=True)
    fake.remove_channel("C7")
    for channel, error in (
        ("C9", "not_in_channel"),
        ("C8", "is_archived"),
        ("C7", "channel_not_found"),
    ):
        with pytest.raises(SlackApiError, match=error):
            await client.files_upload_v2(channel=channel, content="x", filename="x.txt")
    assert fake.files == []
    assert [c.error for c in fake.calls_to("files.completeUploadExternal")] == [
        "not_in_channel",
        "is_archived",
        "channel_not_found",
    ]
    await client.conversations_join(channel="C9")
    assert (await client.files_upload_v2(channel="C9", content="x", filename="x.txt"))["ok"]
    assert [f["channel_id"] for f in fake.files] == ["C9"]

    with pytest.raises(SlackApiError, match="file_not_found"):
        await client.files_completeUploadExternal(files=[{"id": "F404", "title": "t"}])
    with pytest.raises(SlackApiError, match="file_not_found"):  # a file completes only once
        await client.files_completeUploadExternal(files=[{"id": fake.files[0]["id"]}])


async def test_missing_or_unknown_token_is_refused(fake):
    """Web API calls without a token get not_authed, with a wrong one invalid_auth."""
    with pytest.raises(SlackApiError, match="not_authed"):
        await AsyncWebClient(base_url=fake.api_url).chat_postMessage(channel="C1", text="x")
    with pytest.raises(SlackApiError, match="invalid_auth"):
        await AsyncWebClient(token="xoxb-nope", base_url=fake.api_url).auth_test()


async def test_signed_requests_dispatch_through_bolt(fake, client):
    """Inbound's requests pass Bolt's signature check; a wrong secret gets 401."""
    app = AsyncApp(client=client, signing_secret=SECRET)

    @app.command("/otajob")
    async def on_command(ack, respond, command):
        await ack()
        await respond(f"got {command['text']}")

    @app.action("approve")
    async def on_approve(ack, respond, action):
        await ack()
        await respond(f"approved {action['value']}")

    slack = Inbound(fake, SECRET)
    req = slack.command("status 42", key="cmd")
    headers = {k: v[0] for k, v in req.headers.items()}  # Bolt keeps header values as lists
    assert SignatureVerifier(SECRET).is_valid_request(req.raw_body, headers)
    assert (await app.async_dispatch(req)).status == 200
    assert (await fake.wait_for_posts("cmd"))[0].body["text"] == "got status 42"

    assert (await app.async_dispatch(slack.click("approve", "job-7", key="btn"))).status == 200
    assert (await fake.wait_for_posts("btn"))[0].body["text"] == "approved job-7"

    forged = slack.click("approve", "job-7", key="btn", signing_secret="wrong")
    assert (await app.async_dispatch(forged)).status == 401


# ---- the channel & message model -----------------------------------------------------------
META = {"event_type": "otajob_card", "event_payload": {"job_id": "J1", "instance": "iot-a"}}


async def test_thread_and_broadcast_in_history_and_replies(fake, client):
    """A parent, a reply and a broadcast reply land in history and replies as Slack shows them."""
    parent = await client.chat_postMessage(channel="C1", text="card")
    reply = await client.chat_postMessage(channel="C1", text="r1", thread_ts=parent["ts"])
    loud = await client.chat_postMessage(
        channel="C1", text="done", thread_ts=parent["ts"], reply_broadcast=True
    )
    other = await client.chat_postMessage(channel="C2", text="elsewhere")
    assert reply["message"]["thread_ts"] == parent["ts"]

    history = await client.conversations_history(channel="C1")
    assert [m["ts"] for m in history["messages"]] == [loud["ts"], parent["ts"]]  # newest first
    assert history["has_more"] is False and "channel" not in history["messages"][0]
    assert history["messages"][0]["subtype"] == "thread_broadcast"
    card = history["messages"][1]
    assert (card["thread_ts"], card["reply_count"], card["latest_reply"]) == (
        parent["ts"],
        2,
        loud["ts"],
    )

    replies = await client.conversations_replies(channel="C1", ts=parent["ts"])
    assert [m["text"] for m in replies["messages"]] == ["card", "r1", "done"]
    assert [m["ts"] for m in fake.thread("C1", reply["ts"])] == [
        parent["ts"],
        reply["ts"],
        loud["ts"],
    ]
    assert [m["text"] for m in fake.messages("C1")] == ["card", "r1", "done"]
    assert [m["text"] for m in fake.top_level("C1")] == ["card"]
    assert fake.messages("C1")[1] | {"ts": "x"} == {
        "type": "message",
        "ts": "x",
        "channel": "C1",
        "text": "r1",
        "blocks": [],
        "user": "UBOT",
        "bot_id": "B0001",
        "thread_ts": parent["ts"],
        "parent_user_id": "UBOT",
    }
    assert fake.messages("C2")[0]["ts"] == other["ts"]

    with pytest.raises(SlackApiError, match="thread_not_found"):
        await client.conversations_replies(channel="C1", ts="1.000001")


async def test_history_bounds_and_paging(fake, client):
    """oldest/latest/inclusive filter history, and limit + cursor page through it newest first."""
    ts = [(await client.chat_postMessage(channel="C1", text=str(i)))["ts"] for i in range(5)]
    between = await client.conversations_history(channel="C1", oldest=ts[1], latest=ts[3])
    assert [m["text"] for m in between["messages"]] == ["2"]
    inclusive = await client.conversations_history(
        channel="C1", oldest=ts[1], latest=ts[3], inclusive=True
    )
    assert [m["text"] for m in inclusive["messages"]] == ["3", "2", "1"]

    first = await client.conversations_history(channel="C1", limit=2)
    assert first["has_more"] is True and first["response_metadata"]["next_cursor"]
    pages = [[m["text"] for m in page["messages"]] async for page in first]
    assert pages == [["4", "3"], ["2", "1"], ["0"]]
    with pytest.raises(SlackApiError, match="invalid_cursor"):
        await client.conversations_history(channel="C1", cursor="bm9wZQ==")


async def test_metadata_round_trip(fake, client):
    """Metadata (JSON object or form-encoded string) comes back only with include_all_metadata."""
    card = await client.chat_postMessage(channel="C1", text="card", metadata=META)
    async with aiohttp.ClientSession() as http:
        data = {"channel": "C1", "text": "r", "thread_ts": card["ts"], "token": "xoxb-test"}
        data["metadata"] = json.dumps(META | {"event_type": "otajob_reply"})
        async with http.post(fake.api_url + "chat.postMessage", data=data) as resp:
            assert (await resp.json())["ok"] is True
    assert fake.messages("C1")[0]["metadata"] == META
    assert fake.messages("C1")[1]["metadata"]["event_type"] == "otajob_reply"

    full = await client.conversations_history(channel="C1", include_all_metadata=True)
    assert full["messages"][0]["metadata"] == META
    bare = await client.conversations_history(channel="C1")
    assert "metadata" not in bare["messages"][0]
    thread = await client.conversations_replies(
        channel="C1", ts=card["ts"], include_all_metadata=True
    )
    assert [m["metadata"]["event_type"] for m in thread["messages"]] == [
        "otajob_card",
        "otajob_reply",
    ]
    stripped = await client.conversations_replies(channel="C1", ts=card["ts"])
    assert all("metadata" not in m for m in stripped["messages"])

    with pytest.raises(SlackApiError, match="invalid_metadata_format"):
        await client.chat_postMessage(channel="C1", text="x", metadata={"event_payload": {}})


async def test_update_changes_blocks_but_keeps_metadata(fake, client):
    """chat.update replaces text and blocks, keeps metadata unless given, and needs a known ts."""
    old = [{"type": "section", "text": {"type": "mrkdwn", "text": "running"}}]
    new = [{"type": "section", "text": {"type": "mrkdwn", "text": "done"}}]
    card = await client.chat_postMessage(channel="C1", text="running", blocks=old, metadata=META)
    updated = await client.chat_update(channel="C1", ts=card["ts"], text="done", blocks=new)
    assert updated["message"]["blocks"] == new

    (msg,) = (await client.conversations_history(channel="C1", include_all_metadata=True))[
        "messages"
    ]
    assert (msg["text"], msg["blocks"], msg["metadata"]) == ("done", new, META)
    assert "edited" not in msg

    later = META | {"event_payload": {"job_id": "J1", "state": "done"}}
    await client.chat_update(channel="C1", ts=card["ts"], text="done", metadata=later)
    assert fake.messages("C1")[0]["metadata"] == later and fake.messages("C1")[0]["blocks"] == new

    with pytest.raises(SlackApiError, match="message_not_found"):
        await client.chat_update(channel="C1", ts="1700000000.999999", text="x")
    with pytest.raises(SlackApiError, match="message_not_found"):
        await client.chat_update(channel="C2", ts=card["ts"], text="x")


async def test_not_in_channel_until_join(fake, client):
    """A channel without the bot refuses posts and reads until conversations.join."""
    fake.add_channel("C9", "ops", is_member=False)
    with pytest.raises(SlackApiError, match="not_in_channel"):
        await client.chat_postMessage(channel="C9", text="hi")
    with pytest.raises(SlackApiError, match="not_in_channel"):
        await client.conversations_history(channel="C9")
    assert fake.messages("C9") == [] and fake.calls_to("chat.postMessage")[0].error == (
        "not_in_channel"
    )
    info = await client.conversations_info(channel="C9")
    assert (info["channel"]["name"], info["channel"]["is_member"]) == ("ops", False)

    joined = await client.conversations_join(channel="C9")
    assert joined["channel"]["is_member"] is True and fake.channels["C9"]["is_member"]
    assert (await client.chat_postMessage(channel="C9", text="hi"))["ok"]
    assert (await client.conversations_info(channel="C9"))["channel"]["is_member"] is True
    assert (await client.conversations_join(channel="C9"))["warning"] == "already_in_channel"


async def test_archived_and_removed_channels(fake, client):
    """Archived channels answer is_archived and removed ones channel_not_found."""
    card = await client.chat_postMessage(channel="C1", text="card")
    fake.channels["C1"]["is_archived"] = True
    for call in (
        client.chat_postMessage(channel="C1", text="x"),
        client.chat_update(channel="C1", ts=card["ts"], text="x"),
        client.conversations_join(channel="C1"),
    ):
        with pytest.raises(SlackApiError, match="is_archived"):
            await call
    assert (await client.conversations_info(channel="C1"))["channel"]["is_archived"] is True
    assert len((await client.conversations_history(channel="C1"))["messages"]) == 1

    fake.remove_channel("C1")
    for call in (
        client.chat_postMessage(channel="C1", text="x"),
        client.chat_update(channel="C1", ts=card["ts"], text="x"),
        client.conversations_info(channel="C1"),
        client.conversations_join(channel="C1"),
        client.conversations_history(channel="C1"),
    ):
        with pytest.raises(SlackApiError, match="channel_not_found"):
            await call
    assert "C1" not in fake.channels and fake.messages("C1")[0]["text"] == "card"


async def test_private_channel_join_is_refused(fake, client):
    """conversations.join on a private channel answers method_not_supported_for_channel_type."""
    fake.add_channel("G1", "secret", is_private=True, is_member=False)
    with pytest.raises(SlackApiError, match="method_not_supported_for_channel_type"):
        await client.conversations_join(channel="G1")
    assert (await client.conversations_info(channel="G1"))["channel"]["is_private"] is True
    assert fake.channels["G1"]["is_member"] is False


async def test_dm_to_a_user(fake, client):
    """chat.postMessage to a user ID is a DM that always succeeds; Slack answers with the DM's
    ID, which chat.update and conversations.history need (a user ID gets channel_not_found)."""
    fake.remove_channel("U123")  # the channel model does not apply to DMs
    dm = await client.chat_postMessage(channel="U123", text="your job finished")
    assert dm["channel"] == "DU123"
    assert [m["text"] for m in fake.messages("U123")] == ["your job finished"]  # test helper
    assert fake.messages("DU123") == fake.messages("U123")
    with pytest.raises(SlackApiError, match="channel_not_found"):
        await client.chat_update(channel="U123", ts=dm["ts"], text="edited")
    await client.chat_update(channel=dm["channel"], ts=dm["ts"], text="edited")
    history = await client.conversations_history(channel=dm["channel"])
    assert history["messages"][0]["text"] == "edited"
    with pytest.raises(SlackApiError, match="channel_not_found"):
        await client.conversations_history(channel="U123")
    assert (await client.chat_postMessage(channel="W42", text="hi"))["ok"]


async def test_conversations_members(fake, client):
    """conversations.members lists the humans, plus the bot once it is a member."""
    fake.add_channel("C5", members=("U2", "U1"), is_member=False)
    assert (await client.conversations_members(channel="C5"))["members"] == ["U1", "U2"]
    await client.conversations_join(channel="C5")
    assert (await client.conversations_members(channel="C5"))["members"] == ["U1", "U2", "UBOT"]
    await client.conversations_leave(channel="C5")
    assert "UBOT" not in (await client.conversations_members(channel="C5"))["members"]


async def test_unknown_channels_default_to_public_with_the_bot(fake, client):
    """Unregistered channel IDs are public, unarchived and joined, then listed in channels."""
    info = await client.conversations_info(channel="C77")
    assert info["channel"] == {
        "id": "C77",
        "name": "general",
        "is_channel": True,
        "is_group": False,
        "is_im": False,
        "is_private": False,
        "is_archived": False,
        "is_member": True,
        "num_members": 1,
    }
    assert fake.channels["C77"]["members"] == {"UBOT"}


async def test_fail_next_wins_over_the_model(fake, client):
    """A scripted failure answers instead of the model and leaves the messages untouched."""
    fake.add_channel("C9", is_member=False)
    fake.fail_next("chat.postMessage", "ratelimited", status=200)
    with pytest.raises(SlackApiError, match="ratelimited"):
        await client.chat_postMessage(channel="C9", text="x")
    fake.fail_next("chat.postMessage", "fatal_error")
    with pytest.raises(SlackApiError, match="fatal_error"):
        await client.chat_postMessage(channel="U1", text="x")
    fake.fail_next("conversations.history", "internal_error")
    with pytest.raises(SlackApiError, match="internal_error"):
        await client.conversations_history(channel="C1")
    assert fake.messages("C9") == fake.messages("U1") == []
    assert [c.error for c in fake.calls] == ["ratelimited", "fatal_error", "internal_error"]


async def test_wait_for_messages(fake, client):
    """wait_for_messages returns once the channel holds enough messages."""
    await client.chat_postMessage(channel="C1", text="a")
    assert [m["text"] for m in await fake.wait_for_messages("C1")] == ["a"]
    with pytest.raises(AssertionError, match="got 1"):
        await fake.wait_for_messages("C1", 2, timeout=0.1)


# ---- modals, Home tabs, user groups and ephemeral messages ---------------------------------
MODAL = {
    "type": "modal",
    "callback_id": "new_watch",
    "title": {"type": "plain_text", "text": "Watch"},
    "submit": {"type": "plain_text", "text": "Save"},
    "blocks": [
        {
            "type": "input",
            "block_id": "b",
            "label": {"type": "plain_text", "text": "What to watch"},
            "element": {"type": "plain_text_input", "action_id": "a"},
        }
    ],
}
HOME = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}


async def test_views_open_and_update(fake, client):
    """views.open answers and keeps the view; a trigger ID works once; views.update replaces."""
    t1, t2 = fake.new_trigger_id(), fake.new_trigger_id()
    opened = await client.views_open(trigger_id=t1, view=MODAL)
    view_id = opened["view"]["id"]
    assert view_id.startswith("V") and opened["view"] == {"id": view_id, **MODAL}
    assert fake.views == {view_id: {"id": view_id, **MODAL}}

    with pytest.raises(SlackApiError, match="exchanged_trigger_id"):
        await client.views_open(trigger_id=t1, view=MODAL)
    for trigger_id in ("1.2.3", ""):
        with pytest.raises(SlackApiError, match="invalid_trigger_id"):
            await client.views_open(trigger_id=trigger_id, view=MODAL)
    async with aiohttp.ClientSession() as http:  # no trigger_id at all
        data = {"view": json.dumps(MODAL), "token": "xoxb-test"}
        async with http.post(fake.api_url + "views.open", data=data) as resp:
            assert (await resp.json())["error"] == "invalid_trigger_id"
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        await client.views_open(trigger_id=t2, view={"blocks": []})
    assert (await client.views_open(trigger_id=t2, view=MODAL))["ok"]  # t2 was not used up
    assert len(fake.views) == 2

    done = MODAL | {"blocks": [], "title": {"type": "plain_text", "text": "Done"}}
    updated = await client.views_update(view_id=view_id, view=done)
    assert updated["view"] == {"id": view_id, **done} and fake.views[view_id]["blocks"] == []
    with pytest.raises(SlackApiError, match="not_found"):
        await client.views_update(view_id="V404", view=done)


async def test_views_publish_keeps_home_per_user(fake, client):
    """views.publish keeps each user's Home tab in fake.home; republishing keeps its view ID."""
    first = await client.views_publish(user_id="U1", view=HOME)
    view_id = first["view"]["id"]
    assert fake.home == {"U1": {"id": view_id, **HOME}}
    again = HOME | {"blocks": []}
    assert (await client.views_publish(user_id="U1", view=again))["view"]["id"] == view_id
    await client.views_publish(user_id="U2", view=HOME)
    assert fake.home["U1"]["blocks"] == [] and fake.home["U2"]["blocks"] == HOME["blocks"]
    assert fake.home["U2"]["id"] != view_id and fake.views == {}

    await client.views_update(view_id=view_id, view=HOME)  # views.update reaches Home tabs too
    assert fake.home["U1"]["blocks"] == HOME["blocks"]


async def test_usergroups_users_list(fake, client):
    """usergroups.users.list answers from fake.usergroups; unknown groups are no_such_subteam."""
    fake.usergroups["S1"] = ["U1", "U2"]
    assert (await client.usergroups_users_list(usergroup="S1"))["users"] == ["U1", "U2"]
    fake.usergroups["S1"].append("U3")
    assert (await client.usergroups_users_list(usergroup="S1"))["users"] == ["U1", "U2", "U3"]
    with pytest.raises(SlackApiError, match="no_such_subteam"):
        await client.usergroups_users_list(usergroup="S404")


async def test_post_ephemeral(fake, client):
    """chat.postEphemeral stores the message for one user, refused like chat.postMessage."""
    blocks = [{"type": "divider"}]
    resp = await client.chat_postEphemeral(
        channel="C1", user="U1", text="only you", blocks=blocks, thread_ts="1700000000.000100"
    )
    assert resp["message_ts"]
    await client.chat_postEphemeral(channel="U1", user="U1", text="in a DM")
    assert fake.ephemerals == [
        {
            "id": resp["message_ts"],
            "channel": "C1",
            "user": "U1",
            "text": "only you",
            "blocks": blocks,
            "thread_ts": "1700000000.000100",
        },
        {
            "id": ANY,
            "channel": "U1",
            "user": "U1",
            "text": "in a DM",
            "blocks": [],
            "thread_ts": None,
        },
    ]
    assert fake.messages("C1") == []  # ephemerals are not in the channel's history

    fake.add_channel("C2", members=("U1",))
    fake.add_channel("C9", is_member=False)
    fake.add_channel("C8", is_archived=True)
    fake.remove_channel("C7")
    for channel, user, error in (
        ("C2", "U2", "user_not_in_channel"),
        ("C9", "U1", "not_in_channel"),
        ("C8", "U1", "is_archived"),
        ("C7", "U1", "channel_not_found"),
    ):
        with pytest.raises(SlackApiError, match=error):
            await client.chat_postEphemeral(channel=channel, user=user, text="x")
    assert len(fake.ephemerals) == 2
    assert (await client.chat_postEphemeral(channel="C2", user="U1", text="x"))["ok"]


# ---- requests from Slack (fakes/inbound.py; its own tests: tests/test_inbound.py) ------


async def test_modal_flow_through_bolt(fake, client):
    """A command opens a modal with its trigger_id; the submission answers ephemerally."""
    app = AsyncApp(client=client, signing_secret=SECRET)

    @app.command("/otajob")
    async def on_command(ack, body, client):
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=MODAL)

    @app.view("new_watch")
    async def on_submit(ack, view, body, client):
        await ack()
        value = view["state"]["values"]["b"]["a"]["value"]
        channel = view["private_metadata"]
        await client.chat_postEphemeral(channel=channel, user=body["user"]["id"], text=value)

    slack = Inbound(fake, SECRET)
    request = slack.command("new")
    trigger_id = request.body["trigger_id"]  # issued by the fake: views.open takes it once
    assert (await app.async_dispatch(request)).status == 200
    (call,) = await fake.wait_for_calls("views.open")
    assert call.error is None and call.args["trigger_id"] == trigger_id and len(fake.views) == 1

    (opened,) = fake.views.values()
    values = {"b": {"a": text_input("watch 42")}}
    submitted = slack.submit(view=opened, private_metadata="C1", values=values)
    assert (await app.async_dispatch(submitted)).status == 200
    await fake.wait_for_calls("chat.postEphemeral")
    assert fake.ephemerals[0] | {"blocks": None} == {
        "id": ANY,
        "channel": "C1",
        "user": "U123",
        "text": "watch 42",
        "blocks": None,
        "thread_ts": None,
    }


async def test_events_and_home_actions_through_bolt(fake, client):
    """app_mention and app_home_opened events and a Home tab button dispatch through Bolt."""
    app = AsyncApp(client=client, signing_secret=SECRET)

    @app.event("app_mention")
    async def on_mention(event, say):
        await say(text=f"heard {event['text']}", thread_ts=event.get("thread_ts") or event["ts"])

    @app.event("app_home_opened")
    async def on_home(event, client):
        await client.views_publish(user_id=event["user"], view=HOME)

    @app.action("refresh")
    async def on_refresh(ack, body, client):
        await ack()
        assert "response_url" not in body and body["container"]["type"] == "view"
        await client.views_publish(user_id=body["user"]["id"], view=HOME | {"blocks": []})

    slack = Inbound(fake, SECRET)
    mention = slack.mention("@otajob status", channel_id="C1", ts="1700000000.000300")
    assert (await app.async_dispatch(mention)).status == 200
    (reply,) = await fake.wait_for_messages("C1")
    assert (reply["text"], reply["thread_ts"]) == ("heard <@UBOT> status", "1700000000.000300")

    assert (await app.async_dispatch(slack.home_opened("U5"))).status == 200
    await fake.wait_for_calls("views.publish")
    assert fake.home["U5"]["blocks"] == HOME["blocks"]

    view_id = fake.home["U5"]["id"]
    click = slack.click("refresh", user_id="U5", where="home", view_id=view_id)
    assert (await app.async_dispatch(click)).status == 200
    await fake.wait_for_calls("views.publish", 2)
    assert fake.home["U5"] == {"id": view_id, **HOME, "blocks": []}


# ---- message responses land where Slack puts them ---------------------------------------


async def _post_json(url: str, body: dict) -> int:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as resp:
        return resp.status


async def test_response_url_posts_land_in_the_conversation(fake):
    """Ephemeral by default, in_channel for everyone, thread_ts into a thread
    ("Handling user interaction", Message responses)."""
    from fakes import ResponseTarget

    url = fake.response_url("k1", ResponseTarget("C1", "U1"))
    assert await _post_json(url, {"text": "only you"}) == 200
    assert [(e["user"], e["text"]) for e in fake.ephemerals] == [("U1", "only you")]
    parent = fake.add_message("C1", "parent", user="U1")
    assert await _post_json(url, {"text": "all", "response_type": "in_channel"}) == 200
    assert (
        await _post_json(
            url, {"text": "in thread", "response_type": "in_channel", "thread_ts": parent["ts"]}
        )
        == 200
    )
    assert [m["text"] for m in fake.top_level("C1")] == ["parent", "all"]
    assert [m["text"] for m in fake.thread("C1", parent["ts"])] == ["parent", "in thread"]
    assert fake.thread("C1", parent["ts"])[0]["reply_count"] == 1


async def test_response_url_replaces_or_deletes_the_original(fake):
    from fakes import ResponseTarget

    card = (
        await AsyncWebClient(token=fake.bot_token, base_url=fake.api_url).chat_postMessage(
            channel="C1", text="card"
        )
    )["ts"]
    url = fake.response_url("k2", ResponseTarget("C1", "U1", card))
    assert await _post_json(url, {"text": "card v2", "replace_original": True}) == 200
    assert [m["text"] for m in fake.messages("C1")] == ["card v2"]
    assert await _post_json(url, {"delete_original": True}) == 200
    assert fake.messages("C1") == []

    # A click in an ephemeral message replaces that ephemeral message.
    eph = fake.response_url("k3", ResponseTarget("C1", "U1"))
    await _post_json(eph, {"text": "mine"})
    (mine,) = fake.ephemerals
    click = fake.response_url("k4", ResponseTarget("C1", "U1", mine["id"], ephemeral=True))
    assert await _post_json(click, {"text": "mine v2", "replace_original": True}) == 200
    assert [e["text"] for e in fake.ephemerals] == ["mine v2"]


async def test_a_commands_first_answer_is_what_replace_original_replaces(fake):
    from fakes import ResponseTarget

    url = fake.response_url("k5", ResponseTarget("C1", "U1"))
    await _post_json(url, {"text": "reading…"})
    await _post_json(url, {"text": "the card", "replace_original": True})
    assert [e["text"] for e in fake.ephemerals] == ["the card"]
    # Without a target the post is answered and recorded but lands nowhere (hand-made URLs).
    assert await _post_json(fake.response_url("bare"), {"text": "x"}) == 200
    assert len(fake.ephemerals) == 1 and fake.posts_to("bare")


async def test_changed_since_wakes_on_a_change(fake):
    import asyncio

    start = fake.version
    waiting = asyncio.create_task(fake.changed_since(start, timeout=30))
    await asyncio.sleep(0)  # the waiter is parked on the change event
    assert not waiting.done()
    fake.add_message("C1", "hi")
    assert await waiting > start
    assert await fake.changed_since(start, timeout=30) == fake.version  # already past: at once


async def test_users_info_gives_the_locale_only_when_asked(fake, client):
    """users.info: a person's locale only with include_locale (Slack's opt-in); an ID that
    is no user's is user_not_found."""
    fake.directory.add_user("U0JA1", "taro", locale="ja-JP")
    plain = await client.users_info(user="U0JA1")
    assert plain["user"]["name"] == "taro" and "locale" not in plain["user"]
    asked = await client.users_info(user="U0JA1", include_locale=True)
    assert asked["user"]["locale"] == "ja-JP"
    unknown = await client.users_info(user="U0NOBODY", include_locale=True)
    assert unknown["user"]["locale"] == "en-US"  # a member not registered: the default
    with pytest.raises(SlackApiError) as info:
        await client.users_info(user="C123")
    assert info.value.response["error"] == "user_not_found"
