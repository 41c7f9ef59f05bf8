"""The issue's "done when", as one story: from `/otajob <JobId>` to "these 37 devices
failed with these 3 reasons" to a CSV of them, without leaving Slack, and an admin
stopping the rollout with a confirmation, recorded in the batch's thread. Nothing makes
the app mention anyone but whom a person configured."""

from __future__ import annotations

import csv
import io
import re

from bot.emulator import fixtures
from tests.helpers import start_runtime, texts_in
from tests.surfaces import buttons, click, command, dump, submit

JOB = "OnCallBatch00000000000001"
REASONS = ["download timeout", fixtures.HOSTILE_TEXT, "verify failed: checksum mismatch"]
MENTION = re.compile(
    r"<@[A-Z0-9]+(?:\|[^>]*)?>|<!subteam\^[A-Z0-9]+(?:\|[^>]*)?>|<!(?:here|channel|everyone)"
)


async def test_from_the_card_to_a_csv_to_a_recorded_cancel(emulator, fake_slack):
    emulator.add_job(fixtures.make_job(JOB, Name="<!channel> gw-2.4.1"))
    emulator.set_tasks(
        JOB,
        {"SUCCEEDED": 400, "FAILED": 37, "QUEUED": 500, "NOTIFIED": 20, "IN_PROGRESS": 43},
        failure_reasons=REASONS,
    )
    runtime = await start_runtime(
        emulator, fake_slack, OTAJOB_ACTIONS="cancel,reupgrade", OTAJOB_ADMINS="U123"
    )
    try:
        # The channel watches the batch, alerting the on-call person above 5 %.
        fake_slack.directory.add_user("U0ONCALL1", "oc")
        await command(runtime, fake_slack, f"watch {JOB} alert failed>5% notify @oc")
        await fake_slack.wait_for_posts("r1")
        await runtime.deps.watcher.poll(JOB, None)  # 37 of 437 = 8.5 %: one alert

        # 1. The card with its device results (read moments ago for the alert: one message).
        await command(runtime, fake_slack, JOB, key="card")
        card = (await fake_slack.wait_for_posts("card", 1))[-1]
        if "Counting devices" in dump(card):
            card = (await fake_slack.wait_for_posts("card", 2))[-1]
        assert "37 failed" in dump(card) and "8.5% of the 437 with a result" in dump(card)

        # 2. Failed devices: 37, by 3 reasons, most common first.
        await click(
            runtime,
            fake_slack,
            "job_failed",
            buttons(card.body["blocks"])["job_failed"]["value"],
            key="failed",
        )
        (listing,) = await fake_slack.wait_for_posts("failed")
        assert "37 devices failed* with 3 reasons" in dump(listing)

        # 3. The CSV of all 37.
        value = buttons(listing.body["blocks"])["failed_csv"]["value"]
        await click(runtime, fake_slack, "failed_csv", value, key="csv")
        await fake_slack.wait_for_posts("csv")
        (upload,) = fake_slack.files
        rows = list(csv.DictReader(io.StringIO(upload["content"].decode("utf-8-sig"))))
        assert len(rows) == 37 and {r["TaskDesc"] for r in rows} == set(REASONS)

        # 4. The admin cancels, confirming in the dialog; the record lands in the thread.
        await click(
            runtime,
            fake_slack,
            "job_cancel",
            buttons(card.body["blocks"])["job_cancel"]["value"],
            key="cancel",
        )
        (update,) = await fake_slack.wait_for_calls("views.update")
        view = fake_slack.views[update.args["view_id"]]
        assert "500 queued, 20 notified" in dump(view)
        await submit(runtime, fake_slack, "cancel_confirm", view=view, values={})
        (card_msg,) = fake_slack.top_level("C123")
        await fake_slack.wait_for_messages("C123", 3)  # the card, the alert, the record
        record = next(
            m for m in fake_slack.thread("C123", card_msg["ts"]) if "canceled" in m["text"]
        )
        assert "alice" in record["text"]
        counts = emulator.task_counts(JOB)
        assert counts["QUEUED"] == counts["NOTIFIED"] == 0 and counts["IN_PROGRESS"] == 43
        (action,) = await runtime.store.actions_for(JOB)
        assert action["user_id"] == "U123" and action["outcome"] == "done" and action["request_ids"]

        # Only the configured person was ever mentioned, anywhere Slack would parse it.
        written = fake_slack.messages("C123") + [p.body for p in fake_slack.posts]
        written += list(fake_slack.views.values())
        found = {
            m for item in written for text in parsed_texts(item) for m in MENTION.findall(text)
        }
        assert found == {"<@U0ONCALL1>"}
    finally:
        await runtime.aclose()


def parsed_texts(node) -> list[str]:
    """The top-level text and every mrkdwn text: what Slack parses for mentions
    (plain_text is shown as typed)."""
    found = [node["text"]] if isinstance(node, dict) and isinstance(node.get("text"), str) else []
    return found + texts_in(node, mrkdwn_only=True)
