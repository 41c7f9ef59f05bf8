"""On-call triage end to end: device counts on the card, failed devices by reason with
paging and CSV, and the lookups around a batch (a device's, a firmware's batches)."""

from __future__ import annotations

import csv
import io

from bot.emulator import fixtures
from tests.helpers import start_runtime
from tests.surfaces import answer, buttons, click, command, dump

JOB = fixtures.EXAMPLE_JOB_ID_UNMASKED
HOSTILE = fixtures.HOSTILE_TEXT


async def test_card_first_then_device_counts_replace_it(runtime, fake_slack, emulator):
    """The card does not wait for the seven count calls; they replace it when in."""
    emulator.set_tasks(JOB, {"SUCCEEDED": 60, "FAILED": 6, "QUEUED": 30, "IN_PROGRESS": 4})
    await command(runtime, fake_slack, JOB)
    first, second = await fake_slack.wait_for_posts("r1", 2)
    assert "Counting devices" in dump(first) and "replace_original" not in first.body
    assert second.body["replace_original"] is True
    text = dump(second)
    assert "60 succeeded" in text and "6 failed" in text and "30 queued" in text
    # 6 failed of the 66 with a result; 66 of 100 done (the others are queued or updating).
    assert "9.1% of the 66 with a result" in text and "66% done (66 of 100)" in text
    assert emulator.count("QueryOTAJob") == 1 and emulator.count("ListOTATaskByJob") == 7


async def test_counts_that_cannot_be_read_say_why(runtime, fake_slack, emulator):
    """A refused count shows its Code and RequestId; the card itself stays."""
    await command(runtime, fake_slack, JOB)
    await fake_slack.wait_for_posts("r1", 1)
    emulator.fail_next("business", count=7, action="ListOTATaskByJob")
    await click(runtime, fake_slack, "job_refresh", buttons_of_card(fake_slack)["job_refresh"])
    posts = await fake_slack.wait_for_posts("b1", 2)
    assert "could not be read" in dump(posts[-1]) and "RequestId" in dump(posts[-1])


def buttons_of_card(fake_slack, key="r1") -> dict[str, str]:
    post = fake_slack.posts_to(key)[-1]
    return {k: v["value"] for k, v in buttons(post.body["blocks"]).items()}


async def test_failed_devices_grouped_by_reason_most_common_first(runtime, fake_slack, emulator):
    """37 devices, 3 reasons (one hostile): counts per reason, escaped, no mention made."""
    reasons = ["download timeout", HOSTILE, "low battery"]
    emulator.set_tasks(JOB, {"SUCCEEDED": 10, "FAILED": 37}, failure_reasons=reasons)
    await command(runtime, fake_slack, f"{JOB} failed")
    (post,) = await fake_slack.wait_for_posts("r1")
    text = dump(post)
    assert "37 devices failed* with 3 reasons" in text
    by_reason = next(
        b for b in post.body["blocks"] if "By reason" in b.get("text", {}).get("text", "")
    )
    lines = by_reason["text"]["text"].splitlines()[1:]
    assert lines[0].startswith("`13`  download timeout")
    assert [line.split("`")[1] for line in lines] == ["13", "12", "12"]
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text and "<@" not in text
    assert "Devices 1–10 of 37" in text and "page 1 of 4" in text
    assert set(buttons(post.body["blocks"])) == {"failed_page_next", "failed_csv"}


async def test_paging_replaces_the_listing_without_reading_it_again(runtime, fake_slack, emulator):
    emulator.set_tasks(JOB, {"FAILED": 45})
    await command(runtime, fake_slack, f"{JOB} failed")
    (post,) = await fake_slack.wait_for_posts("r1")
    calls = emulator.count("ListOTATaskByJob")
    value = buttons(post.body["blocks"])["failed_page_next"]["value"]
    await click(runtime, fake_slack, "failed_page_next", value)
    (page2,) = await fake_slack.wait_for_posts("b1")
    assert page2.error is None and page2.body["replace_original"] is True
    assert {"failed_page_prev", "failed_page_next"} <= set(buttons(page2.body["blocks"]))
    assert "Devices 11–20 of 45" in dump(page2) and "page 2 of 5" in dump(page2)
    assert emulator.count("ListOTATaskByJob") == calls  # the listing was kept for paging
    names = {f"dev-{i:06d}" for i in range(45)}
    shown = [n for n in names if n in dump(page2)]
    assert len(shown) == 10


async def test_csv_of_all_failed_devices_goes_to_the_conversation(runtime, fake_slack, emulator):
    """Every failed device in a CSV file; a reason that a spreadsheet would run as a formula
    is neutralised; the comment names the asker without mentioning them."""
    emulator.set_tasks(JOB, {"FAILED": 45}, failure_reasons=['=HYPERLINK("http://x")', "ok"])
    emulator.add_task(JOB, device_name="名前-device", status="FAILED", desc="電源 lost")
    await command(runtime, fake_slack, f"{JOB} failed")
    (post,) = await fake_slack.wait_for_posts("r1")
    await click(
        runtime, fake_slack, "failed_csv", buttons(post.body["blocks"])["failed_csv"]["value"]
    )
    (note,) = await fake_slack.wait_for_posts("b1")
    assert "in this conversation" in dump(note)
    (upload,) = fake_slack.files
    assert upload["channel_id"] == "C123" and "alice" in upload["initial_comment"]
    assert "<@" not in upload["initial_comment"]
    content = upload["content"].decode("utf-8")
    assert content.startswith("\ufeffDeviceName,")
    rows = list(csv.DictReader(io.StringIO(content.lstrip("\ufeff"))))
    assert len(rows) == 46
    assert {r["TaskDesc"] for r in rows} == {'\'=HYPERLINK("http://x")', "ok", "電源 lost"}
    assert any(r["DeviceName"] == "名前-device" for r in rows)


async def test_csv_goes_by_dm_where_the_app_cannot_post(runtime, fake_slack, emulator):
    emulator.set_tasks(JOB, {"FAILED": 25})
    fake_slack.add_channel("G999", is_private=True, is_member=False)
    await command(runtime, fake_slack, f"{JOB} failed", channel_id="G999")
    (post,) = await fake_slack.wait_for_posts("r1")
    value = buttons(post.body["blocks"])["failed_csv"]["value"]
    await click(runtime, fake_slack, "failed_csv", value, channel_id="G999")
    (note,) = await fake_slack.wait_for_posts("b1")
    assert "your DM" in dump(note)
    (upload,) = fake_slack.files
    assert upload["channel_id"] == "DU123"


async def test_a_large_failure_listing_reads_every_page_once(runtime, fake_slack, emulator):
    emulator.set_tasks(JOB, {"FAILED": 2_450, "SUCCEEDED": 50_000})
    await command(runtime, fake_slack, f"{JOB} failed")
    posts = await fake_slack.wait_for_posts("r1", 1, timeout=30)
    final = (
        posts[-1]
        if "Reading" not in dump(posts[-1])
        else (await fake_slack.wait_for_posts("r1", 2, timeout=30))[-1]
    )
    assert "2,450 devices failed" in dump(final)
    failed_calls = [c for c in emulator.calls if c.params.get("TaskStatus") == "FAILED"]
    assert len(failed_calls) == 25
    assert sorted(int(c.params["CurrentPage"]) for c in failed_calls) == list(range(1, 26))


async def test_a_listing_over_the_limit_says_it_is_cut(emulator, fake_slack):
    runtime = await start_runtime(emulator, fake_slack, OTAJOB_FAILED_MAX="300")
    try:
        emulator.set_tasks(JOB, {"FAILED": 1_000})
        await command(runtime, fake_slack, f"{JOB} failed")
        posts = await fake_slack.wait_for_posts("r1", 1)
        assert "1,000 devices failed" in dump(posts[-1])
        assert "the first 300 are read" in dump(posts[-1])
        assert len([c for c in emulator.calls if c.params.get("TaskStatus") == "FAILED"]) == 3
    finally:
        await runtime.aclose()


async def test_no_failures_says_so(runtime, fake_slack, emulator):
    emulator.set_tasks(JOB, {"SUCCEEDED": 5})
    await command(runtime, fake_slack, f"failed {JOB}")
    (post,) = await fake_slack.wait_for_posts("r1")
    assert "No device has failed" in dump(post)


async def test_failed_devices_of_an_unknown_batch_show_code_and_request_id(runtime, fake_slack):
    await command(runtime, fake_slack, "NoSuchJob00000000000000001 failed")
    (post,) = await fake_slack.wait_for_posts("r1")
    assert "iot.ota.JobNotFound" in dump(post) and "RequestId" in dump(post)


async def test_failed_devices_button_on_the_card(runtime, fake_slack, emulator):
    emulator.set_tasks(JOB, {"FAILED": 3})
    await command(runtime, fake_slack, JOB)
    await fake_slack.wait_for_posts("r1", 2)
    await click(runtime, fake_slack, "job_failed", buttons_of_card(fake_slack)["job_failed"])
    (post,) = await fake_slack.wait_for_posts("b1")
    assert post.body["replace_original"] is False and "3 devices failed" in dump(post)


async def test_firmware_lookup_lists_its_batches_newest_first(runtime, fake_slack, emulator):
    firmware = "FwLookup000000000000000100"
    for job_id, created in (
        ("OldBatch00000000000000001", "2024-01-01T00:00:00.000Z"),
        ("NewBatch00000000000000001", "2024-06-01T00:00:00.000Z"),
    ):
        emulator.add_job(fixtures.make_job(job_id, UtcCreate=created, FirmwareId=firmware))
    await command(runtime, fake_slack, f"firmware {firmware}")
    (post,) = await fake_slack.wait_for_posts("r1")
    text = dump(post)
    assert text.index("NewBatch00000000000000001") < text.index("OldBatch00000000000000001")
    opens = [b["accessory"] for b in post.body["blocks"] if b.get("accessory")]
    assert len(opens) == 2 and all(o["action_id"] == "job_open" for o in opens)
    await click(runtime, fake_slack, "job_open", opens[0]["value"])
    (card,) = await fake_slack.wait_for_posts("b1")
    assert card.body["replace_original"] is False and "NewBatch00000000000000001" in dump(card)
    assert "% done" in dump(card)  # a new message from a button waits for its counts


async def test_device_lookup_asks_each_of_the_products_packages(runtime, fake_slack, emulator):
    emulator.add_job(
        fixtures.make_job("DevBatchA0000000000000001", FirmwareId="FwA00000000000000000000100")
    )
    emulator.add_job(
        fixtures.make_job("DevBatchB0000000000000001", FirmwareId="FwB00000000000000000000100")
    )
    await command(runtime, fake_slack, "device a1Gw7Tk9Lmp dev-000001")
    (post,) = await fake_slack.wait_for_posts("r1")
    text = dump(post)
    assert "DevBatchA0000000000000001" in text and "DevBatchB0000000000000001" in text
    assert emulator.count("ListOTAFirmware") == 1
    assert emulator.count("ListOTAJobByDevice") >= 2
    assert "Add `firmware &lt;FirmwareId&gt;`" in text


async def test_device_lookup_with_a_firmware_asks_once(runtime, fake_slack, emulator):
    emulator.add_job(
        fixtures.make_job("DevBatchA0000000000000001", FirmwareId="FwA00000000000000000000100")
    )
    await command(
        runtime, fake_slack, "device a1Gw7Tk9Lmp dev-000001 firmware FwA00000000000000000000100"
    )
    (post,) = await fake_slack.wait_for_posts("r1")
    assert "DevBatchA0000000000000001" in dump(post)
    assert emulator.count("ListOTAFirmware") == 0 and emulator.count("ListOTAJobByDevice") == 1


async def test_lookup_input_mistakes_are_answered_at_once(runtime, fake_slack):
    said = (await answer(runtime, fake_slack, "device a1Gw7Tk9Lmp"))["text"]
    assert "needs a ProductKey and a DeviceName" in said
    said = (await answer(runtime, fake_slack, "firmware Fw****0100", key="r2"))["text"]
    assert "masked" in said or "`*`" in said


async def test_forged_page_buttons_are_refused(runtime, fake_slack):
    await click(runtime, fake_slack, "failed_page", '{"job":"x","page":2}')
    (post,) = await fake_slack.wait_for_posts("b1")
    assert "cannot read" in dump(post)
