"""Tests for the fake Slack server in tests/fakes/slack.py (real HTTP on 127.0.0.1)."""

import time

import aiohttp
import pytest
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fakes import FakeSlack, block_action_body, signed_request, slash_command_body

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
    """files_upload_v2 completes against the fake and the uploaded bytes are stored."""
    csv = "device,status\nd1,ok\n"
    resp = await client.files_upload_v2(channel="C1", filename="r.csv", content=csv, title="R")
    file_id = resp["file"]["id"]
    assert fake.uploads[file_id] == csv.encode()
    assert fake.calls_to("files.completeUploadExternal")[0].args["channel_id"] == "C1"


async def test_missing_or_unknown_token_is_refused(fake):
    """Web API calls without a token get not_authed, with a wrong one invalid_auth."""
    with pytest.raises(SlackApiError, match="not_authed"):
        await AsyncWebClient(base_url=fake.api_url).chat_postMessage(channel="C1", text="x")
    with pytest.raises(SlackApiError, match="invalid_auth"):
        await AsyncWebClient(token="xoxb-nope", base_url=fake.api_url).auth_test()


async def test_signed_requests_dispatch_through_bolt(fake, client):
    """signed_request bodies pass Bolt's signature check; a wrong secret gets 401."""
    app = AsyncApp(client=client, signing_secret=SECRET)

    @app.command("/otajob")
    async def on_command(ack, respond, command):
        await ack()
        await respond(f"got {command['text']}")

    @app.action("approve")
    async def on_approve(ack, respond, action):
        await ack()
        await respond(f"approved {action['value']}")

    body = slash_command_body("status 42", response_url=fake.response_url("cmd"))
    req = signed_request(body, SECRET)
    headers = {k: v[0] for k, v in req.headers.items()}  # Bolt keeps header values as lists
    assert SignatureVerifier(SECRET).is_valid_request(req.raw_body, headers)
    assert (await app.async_dispatch(req)).status == 200
    assert (await fake.wait_for_posts("cmd"))[0].body["text"] == "got status 42"

    body = block_action_body("approve", "job-7", response_url=fake.response_url("btn"))
    assert (await app.async_dispatch(signed_request(body, SECRET))).status == 200
    assert (await fake.wait_for_posts("btn"))[0].body["text"] == "approved job-7"

    assert (await app.async_dispatch(signed_request(body, "wrong"))).status == 401
