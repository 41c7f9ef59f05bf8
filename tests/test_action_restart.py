"""SIGKILL while Alibaba Cloud carries out a write action: the action was recorded before
its first write, and after the restart it is reported where it was taken as interrupted,
possibly partly done: never lost."""

from __future__ import annotations

import json
import signal

import httpx
import pytest

from bot.db import Store
from bot.emulator import fixtures
from fakes import Inbound, as_http, checkboxes
from tests.helpers import SIGNING_SECRET, app_env, free_port, start_app, stop, wait_until

JOB = "KilledCancel0000000000001"
CHANNEL = "C123"
ADMIN = "U123"


@pytest.mark.slow
async def test_a_cancel_killed_mid_write_is_reported_after_the_restart(
    emulator, fake_slack, tmp_path
) -> None:
    emulator.add_job(fixtures.make_job(JOB))
    emulator.set_tasks(JOB, {"QUEUED": 5, "SUCCEEDED": 3})
    # The cancel runs at once on the gateway; its answer is held back for 30 s.
    emulator.fail_next("slow", action="CancelOTATaskByJob")
    port = free_port()
    env = app_env(emulator, fake_slack, tmp_path, "60", port)
    env.update(OTAJOB_ACTIONS="cancel", OTAJOB_ADMINS=ADMIN)
    process = await start_app(env, port)
    try:
        private = json.dumps({"job": JOB, "instance": None, "channel": CHANNEL})
        request = Inbound(fake_slack, SIGNING_SECRET).submit(
            "cancel_confirm",
            private_metadata=private,
            values={"cancel_in_progress": {"in_progress": checkboxes()}},
        )
        body, headers = as_http(request)
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                f"http://127.0.0.1:{port}/slack/events", content=body, headers=headers
            )
        assert answer.status_code == 200
        # Carried out on the gateway; its answer is on its way (held back).
        await wait_until(lambda: emulator.task_counts(JOB)["CANCELED"] == 5, timeout=15)
        process.send_signal(signal.SIGKILL)
        await process.wait()
        assert fake_slack.messages(CHANNEL) == []  # nothing was said before the kill

        store = await Store.open(env["DATABASE_URL"])
        try:
            (row,) = await store.actions_for(JOB)
        finally:
            await store.close()
        assert row["outcome"] == "started" and row["channel_id"] == CHANNEL

        process = await start_app(env, port)
        (record,) = await fake_slack.wait_for_messages(CHANNEL, timeout=15)
        assert "when otajob stopped" in record["text"] and "may have partly" in record["text"]
    finally:
        await stop(process)
    store = await Store.open(env["DATABASE_URL"])
    try:
        (row,) = await store.actions_for(JOB)
    finally:
        await store.close()
    assert row["outcome"] == "interrupted"
