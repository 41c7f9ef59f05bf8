"""Guarded write actions end to end: Cancel rollout (a dialog that says what will stop,
then CancelOTAStrategyByJob / CancelOTATaskByJob) and Re-upgrade failed devices
(ReupgradeOTATask, 10 per call), only for OTAJOB_ADMINS and only when OTAJOB_ACTIONS
turns them on; every action recorded in the database and posted in the batch's thread."""

from __future__ import annotations

import asyncio
import json

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.emulator import fixtures
from bot.job_ref import JobRef
from bot.slack.triage import PageRef
from fakes import checkboxes
from tests.surfaces import buttons, click, command, dispatch, dump, handled, slack, submit

ADMIN, ADMIN_NAME = "U123", "alice"  # the fakes' default user
MEMBER, MEMBER_NAME = "U999", "mallory"  # in the workspace, not an admin
ONCALL = "U777"  # an admin through the S0ONCALL user group
SETTINGS = {"OTAJOB_ACTIONS": "cancel,reupgrade", "OTAJOB_ADMINS": "U123,S0ONCALL"}
WRITES = ("CancelOTAStrategyByJob", "CancelOTATaskByJob", "ReupgradeOTATask")

STATIC = "GuardStatic00000000000001"
DYNAMIC = "GuardDynamic0000000000001"
REUP = "GuardReupgrade00000000001"
PENDING = {"QUEUED": 7, "NOTIFIED": 3, "CONFIRM": 2, "IN_PROGRESS": 4, "SUCCEEDED": 10, "FAILED": 1}


def add_jobs(emulator) -> None:
    emulator.add_job(fixtures.make_job(STATIC))
    emulator.add_job(fixtures.make_job(DYNAMIC, SelectionType="DYNAMIC"))
    emulator.add_job(fixtures.make_job(REUP))  # NeedConfirm false: re-upgraded tasks queue
    for job_id in (STATIC, DYNAMIC):
        emulator.set_tasks(job_id, PENDING)
    emulator.set_tasks(REUP, {"FAILED": 25, "SUCCEEDED": 5})


@pytest.fixture
async def started(emulator, started):
    """conftest's ``started``, with this module's jobs added before each runtime starts."""

    async def start(**settings: str):
        add_jobs(emulator)
        return await started(**settings)

    return start


@pytest.fixture
async def runtime(fake_slack, started):
    fake_slack.directory.add_user(MEMBER, MEMBER_NAME)
    fake_slack.directory.add_user(ONCALL, "olga")
    fake_slack.directory.add_usergroup("S0ONCALL", "oncall", (ONCALL,))
    return await started(**SETTINGS)


# --- helpers ---------------------------------------------------------------------------


async def card_buttons(runtime, fake_slack, job_id: str, key: str = "r1", **kwargs) -> dict:
    """The /otajob card's buttons (action_id -> button) once its counts are in."""
    await command(runtime, fake_slack, job_id, key=key, **kwargs)
    posts = await fake_slack.wait_for_posts(key)
    if "Counting devices" in dump(posts[-1]):
        posts = await fake_slack.wait_for_posts(key, 2)
    return buttons(posts[-1].body["blocks"])


async def open_dialog(runtime, fake_slack, job_id: str, **click_kwargs) -> dict:
    """An admin clicks Cancel rollout…; the dialog once views.update filled it in."""
    await click(runtime, fake_slack, "job_cancel", JobRef(job_id).to_value(), **click_kwargs)
    (update,) = await fake_slack.wait_for_calls("views.update")
    return fake_slack.views[update.args["view_id"]]


async def confirm(runtime, fake_slack, view: dict, *, in_progress: bool = False, **kwargs):
    """Submit the cancel dialog, ticking "in progress" or not."""
    ticked = checkboxes("in_progress") if in_progress else checkboxes()
    return await submit(
        runtime,
        fake_slack,
        "cancel_confirm",
        view=view,
        values={"cancel_in_progress": {"in_progress": ticked}},
        **kwargs,
    )


async def recorded(runtime, job_id: str, n: int = 1, timeout: float = 5.0) -> list[dict]:
    """The job's action log once it holds ``n`` finished actions (a row is written as
    ``started`` before the first write, and finished after the last)."""

    async def finished() -> list[dict]:
        rows = await runtime.store.actions_for(job_id)
        return [r for r in rows if r["outcome"] != "started"]

    async def poll() -> list[dict]:
        while len(rows := await finished()) < n:
            await asyncio.sleep(0.02)
        return rows

    return await asyncio.wait_for(poll(), timeout)


async def posted_record(fake_slack, channel: str, n: int = 1) -> dict:
    """The n-th message in ``channel`` (a thread reply, the channel or a DM)."""
    return (await fake_slack.wait_for_messages(channel, n))[n - 1]


def text_of(message: dict) -> str:
    return json.dumps({"text": message["text"], "blocks": message["blocks"]}, ensure_ascii=False)


def writes(emulator) -> int:
    return sum(emulator.count(action) for action in WRITES)


# --- 1. the Cancel button on the card -----------------------------------------------------


async def test_an_admins_own_card_has_the_cancel_button(runtime, fake_slack):
    found = await card_buttons(runtime, fake_slack, STATIC)
    assert found["job_cancel"]["style"] == "danger"
    assert found["job_cancel"]["text"]["text"] == "Cancel rollout…"
    assert JobRef.from_value(found["job_cancel"]["value"]) == JobRef(STATIC)


async def test_a_non_admins_card_has_no_cancel_button(runtime, fake_slack):
    found = await card_buttons(runtime, fake_slack, STATIC, user_id=MEMBER, user_name=MEMBER_NAME)
    assert "job_refresh" in found and "job_cancel" not in found


async def test_an_admin_through_a_user_group_gets_the_button(runtime, fake_slack):
    found = await card_buttons(runtime, fake_slack, STATIC, user_id=ONCALL, user_name="olga")
    assert "job_cancel" in found
    (lookup,) = fake_slack.calls_to("usergroups.users.list")
    assert lookup.args["usergroup"] == "S0ONCALL" and lookup.error is None


async def test_a_user_group_that_cannot_be_read_grants_nothing(started, fake_slack, emulator):
    """S0GONE is not a group Slack knows (no_such_subteam): nobody is an admin through it."""
    runtime = await started(OTAJOB_ACTIONS="cancel,reupgrade", OTAJOB_ADMINS="S0GONE")
    found = await card_buttons(runtime, fake_slack, STATIC, user_id=ONCALL, user_name="olga")
    assert "job_cancel" not in found
    assert [c.error for c in fake_slack.calls_to("usergroups.users.list")] == ["no_such_subteam"]
    await click(runtime, fake_slack, "job_cancel", JobRef(STATIC).to_value(), user_id=ONCALL)
    (refusal,) = await fake_slack.wait_for_posts("b1")
    assert "OTAJOB_ADMINS" in dump(refusal)
    assert fake_slack.calls_to("views.open") == [] and writes(emulator) == 0


async def test_without_otajob_actions_nobody_gets_the_button(started, fake_slack):
    runtime = await started(OTAJOB_ADMINS="U123")
    assert "job_cancel" not in await card_buttons(runtime, fake_slack, STATIC)


async def test_with_only_reupgrade_on_the_card_has_no_cancel_button(started, fake_slack):
    runtime = await started(OTAJOB_ACTIONS="reupgrade", OTAJOB_ADMINS="U123")
    assert "job_cancel" not in await card_buttons(runtime, fake_slack, STATIC)


async def test_a_finished_batch_has_no_cancel_button(runtime, fake_slack):
    found = await card_buttons(runtime, fake_slack, fixtures.COMPLETED_JOB_ID)
    assert "job_refresh" in found and "job_cancel" not in found


async def test_a_shared_card_never_has_the_cancel_button(runtime, fake_slack):
    own = await card_buttons(runtime, fake_slack, STATIC)
    await click(runtime, fake_slack, "job_share", own["job_share"]["value"])
    (shared,) = await fake_slack.wait_for_posts("b1")
    assert shared.body["response_type"] == "in_channel"
    found = buttons(shared.body["blocks"])
    assert "job_refresh" in found and "job_cancel" not in found
    # Refreshing the shared card (in the channel, not ephemeral) keeps it without.
    await click(runtime, fake_slack, "job_refresh", found["job_refresh"]["value"], key="b2")
    (refreshed,) = await fake_slack.wait_for_posts("b2")
    assert "job_cancel" not in buttons(refreshed.body["blocks"])


async def test_refreshing_an_admins_ephemeral_card_keeps_the_button(runtime, fake_slack):
    own = await card_buttons(runtime, fake_slack, STATIC)
    value = own["job_refresh"]["value"]
    await click(runtime, fake_slack, "job_refresh", value, where="ephemeral")
    posts = await fake_slack.wait_for_posts("b1")
    assert "job_cancel" in buttons(posts[-1].body["blocks"])


async def test_a_watched_card_has_no_cancel_button(runtime, fake_slack):
    await command(runtime, fake_slack, f"watch {STATIC}")
    await fake_slack.wait_for_posts("r1")
    (card,) = fake_slack.top_level("C123")
    assert "job_cancel" not in buttons(card["blocks"])


# --- 2. the dialog ---------------------------------------------------------------------


async def test_cancel_opens_the_dialog_at_once_then_says_what_will_stop(runtime, fake_slack):
    found = await card_buttons(runtime, fake_slack, STATIC)
    request = slack(fake_slack).click("job_cancel", found["job_cancel"]["value"])
    await dispatch(runtime, request)
    (opened,) = await fake_slack.wait_for_calls("views.open")
    assert opened.args["trigger_id"] == request.body["trigger_id"] and opened.error is None
    assert "Reading the batch" in json.dumps(opened.args["view"])
    (update,) = await fake_slack.wait_for_calls("views.update")
    view = fake_slack.views[update.args["view_id"]]
    assert list(fake_slack.views) == [update.args["view_id"]]  # the one it opened
    assert view["callback_id"] == "cancel_confirm" and view["submit"]["text"] == "Cancel rollout"
    text = json.dumps(view["blocks"], ensure_ascii=False)
    assert "7 queued, 3 notified, 2 awaiting confirmation" in text
    assert "10 succeeded, 1 failed" in text
    assert "CancelOTAStrategyByJob" not in text and "dynamic strategy" not in text
    (box,) = [b for b in view["blocks"] if b.get("block_id") == "cancel_in_progress"]
    element = box["element"]
    assert element["type"] == "checkboxes" and element["action_id"] == "in_progress"
    assert "initial_options" not in element  # unticked
    assert element["options"][0]["text"]["text"] == "Also cancel the 4 devices in progress"
    assert json.loads(view["private_metadata"]) == {
        "job": STATIC,
        "instance": None,
        "channel": "C123",
        "lang": "en",  # the dialog's language: a refusal at submission is written in it
    }


async def test_the_dialog_of_a_dynamic_batch_says_its_strategy_stops(runtime, fake_slack):
    view = await open_dialog(runtime, fake_slack, DYNAMIC)
    text = json.dumps(view["blocks"], ensure_ascii=False)
    assert "stop the batch's dynamic strategy" in text and "CancelOTAStrategyByJob" in text
    assert "7 queued, 3 notified, 2 awaiting confirmation" in text


async def test_the_dialog_of_a_finished_batch_cannot_be_submitted(runtime, fake_slack, emulator):
    emulator.set_status(STATIC, "COMPLETED")  # finished after the card was shown
    view = await open_dialog(runtime, fake_slack, STATIC)
    assert "submit" not in view and "nothing left to cancel" in json.dumps(view["blocks"])
    assert writes(emulator) == 0


# --- 3. confirming -----------------------------------------------------------------------


async def test_confirming_cancels_the_pending_tasks_and_records_it(runtime, fake_slack, emulator):
    view = await open_dialog(runtime, fake_slack, STATIC)
    response = await confirm(runtime, fake_slack, view)
    assert response.status == 200 and not response.body  # a plain ack closes the dialog
    (row,) = await recorded(runtime, STATIC)
    record = await posted_record(fake_slack, "C123")
    counts = emulator.task_counts(STATIC)
    assert counts["QUEUED"] == counts["NOTIFIED"] == counts["CONFIRM"] == 0
    assert counts["CANCELED"] == 12 and counts["IN_PROGRESS"] == 4  # not ticked: untouched
    assert emulator.count("CancelOTAStrategyByJob") == 0  # a static batch has no strategy
    (call,) = [c for c in emulator.calls if c.action == "CancelOTATaskByJob"]
    assert "CancelInProgressTask" not in call.params
    assert call.params["CancelQueuedTask"] == call.params["CancelNotifiedTask"] == "true"
    assert (row["user_id"], row["user_name"], row["action"]) == (ADMIN, ADMIN_NAME, "cancel")
    assert row["outcome"] == "done" and row["error"] is None
    (request_id,) = row["request_ids"].split(",")
    assert request_id and json.loads(row["detail"])["done"] == ["tasks"]
    # Posted where the dialog was opened (no watch), naming the actor without a mention.
    text = text_of(record)
    assert "alice" in text and "canceled the pending device tasks" in text
    assert request_id in text and f"record #{row['id']}" in text
    assert "<@" not in text and "<!" not in text.replace("<!date^", "")
    await handled()
    assert fake_slack.messages(ADMIN) == []  # posted where they clicked: no DM


async def test_ticking_in_progress_cancels_those_too(runtime, fake_slack, emulator):
    view = await open_dialog(runtime, fake_slack, STATIC)
    await confirm(runtime, fake_slack, view, in_progress=True)
    (row,) = await recorded(runtime, STATIC)
    record = await posted_record(fake_slack, "C123")
    counts = emulator.task_counts(STATIC)
    assert counts["IN_PROGRESS"] == 0 and counts["CANCELED"] == 16
    assert counts["SUCCEEDED"] == 10 and counts["FAILED"] == 1  # finished devices stay
    assert "in_progress" in json.loads(row["detail"])["cancel"]
    assert "pending and in-progress device tasks" in text_of(record)


async def test_confirming_a_dynamic_batch_stops_its_strategy(runtime, fake_slack, emulator):
    view = await open_dialog(runtime, fake_slack, DYNAMIC)
    await confirm(runtime, fake_slack, view)
    (row,) = await recorded(runtime, DYNAMIC)
    record = await posted_record(fake_slack, "C123")
    assert emulator.canceled_strategies == {DYNAMIC}
    assert emulator.count("CancelOTAStrategyByJob") == 1
    assert emulator.count("CancelOTATaskByJob") == 1
    assert row["outcome"] == "done" and len(row["request_ids"].split(",")) == 2
    assert json.loads(row["detail"]) == {
        "cancel": ["notified", "queued", "scheduled", "unconfirmed"],
        "done": ["strategy", "tasks"],
        "dynamic": True,
        "finished": False,
    }
    assert "stopped the dynamic strategy" in text_of(record)


async def test_a_watched_batchs_record_goes_in_the_cards_thread(runtime, fake_slack, emulator):
    await command(runtime, fake_slack, f"watch {STATIC}")
    await fake_slack.wait_for_posts("r1")
    (card,) = fake_slack.top_level("C123")
    view = await open_dialog(runtime, fake_slack, STATIC)
    await confirm(runtime, fake_slack, view)
    await recorded(runtime, STATIC)
    await fake_slack.wait_for_messages("C123", 2)
    thread = fake_slack.thread("C123", card["ts"])
    assert len(thread) == 2 and "canceled the pending device tasks" in text_of(thread[1])
    assert len(fake_slack.top_level("C123")) == 1  # in the thread, not beside the card
    await handled()
    assert fake_slack.messages(ADMIN) == []  # they clicked in that channel: no DM


async def test_the_actor_gets_a_dm_when_the_record_went_elsewhere(runtime, fake_slack):
    """Watched in C123, canceled from a card in C456: the thread in C123, and a DM."""
    await command(runtime, fake_slack, f"watch {STATIC}")
    await fake_slack.wait_for_posts("r1")
    (card,) = fake_slack.top_level("C123")
    view = await open_dialog(runtime, fake_slack, STATIC, channel_id="C456")
    assert json.loads(view["private_metadata"])["channel"] == "C456"
    await confirm(runtime, fake_slack, view)
    dm = await posted_record(fake_slack, ADMIN)
    assert "canceled the pending device tasks" in text_of(dm)
    assert len(fake_slack.thread("C123", card["ts"])) == 2
    assert fake_slack.messages("C456") == []  # the thread is the batch's place


async def test_the_record_goes_by_dm_where_the_app_cannot_post(runtime, fake_slack, emulator):
    fake_slack.add_channel("G999", is_private=True, is_member=False)
    view = await open_dialog(runtime, fake_slack, STATIC, channel_id="G999")
    await confirm(runtime, fake_slack, view)
    dm = await posted_record(fake_slack, ADMIN)
    assert "canceled the pending device tasks" in text_of(dm)
    assert fake_slack.messages("G999") == []
    assert emulator.task_counts(STATIC)["CANCELED"] == 12


async def test_the_default_instance_is_used_for_the_writes_and_the_thread(
    started, fake_slack, emulator
):
    """IOT_INSTANCE_ID set and no `instance` typed: the cancel goes to that instance (as
    the dialog's reads did) and finds the watch made in it."""
    instance = "iot-cn-guard01"
    runtime = await started(IOT_INSTANCE_ID=instance, **SETTINGS)
    scoped = "GuardScoped00000000000001"
    emulator.add_job(fixtures.make_job(scoped), instance_id=instance)
    emulator.set_tasks(scoped, PENDING)
    await command(runtime, fake_slack, f"watch {scoped}")
    await fake_slack.wait_for_posts("r1")
    (card,) = fake_slack.top_level("C123")
    view = await open_dialog(runtime, fake_slack, scoped)
    assert "7 queued" in json.dumps(view["blocks"])
    await confirm(runtime, fake_slack, view)
    (row,) = await recorded(runtime, scoped)
    assert row["outcome"] == "done" and row["instance_id"] == instance
    (call,) = [c for c in emulator.calls if c.action == "CancelOTATaskByJob"]
    assert call.params.get("IotInstanceId") == instance and call.code is None
    assert emulator.task_counts(scoped)["CANCELED"] == 12
    await fake_slack.wait_for_messages("C123", 2)
    assert len(fake_slack.thread("C123", card["ts"])) == 2


# --- 4. refusals -------------------------------------------------------------------------


async def test_a_non_admin_clicking_a_forged_cancel_button_is_refused(
    runtime, fake_slack, emulator
):
    value = JobRef(STATIC).to_value()
    await click(runtime, fake_slack, "job_cancel", value, user_id=MEMBER, user_name=MEMBER_NAME)
    (refusal,) = await fake_slack.wait_for_posts("b1")
    assert refusal.body["response_type"] == "ephemeral"
    assert refusal.body["replace_original"] is False
    assert "OTAJOB_ADMINS" in dump(refusal) and "Nothing was changed" in dump(refusal)
    await handled()
    assert fake_slack.calls_to("views.open") == []
    assert writes(emulator) == 0 and emulator.count("QueryOTAJob") == 0
    assert await runtime.store.actions_for(STATIC) == []


async def test_a_non_admin_clicking_a_forged_reupgrade_button_is_refused(
    runtime, fake_slack, emulator
):
    value = PageRef(REUP, None, 1).to_value()
    await click(runtime, fake_slack, "job_reupgrade", value, user_id=MEMBER)
    (refusal,) = await fake_slack.wait_for_posts("b1")
    assert "OTAJOB_ADMINS" in dump(refusal)
    await handled()
    assert writes(emulator) == 0 and emulator.task_counts(REUP)["FAILED"] == 25
    assert await runtime.store.actions_for(REUP) == []


async def test_a_non_admin_submitting_a_forged_dialog_gets_errors(runtime, fake_slack, emulator):
    private = json.dumps({"job": STATIC, "instance": None, "channel": "C123"})
    response = await confirm(
        runtime, fake_slack, {"private_metadata": private}, in_progress=True, user_id=MEMBER
    )
    body = json.loads(response.body)
    assert body["response_action"] == "errors"
    assert "OTAJOB_ADMINS" in body["errors"]["cancel_in_progress"]
    await handled()
    assert writes(emulator) == 0 and emulator.task_counts(STATIC)["CANCELED"] == 0
    assert await runtime.store.actions_for(STATIC) == []


async def test_a_dialog_with_metadata_we_did_not_write_gets_errors(runtime, fake_slack, emulator):
    for private in ("", "not json", '"text"', '{"job": "Fw****0100"}', "[1, 2]"):
        response = await confirm(runtime, fake_slack, {"private_metadata": private})
        body = json.loads(response.body)
        assert body["response_action"] == "errors"
        assert "out of date" in body["errors"]["cancel_in_progress"]
    assert writes(emulator) == 0


async def test_with_cancel_turned_off_clicks_and_dialogs_are_refused(started, fake_slack, emulator):
    runtime = await started(OTAJOB_ACTIONS="reupgrade", OTAJOB_ADMINS="U123")
    await click(runtime, fake_slack, "job_cancel", JobRef(STATIC).to_value())
    (refusal,) = await fake_slack.wait_for_posts("b1")
    assert "turned off" in dump(refusal) and "OTAJOB_ACTIONS" in dump(refusal)
    private = json.dumps({"job": STATIC, "instance": None, "channel": "C123"})
    body = json.loads((await confirm(runtime, fake_slack, {"private_metadata": private})).body)
    assert body["response_action"] == "errors"
    assert "turned off" in body["errors"]["cancel_in_progress"]
    await handled()
    assert fake_slack.calls_to("views.open") == [] and writes(emulator) == 0


async def test_with_reupgrade_turned_off_the_click_is_refused(started, fake_slack, emulator):
    runtime = await started(OTAJOB_ACTIONS="cancel", OTAJOB_ADMINS="U123")
    await click(runtime, fake_slack, "job_reupgrade", PageRef(REUP, None, 1).to_value())
    (refusal,) = await fake_slack.wait_for_posts("b1")
    assert "turned off" in dump(refusal)
    await handled()
    assert writes(emulator) == 0


@pytest.mark.parametrize(
    ("action_id", "value"),
    [
        ("job_cancel", "not json"),
        ("job_cancel", '{"job": "Hv****0200"}'),
        ("job_reupgrade", JobRef(REUP).to_value()),  # no page: not a listing's value
        ("job_reupgrade", '{"job": "x", "page": 1}'),
    ],
)
async def test_an_admins_stale_or_forged_button_value_is_refused(
    runtime, fake_slack, emulator, action_id, value
):
    await click(runtime, fake_slack, action_id, value)
    (post,) = await fake_slack.wait_for_posts("b1")
    assert "cannot read" in dump(post)
    await handled()
    assert writes(emulator) == 0 and fake_slack.calls_to("views.open") == []


async def test_an_admin_through_a_user_group_can_cancel(runtime, fake_slack, emulator):
    view = await open_dialog(runtime, fake_slack, STATIC, user_id=ONCALL, user_name="olga")
    await confirm(runtime, fake_slack, view, user_id=ONCALL, user_name="olga")
    (row,) = await recorded(runtime, STATIC)
    assert (row["user_id"], row["outcome"]) == (ONCALL, "done")
    assert "olga" in text_of(await posted_record(fake_slack, "C123"))


# --- 5. re-upgrade -------------------------------------------------------------------------


async def failed_listing(runtime, fake_slack, job_id: str = REUP, key="r1", **kwargs):
    await command(runtime, fake_slack, f"{job_id} failed", key=key, **kwargs)
    (post,) = await fake_slack.wait_for_posts(key)
    return post


async def test_the_failed_listing_offers_reupgrade_to_admins_only(runtime, fake_slack):
    post = await failed_listing(runtime, fake_slack)
    button = buttons(post.body["blocks"])["job_reupgrade"]
    assert button["text"]["text"] == "Re-upgrade 25 failed…"
    assert button["confirm"]["title"]["text"] == "Re-upgrade 25 devices?"
    assert "(25 when this list was read" in button["confirm"]["text"]["text"]
    assert PageRef.from_value(button["value"]) == PageRef(REUP, None, 1)
    other = await failed_listing(runtime, fake_slack, key="r2", user_id=MEMBER)
    assert "job_reupgrade" not in buttons(other.body["blocks"])
    assert "failed_csv" in buttons(other.body["blocks"])


async def test_reupgrade_sends_every_failed_device_ten_at_a_time(runtime, fake_slack, emulator):
    post = await failed_listing(runtime, fake_slack)
    value = buttons(post.body["blocks"])["job_reupgrade"]["value"]
    await click(runtime, fake_slack, "job_reupgrade", value)
    (note,) = await fake_slack.wait_for_posts("b1")
    assert "Re-upgrading the failed devices" in dump(note)
    (row,) = await recorded(runtime, REUP)
    record = await posted_record(fake_slack, "C123")
    calls = [c for c in emulator.calls if c.action == "ReupgradeOTATask"]
    sizes = sorted(len([k for k in c.params if k.startswith("TaskId.")]) for c in calls)
    assert sizes == [5, 10, 10]
    task_ids = [v for c in calls for k, v in c.params.items() if k.startswith("TaskId.")]
    assert len(set(task_ids)) == 25
    for c in calls:  # numbered from 1 without gaps, as the API wants
        keys = sorted(int(k.split(".")[1]) for k in c.params if k.startswith("TaskId."))
        assert keys == list(range(1, len(keys) + 1))
    counts = emulator.task_counts(REUP)
    assert counts["FAILED"] == 0 and counts["QUEUED"] == 25
    assert row["outcome"] == "done" and json.loads(row["detail"]) == {
        "reupgraded": 25,
        "found": 25,
        "total": 25,
        "capped": False,
    }
    assert len(row["request_ids"].split(",")) == 3
    text = text_of(record)
    assert "asked for 25 failed devices to be updated again" in text and "alice" in text
    assert "<@" not in text


async def test_a_refused_reupgrade_call_makes_the_outcome_partial(runtime, fake_slack, emulator):
    emulator.fail_next("business", count=1, action="ReupgradeOTATask")
    await click(runtime, fake_slack, "job_reupgrade", PageRef(REUP, None, 1).to_value())
    (row,) = await recorded(runtime, REUP)
    record = await posted_record(fake_slack, "C123")
    calls = [c for c in emulator.calls if c.action == "ReupgradeOTATask"]
    assert len(calls) == 3  # a refused write is not tried again
    (refused,) = [c for c in calls if c.code]
    left = len([k for k in refused.params if k.startswith("TaskId.")])
    assert emulator.task_counts(REUP)["FAILED"] == left
    assert row["outcome"] == "partial"
    assert json.loads(row["detail"])["reupgraded"] == 25 - left
    assert "iot.system.SystemException" in row["error"]
    text = text_of(record)
    assert "not all of it went through" in text
    assert "iot.system.SystemException" in text
    request_id = row["error"].split("RequestId ")[1].rstrip(")")
    assert f"RequestId `{request_id}`" in text


# --- 6. failed writes ------------------------------------------------------------------------


async def test_a_refused_cancel_is_recorded_as_failed(runtime, fake_slack, emulator):
    emulator.fail_next("business", count=1, action="CancelOTATaskByJob")
    view = await open_dialog(runtime, fake_slack, STATIC)
    await confirm(runtime, fake_slack, view)
    (row,) = await recorded(runtime, STATIC)
    record = await posted_record(fake_slack, "C123")
    assert row["outcome"] == "failed" and json.loads(row["detail"])["done"] == []
    assert emulator.count("CancelOTATaskByJob") == 1
    assert emulator.task_counts(STATIC)["CANCELED"] == 0
    text = text_of(record)
    assert "iot.system.SystemException" in text and "RequestId `" in text
    assert row["request_ids"] and row["request_ids"] in text
    assert "Alibaba Cloud refused, nothing changed" in text


async def test_a_partial_cancel_does_not_claim_the_tasks_were_canceled(
    runtime, fake_slack, emulator
):
    """The strategy stopped, then CancelOTATaskByJob was refused."""
    emulator.fail_next("business", count=1, action="CancelOTATaskByJob")
    view = await open_dialog(runtime, fake_slack, DYNAMIC)
    await confirm(runtime, fake_slack, view)
    (row,) = await recorded(runtime, DYNAMIC)
    record = await posted_record(fake_slack, "C123")
    assert row["outcome"] == "partial" and emulator.canceled_strategies == {DYNAMIC}
    assert emulator.task_counts(DYNAMIC)["CANCELED"] == 0
    text = text_of(record)
    assert "stopped the dynamic strategy" in text and "not all of it went through" in text
    assert "canceled the pending device tasks" not in text
    assert "iot.system.SystemException" in text and len(row["request_ids"].split(",")) == 2


async def test_a_server_error_on_a_write_is_not_retried(runtime, fake_slack, emulator):
    """A 5xx may hide a cancel that took effect: the person decides again, not the app."""
    emulator.fail_next("server_error", count=1, action="CancelOTATaskByJob")
    view = await open_dialog(runtime, fake_slack, STATIC)
    await confirm(runtime, fake_slack, view)
    (row,) = await recorded(runtime, STATIC)
    record = await posted_record(fake_slack, "C123")
    assert emulator.count("CancelOTATaskByJob") == 1
    assert row["outcome"] == "failed" and "ServiceUnavailable" in row["error"]
    text = text_of(record)
    assert "ServiceUnavailable" in text and "RequestId `" in text
    assert "nothing changed" not in text and "may or may not" in text


async def test_a_timed_out_write_is_not_retried_and_not_called_a_refusal(
    started, fake_slack, emulator
):
    """The emulator runs the cancel but answers too late: it did take effect."""
    runtime = await started(IOT_TIMEOUT_SECONDS="0.5", **SETTINGS)
    view = await open_dialog(runtime, fake_slack, STATIC)
    emulator.fail_next("slow", count=1, action="CancelOTATaskByJob")
    await confirm(runtime, fake_slack, view)
    (row,) = await recorded(runtime, STATIC)
    record = await posted_record(fake_slack, "C123")
    assert emulator.count("CancelOTATaskByJob") == 1
    assert emulator.task_counts(STATIC)["CANCELED"] == 12  # it went through after all
    assert row["outcome"] == "failed" and row["error"].startswith("Timeout")
    text = text_of(record)
    assert "nothing changed" not in text and "may or may not" in text


async def test_a_throttled_write_is_tried_again(runtime, fake_slack, emulator):
    """Throttling is answered before the action runs: trying again is safe."""
    emulator.fail_next("throttle", count=1, action="CancelOTATaskByJob")
    view = await open_dialog(runtime, fake_slack, STATIC)
    await confirm(runtime, fake_slack, view)
    (row,) = await recorded(runtime, STATIC)
    assert emulator.count("CancelOTATaskByJob") == 2
    assert emulator.count("CancelOTATaskByJob", code="Throttling.User") == 1
    assert row["outcome"] == "done" and emulator.task_counts(STATIC)["CANCELED"] == 12


async def test_a_user_group_slack_does_not_answer_for_grants_nothing(runtime, fake_slack):
    """No answer at all (connection refused) fails closed too: the card still comes."""
    dead = AsyncWebClient(token=fake_slack.bot_token, base_url="http://127.0.0.1:9/api/")
    runtime.deps.admins._client = dead  # only the group lookup loses Slack
    found = await card_buttons(runtime, fake_slack, STATIC, user_id=ONCALL, user_name="olga")
    assert "job_refresh" in found and "job_cancel" not in found
    assert "job_cancel" in await card_buttons(runtime, fake_slack, STATIC, key="r2")


async def test_a_dialog_confirmed_after_the_batch_finished_cancels_nothing(
    runtime, fake_slack, emulator
):
    """The dialog was opened while the batch ran; by the time it is confirmed the batch has
    finished: no write is sent and the record says why."""
    job = "LateBatch0000000000000001"
    emulator.add_job(fixtures.make_job(job))
    view = await open_dialog(runtime, fake_slack, job)
    emulator.set_status(job, "COMPLETED")
    await confirm(runtime, fake_slack, view)
    (row,) = await recorded(runtime, job)
    assert emulator.count("CancelOTATaskByJob") == 0
    assert row["outcome"] == "failed" and json.loads(row["detail"])["finished"] is True
    record = await posted_record(fake_slack, "C123")
    assert "already finished" in text_of(record)


async def test_the_action_log_records_the_workspace(runtime, fake_slack, emulator):
    job = "TeamBatch0000000000000001"
    emulator.add_job(fixtures.make_job(job))
    await confirm(runtime, fake_slack, await open_dialog(runtime, fake_slack, job))
    (row,) = await recorded(runtime, job)
    assert row["team_id"] == "T0001" and row["outcome"] == "done"


async def test_a_dialog_slack_will_not_open_is_explained(runtime, fake_slack):
    """An expired or used trigger_id: the person is told, nothing reaches the error funnel."""
    await click(runtime, fake_slack, "job_cancel", JobRef(STATIC).to_value(), key="b1")
    await fake_slack.wait_for_calls("views.update")
    late = slack(fake_slack).click("job_cancel", JobRef(STATIC).to_value(), key="b2")
    now = fake_slack.clock
    fake_slack.clock = lambda: now() + 4  # it reached the app after its trigger_id expired
    await dispatch(runtime, late)
    (post,) = await fake_slack.wait_for_posts("b2")
    assert "did not let me open the cancel dialog" in dump(post)
