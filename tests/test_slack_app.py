"""The Slack surfaces, dispatched in process with signed requests, against the emulator and
the fake Slack (response_url posts land there over real HTTP)."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest

from bot.emulator import fixtures
from bot.iot.credentials import Credential, StaticCredentials
from bot.job_ref import JobRef
from bot.runtime import build_runtime
from tests.helpers import TEST_KEY_ID, TEST_KEY_SECRET, app_settings
from tests.surfaces import answer, click, command, dispatch, handled, slack

JOB = fixtures.EXAMPLE_JOB_ID_UNMASKED


def dump(post) -> str:
    return json.dumps(post.body, ensure_ascii=False)


def hold_reads(runtime, monkeypatch) -> asyncio.Event:
    """The app's job reads wait until the returned event is set, then go to the emulator."""
    release = asyncio.Event()
    read = runtime.deps.service.get_job

    async def held(*args, **kwargs):
        await release.wait()
        return await read(*args, **kwargs)

    monkeypatch.setattr(runtime.deps.service, "get_job", held)
    return release


async def test_command_acks_at_once_then_answers_with_the_card(
    runtime, fake_slack, emulator, monkeypatch
):
    """ack() comes back before the API call; the card follows on response_url."""
    release = hold_reads(runtime, monkeypatch)
    response = await command(runtime, fake_slack, JOB)
    assert response.status == 200 and not response.body  # acked while the read is held
    assert emulator.count("QueryOTAJob") == 0
    assert all(p.body["response_type"] == "ephemeral" for p in fake_slack.posts)
    release.set()
    post = (await fake_slack.wait_for_posts("r1"))[0]  # the card; the counts replace it
    assert post.body["response_type"] == "ephemeral"
    assert post.body["blocks"][0]["text"]["text"] == "firmware2"
    assert "In progress" in post.body["text"]
    assert emulator.count("QueryOTAJob") == 1


async def test_help_and_empty_command_show_usage_without_api_calls(runtime, fake_slack, emulator):
    """`/otajob` and `/otajob help` answer in the ack itself, with no call to Alibaba Cloud."""
    for text in ("", "help"):
        body = await answer(runtime, fake_slack, text, key=f"r-{text}")
        assert "Look up an OTA update batch" in json.dumps(body["blocks"])
    assert emulator.count("QueryOTAJob") == 0
    assert all(p.body["response_type"] == "ephemeral" for p in fake_slack.posts)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("wahVIzGkCMuAUE2gDERM02****", "masked examples"),
        ("bad!", "does not look like a JobId"),
        (f"{JOB} instance", "needs an ID after it"),
        (f"{JOB} now please", "I did not understand"),
    ],
)
async def test_bad_input_is_explained_without_api_calls(runtime, fake_slack, emulator, text, says):
    """Malformed input gets a specific ephemeral message and makes no API call."""
    assert says in (await answer(runtime, fake_slack, text))["text"]
    assert emulator.count("QueryOTAJob") == 0


async def test_unknown_job_shows_code_message_and_request_id(runtime, fake_slack, emulator):
    """An API refusal is explained in plain words with its Code, message and RequestId."""
    await command(runtime, fake_slack, "NoSuchJob00000000000000001")
    (post,) = await fake_slack.wait_for_posts("r1")
    text = dump(post)
    assert "has no update batch" in text and "iot.ota.JobNotFound" in text
    assert emulator.calls[-1].params["JobId"] == "NoSuchJob00000000000000001"
    request_ids = [c for c in emulator.calls if c.code == "iot.ota.JobNotFound"]
    assert request_ids and "RequestId" in text


async def test_instance_is_passed_through(runtime, fake_slack, emulator):
    """`instance <id>` reaches the API as IotInstanceId."""
    emulator.add_job(fixtures.make_job("InstJob0000000000000001"), instance_id="iot-cn-t01")
    await command(runtime, fake_slack, "InstJob0000000000000001 instance iot-cn-t01")
    (post,) = await fake_slack.wait_for_posts("r1")
    assert "Instance `iot-cn-t01`" in dump(post)


async def test_refresh_replaces_the_card_with_a_fresh_read(runtime, fake_slack, emulator):
    """Refresh skips the cache and replaces the original message."""
    await command(runtime, fake_slack, JOB)
    (card,) = await fake_slack.wait_for_posts("r1")
    emulator.set_status(JOB, "COMPLETED")
    value = card.body["blocks"][-1]["elements"][0]["value"]
    await click(runtime, fake_slack, "job_refresh", value)
    (post,) = await fake_slack.wait_for_posts("b1")
    assert post.body["replace_original"] is True and "Completed" in post.body["text"]
    assert emulator.count("QueryOTAJob") == 2


async def test_share_posts_in_channel_naming_the_sharer(runtime, fake_slack, emulator):
    """Share posts the card for everyone, says who shared it, and pings nobody."""
    await command(runtime, fake_slack, JOB)
    (card,) = await fake_slack.wait_for_posts("r1")
    value = card.body["blocks"][-1]["elements"][1]["value"]
    await click(runtime, fake_slack, "job_share", value)
    (post,) = await fake_slack.wait_for_posts("b1")
    assert post.body["response_type"] == "in_channel" and post.body["replace_original"] is False
    text = dump(post)
    assert "Shared by alice" in text and "<@" not in text
    actions = [b for b in post.body["blocks"] if b["type"] == "actions"]
    assert [e["action_id"] for e in actions[0]["elements"]] == [
        "job_refresh",
        "job_failed",
        "job_watch",
    ]


@pytest.mark.parametrize("value", ["", "not json", '{"job": "bad id!"}', '{"job": ["x"]}'])
async def test_forged_or_stale_button_value_is_refused(runtime, fake_slack, emulator, value):
    """A button value we did not write gets a plain message and no API call."""
    await click(runtime, fake_slack, "job_refresh", value)
    (post,) = await fake_slack.wait_for_posts("b1")
    assert "cannot read" in post.body["text"]
    assert emulator.count("QueryOTAJob") == 0


async def test_forged_signature_and_old_timestamp_are_refused(runtime, fake_slack, emulator):
    """Requests not signed with our secret, or 10 minutes old, get 401 and do nothing."""
    forged = await dispatch(runtime, slack(fake_slack).command(JOB, signing_secret="not-ours"))
    old = await dispatch(runtime, slack(fake_slack).command(JOB, timestamp=int(time.time()) - 600))
    assert forged.status == 401 and old.status == 401
    await handled()
    assert emulator.count("QueryOTAJob") == 0
    assert all(p.body["response_type"] == "ephemeral" for p in fake_slack.posts)


async def test_unexpected_error_is_logged_with_an_id_the_user_sees(
    runtime, fake_slack, monkeypatch, caplog
):
    """A bug answers with an error id, and the log line carries the same id."""

    async def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(runtime.deps.service, "get_job", broken)
    with caplog.at_level(logging.ERROR, logger="otajob.errors"):
        await command(runtime, fake_slack, JOB)
        (post,) = await fake_slack.wait_for_posts("r1")
    error_id = post.body["text"].split("error id ")[1].rstrip(").")
    assert f"error_id={error_id}" in caplog.text and "RuntimeError" in caplog.text


async def test_forty_concurrent_commands_cost_one_or_two_calls(
    runtime, fake_slack, emulator, monkeypatch
):
    """40 people asking at once: all acked before any read, all get the card, ~1 upstream
    call."""
    release = hold_reads(runtime, monkeypatch)
    responses = await asyncio.gather(
        *(command(runtime, fake_slack, JOB, key=f"k{i}") for i in range(40))
    )
    assert all(r.status == 200 and not r.body for r in responses)
    assert emulator.count("QueryOTAJob") == 0
    assert all(p.body["response_type"] == "ephemeral" for p in fake_slack.posts)  # acks first
    release.set()
    for i in range(40):
        post = (await fake_slack.wait_for_posts(f"k{i}"))[0]
        assert post.body["blocks"][0]["text"]["text"] == "firmware2"
    assert emulator.count("QueryOTAJob") <= 2


async def test_no_secret_anywhere(runtime, fake_slack, emulator, caplog):
    """After errors of every kind, no post, call or log line holds the AccessKey secret."""
    with caplog.at_level(logging.DEBUG):
        emulator.fail_next("throttle")
        await command(runtime, fake_slack, JOB, key="a")
        await command(runtime, fake_slack, "NoSuchJob00000000000000001", key="b")
        await fake_slack.wait_for_posts("a")
        await fake_slack.wait_for_posts("b")
    everything = caplog.text + json.dumps([p.body for p in fake_slack.posts])
    everything += json.dumps([c.args for c in fake_slack.calls])
    assert TEST_KEY_SECRET not in everything


async def test_demo_mode_labels_every_message(emulator, fake_slack):
    """With OTAJOB_DEMO=1 the app answers from its own emulator and says so."""
    demo = await build_runtime(app_settings(emulator, fake_slack, OTAJOB_DEMO="1"))
    try:
        await command(demo, fake_slack, JOB)
        (post,) = await fake_slack.wait_for_posts("r1")
        assert post.body["text"].startswith("[demo]") and "Demo data" in dump(post)
        assert emulator.count("QueryOTAJob") == 0  # the in-process one answered
        usage = await command(demo, fake_slack, "help")
        assert "Demo data" in usage.body
    finally:
        await demo.aclose()


async def test_share_of_a_failing_job_is_not_shown_to_the_channel(runtime, fake_slack, emulator):
    """When Alibaba Cloud refuses, Share tells only the clicker; nothing goes in_channel."""
    value = JobRef("NoSuchJob00000000000000001").to_value()
    await click(runtime, fake_slack, "job_share", value)
    (post,) = await fake_slack.wait_for_posts("b1")
    assert post.body["response_type"] == "ephemeral" and post.body["replace_original"] is False
    assert "iot.ota.JobNotFound" in dump(post)


async def test_refresh_keeps_a_shared_card_shared(runtime, fake_slack, emulator):
    """Refreshing a card shared in the channel keeps "Shared by" and offers no Share."""
    value = JobRef(JOB, shared_by="alice").to_value()
    await click(runtime, fake_slack, "job_refresh", value)
    (post,) = await fake_slack.wait_for_posts("b1")
    assert "Shared by alice" in dump(post) and post.body["replace_original"] is True
    actions = [b for b in post.body["blocks"] if b["type"] == "actions"]
    assert [e["action_id"] for e in actions[0]["elements"]] == [
        "job_refresh",
        "job_failed",
        "job_watch",
    ]


async def test_failed_refresh_leaves_the_card_and_tells_the_clicker(runtime, fake_slack, emulator):
    """A refresh that Alibaba Cloud refuses does not replace the card for everyone."""
    emulator.fail_next("business", count=10)
    await click(runtime, fake_slack, "job_refresh", JobRef(JOB).to_value())
    (post,) = await fake_slack.wait_for_posts("b1")
    assert post.body["replace_original"] is False and post.body["response_type"] == "ephemeral"
    assert "iot.system.SystemException" in dump(post)


async def test_a_malformed_field_does_not_cost_the_card(runtime, fake_slack, emulator):
    """A field of an unexpected shape is shown raw among the other fields; the card stays."""
    emulator.add_job(fixtures.make_job("OddJob0000000000000000001", UtcCreate="not a date"))
    await command(runtime, fake_slack, "OddJob0000000000000000001")
    (post,) = await fake_slack.wait_for_posts("r1")
    assert post.body["blocks"][0]["type"] == "header"
    assert "UtcCreate: not a date" in dump(post)


async def test_signature_errors_never_show_key_id_or_token(emulator, fake_slack):
    """After SignatureDoesNotMatch, no post holds the AccessKeyId, secret or STS token."""
    wrong = Credential(TEST_KEY_ID, "wrong-secret", "sts-token-value-123")
    built = await build_runtime(
        app_settings(emulator, fake_slack), credentials=StaticCredentials(wrong)
    )
    try:
        await command(built, fake_slack, JOB)
        (post,) = await fake_slack.wait_for_posts("r1")
    finally:
        await built.aclose()
    text = dump(post)
    assert "SignatureDoesNotMatch" in text or "InvalidSecurityToken" in text
    for secret in (TEST_KEY_ID, "wrong-secret", "sts-token-value-123"):
        assert secret not in text


async def test_missing_credentials_are_explained(emulator, fake_slack):
    """When the credential chain finds nothing, the person is told in plain words."""

    class NoCredentials:
        async def get(self):
            raise RuntimeError("no provider in the chain had credentials")

    built = await build_runtime(app_settings(emulator, fake_slack), credentials=NoCredentials())
    try:
        await command(built, fake_slack, JOB)
        (post,) = await fake_slack.wait_for_posts("r1")
    finally:
        await built.aclose()
    assert "found no usable Alibaba Cloud credentials" in dump(post)
    assert "CredentialsUnavailable" in dump(post)
    assert emulator.count("QueryOTAJob") == 0


def test_every_listener_acks_before_its_work(runtime) -> None:
    """Bolt answers Slack only when a listener returns (process_before_response): one
    registered without Answering.after_ack would hold the acknowledgement for its whole
    work. Every listener the app registers is wrapped."""
    listeners = runtime.app._async_listeners  # pinned Bolt: its list of listeners
    assert listeners
    unwrapped = [
        x.ack_function.__name__
        for x in listeners
        if not getattr(x.ack_function, "acks_first", False)
    ]
    assert unwrapped == []
