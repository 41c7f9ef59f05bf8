"""Who may use the app and where: SLACK_TEAM_ID, OTAJOB_ALLOWED_CHANNELS and
OTAJOB_ALLOWED_USERS, checked by one middleware before any listener runs; and the
settings of the write actions, checked when the app starts."""

from __future__ import annotations

import json

import pytest

from bot.config import ConfigError, load_settings
from bot.emulator import fixtures
from bot.job_ref import JobRef
from bot.slack.access import Policy
from tests.helpers import start_runtime
from tests.surfaces import click, command, dump, handled, home_opened, mention, submit

JOB = fixtures.EXAMPLE_JOB_ID_UNMASKED
OURS, THEIRS = "T0001", "T0OTHER"  # T0001: the fakes' team


def ack_body(response) -> dict:
    assert response.status == 200
    return json.loads(response.body)


# --- 7. SLACK_TEAM_ID ----------------------------------------------------------------------


async def test_a_command_from_another_workspace_is_refused_in_the_ack(
    started, fake_slack, emulator
):
    runtime = await started(SLACK_TEAM_ID=OURS)
    body = ack_body(await command(runtime, fake_slack, JOB, team_id=THEIRS))
    assert body["response_type"] == "ephemeral"
    assert "another Slack workspace" in json.dumps(body)
    await handled()
    assert emulator.calls == []  # nothing was read from Alibaba Cloud
    assert fake_slack.posts_to("r1") == []


async def test_a_command_from_our_workspace_is_answered(started, fake_slack, emulator):
    runtime = await started(SLACK_TEAM_ID=OURS)
    response = await command(runtime, fake_slack, JOB, team_id=OURS)
    assert response.status == 200 and not response.body
    (card, *_) = await fake_slack.wait_for_posts("r1")
    assert JOB in dump(card) and emulator.count("QueryOTAJob") == 1


async def test_a_click_from_another_workspace_is_refused_through_response_url(
    started, fake_slack, emulator
):
    runtime = await started(SLACK_TEAM_ID=OURS)
    response = await click(
        runtime, fake_slack, "job_refresh", JobRef(JOB).to_value(), team_id=THEIRS
    )
    assert response.status == 200 and not response.body
    (refusal,) = await fake_slack.wait_for_posts("b1")
    assert refusal.body["response_type"] == "ephemeral"
    assert refusal.body["replace_original"] is False  # the card they clicked stays
    assert "another Slack workspace" in dump(refusal)
    await handled()
    assert emulator.calls == [] and len(fake_slack.posts_to("b1")) == 1


async def test_a_mention_from_another_workspace_gets_nothing(started, fake_slack, emulator):
    runtime = await started(SLACK_TEAM_ID=OURS)
    response = await mention(runtime, fake_slack, f"@otajob {JOB}", team_id=THEIRS)
    assert response.status == 200 and not response.body
    await handled()
    assert emulator.calls == []
    said = {"chat.postMessage", "chat.postEphemeral", "chat.update", "views.publish"}
    assert [c for c in fake_slack.calls if c.method in said] == []
    # The same mention from our workspace is answered.
    await mention(runtime, fake_slack, f"@otajob {JOB}", team_id=OURS)
    await fake_slack.wait_for_calls("chat.postMessage")


async def test_without_slack_team_id_any_workspace_is_answered(started, fake_slack):
    runtime = await started()
    await command(runtime, fake_slack, JOB, team_id=THEIRS)
    (card, *_) = await fake_slack.wait_for_posts("r1")
    assert JOB in dump(card)


# --- 8. OTAJOB_ALLOWED_CHANNELS and OTAJOB_ALLOWED_USERS ----------------------------------


async def test_a_command_in_a_channel_not_listed_is_refused(started, fake_slack, emulator):
    runtime = await started(OTAJOB_ALLOWED_CHANNELS="C0OPS,C0FW")
    body = ack_body(await command(runtime, fake_slack, JOB, channel_id="C123"))
    assert "OTAJOB_ALLOWED_CHANNELS" in json.dumps(body)
    # A DM is a channel like any other: strict unless listed.
    body = ack_body(await command(runtime, fake_slack, JOB, key="r2", channel_id="D0DM1"))
    assert "OTAJOB_ALLOWED_CHANNELS" in json.dumps(body)
    await handled()
    assert emulator.calls == []


async def test_a_command_in_a_listed_channel_works(started, fake_slack, emulator):
    runtime = await started(OTAJOB_ALLOWED_CHANNELS="C0OPS,C0FW")
    response = await command(runtime, fake_slack, JOB, channel_id="C0FW")
    assert not response.body
    (card, *_) = await fake_slack.wait_for_posts("r1")
    assert JOB in dump(card)


async def test_a_click_in_a_channel_not_listed_is_refused(started, fake_slack, emulator):
    runtime = await started(OTAJOB_ALLOWED_CHANNELS="C0OPS")
    await click(runtime, fake_slack, "job_refresh", JobRef(JOB).to_value(), channel_id="C123")
    (refusal,) = await fake_slack.wait_for_posts("b1")
    assert "OTAJOB_ALLOWED_CHANNELS" in dump(refusal)
    await handled()
    assert emulator.calls == []


async def test_a_mention_in_a_channel_not_listed_gets_nothing(started, fake_slack, emulator):
    runtime = await started(OTAJOB_ALLOWED_CHANNELS="C0OPS")
    await mention(runtime, fake_slack, f"@otajob {JOB}", channel_id="C123")
    await handled()
    assert emulator.calls == []
    assert fake_slack.calls_to("chat.postMessage") == []
    assert fake_slack.calls_to("chat.postEphemeral") == []


async def test_the_home_tab_is_not_refused_by_the_channel_list(started, fake_slack):
    """app_home_opened names the app's DM as its channel: not a place to restrict."""
    runtime = await started(OTAJOB_ALLOWED_CHANNELS="C0OPS")
    await home_opened(runtime, fake_slack, "U123")
    (published,) = await fake_slack.wait_for_calls("views.publish")
    assert published.args["user_id"] == "U123" and "U123" in fake_slack.home


async def test_the_home_tab_is_refused_to_a_person_not_listed(started, fake_slack):
    runtime = await started(OTAJOB_ALLOWED_USERS="U0ONCALL")
    await home_opened(runtime, fake_slack, "U123")
    await handled()
    assert fake_slack.calls_to("views.publish") == []


async def test_a_person_not_listed_is_refused(started, fake_slack, emulator):
    runtime = await started(OTAJOB_ALLOWED_USERS="U0ONCALL,W0LEAD")
    body = ack_body(await command(runtime, fake_slack, JOB, user_id="U123"))
    assert "OTAJOB_ALLOWED_USERS" in json.dumps(body)
    await click(runtime, fake_slack, "job_refresh", JobRef(JOB).to_value(), user_id="U123")
    (refusal,) = await fake_slack.wait_for_posts("b1")
    assert "OTAJOB_ALLOWED_USERS" in dump(refusal)
    await handled()
    assert emulator.calls == []


async def test_a_listed_person_is_answered(started, fake_slack, emulator):
    runtime = await started(OTAJOB_ALLOWED_USERS="U0ONCALL,W0LEAD")
    response = await command(runtime, fake_slack, JOB, user_id="W0LEAD")
    assert not response.body
    (card, *_) = await fake_slack.wait_for_posts("r1")
    assert JOB in dump(card)


async def test_help_and_input_mistakes_are_refused_too(started, fake_slack):
    """The access check runs before anything else, whatever the command says."""
    runtime = await started(OTAJOB_ALLOWED_USERS="U0ONCALL")
    for text in ("help", "watch", "Hv****0200"):
        body = ack_body(await command(runtime, fake_slack, text))
        assert "OTAJOB_ALLOWED_USERS" in json.dumps(body), text


async def test_a_forged_cancel_dialog_from_another_workspace_cancels_nothing(
    started, fake_slack, emulator
):
    runtime = await started(SLACK_TEAM_ID=OURS, OTAJOB_ACTIONS="cancel", OTAJOB_ADMINS="U123")
    private = json.dumps({"job": JOB, "instance": None, "channel": "C123"})
    response = await submit(
        runtime, fake_slack, "cancel_confirm", private_metadata=private, values={}, team_id=THEIRS
    )
    assert response.status == 200
    await handled()
    assert emulator.calls == [] and await runtime.store.actions_for(JOB) == []


# --- 9. settings of the write actions ------------------------------------------------------

BASE = {"SLACK_BOT_TOKEN": "x", "SLACK_SIGNING_SECRET": "y"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OTAJOB_ADMINS", "U123,bob"),
        ("OTAJOB_ADMINS", "U123 S0ONCALL"),
        ("OTAJOB_ADMINS", "@alice"),
        ("OTAJOB_ADMINS", "C0OPS"),  # a channel is nobody
        ("OTAJOB_ACTIONS", "cancel,delete"),
        ("OTAJOB_ACTIONS", "cancel reupgrade"),
        ("OTAJOB_ALLOWED_CHANNELS", "#ops"),
        ("OTAJOB_ALLOWED_USERS", "S0ONCALL"),  # groups are for admins only
    ],
)
def test_a_bad_list_stops_the_app_naming_the_variable(name, value) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({**BASE, name: value})
    text = str(info.value)
    assert name in text and "SLACK_BOT_TOKEN" not in text
    others = {"OTAJOB_ADMINS", "OTAJOB_ACTIONS", "OTAJOB_ALLOWED_CHANNELS"} - {name}
    assert not any(other in text for other in others)


def test_good_lists_are_read() -> None:
    settings = load_settings(
        {
            **BASE,
            "OTAJOB_ACTIONS": "Cancel, reupgrade",
            "OTAJOB_ADMINS": "U123;W456, S0ONCALL",
            "OTAJOB_ALLOWED_CHANNELS": "C0OPS,G0PRIV,D0DM1",
            "OTAJOB_ALLOWED_USERS": "U123",
        }
    )
    assert settings.actions == frozenset({"cancel", "reupgrade"})
    policy = Policy.from_settings(settings)
    assert policy.admins == frozenset({"U123", "W456", "S0ONCALL"})
    assert policy.channels == frozenset({"C0OPS", "G0PRIV", "D0DM1"})
    assert policy.refusal(OURS, "U123", "C0OPS") is None
    assert policy.refusal(OURS, "U999", "C0OPS") == "user_not_allowed"
    assert policy.refusal(OURS, "U123", "C123") == "channel_not_allowed"


def test_every_bad_list_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({**BASE, "OTAJOB_ADMINS": "bob", "OTAJOB_ACTIONS": "nuke"})
    assert "OTAJOB_ADMINS" in str(info.value) and "OTAJOB_ACTIONS" in str(info.value)


async def test_a_watch_cannot_send_posts_to_a_channel_outside_the_list(emulator, fake_slack):
    """From an allowed channel, `watch <JobId> #other` must not post into #other."""
    runtime = await start_runtime(emulator, fake_slack, OTAJOB_ALLOWED_CHANNELS="C123")
    try:
        fake_slack.add_channel("C999", "x", members={"U123"})
        await command(runtime, fake_slack, f"watch {fixtures.EXAMPLE_JOB_ID_UNMASKED} #x")
        (answer,) = await fake_slack.wait_for_posts("r1")
        assert "not one of them" in dump(answer)
        assert fake_slack.messages("C999") == [] and await runtime.store.live_watches() == []
    finally:
        await runtime.aclose()


async def test_a_refused_dialog_submission_says_why_and_stays_open(emulator, fake_slack):
    runtime = await start_runtime(
        emulator,
        fake_slack,
        OTAJOB_ALLOWED_USERS="U0OTHER1",
        OTAJOB_ACTIONS="cancel",
        OTAJOB_ADMINS="U123",
    )
    try:
        private = json.dumps({"job": fixtures.EXAMPLE_JOB_ID_UNMASKED, "channel": "C123"})
        response = await submit(
            runtime, fake_slack, "cancel_confirm", private_metadata=private, values={}
        )
        body = json.loads(response.body)
        assert body["response_action"] == "errors"
        assert "OTAJOB_ALLOWED_USERS" in body["errors"]["cancel_in_progress"]
        assert emulator.count("CancelOTATaskByJob") == 0
    finally:
        await runtime.aclose()


def test_with_a_user_list_a_request_without_a_user_is_refused() -> None:
    policy = Policy(users=frozenset({"U0ALLOWED"}))
    assert policy.refusal("T1", None, "C1") == "user_not_allowed"
    assert policy.refusal("T1", "U0ALLOWED", "C1") is None
