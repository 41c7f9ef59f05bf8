"""Languages end to end: a Japanese user's card, a Chinese user's failure listing, a
channel set to Japanese getting its watch posts and alerts in Japanese, and what happens
when Slack does not say a person's language (in time, or at all)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from bot.emulator import fixtures
from bot.job_ref import JobRef
from bot.slack.language import KNOWN_SECONDS, UNKNOWN_SECONDS, Languages, payload_locale
from tests.surfaces import answer, click, command, dump, handled

JOB = "LangJob000000000000000001"
CHANNEL = "C123"
JA_USER, ZH_USER, FR_USER = "U0JA00001", "U0ZH00001", "U0FR00001"


@pytest.fixture
async def runtime(emulator, fake_slack, started):
    emulator.add_job(fixtures.make_job(JOB, Name="ゲートウェイ 2.4"))
    emulator.set_tasks(
        JOB,
        {"SUCCEEDED": 100, "FAILED": 12, "QUEUED": 20},
        failure_reasons=["download timeout", "低電圧"],
    )
    directory = fake_slack.directory
    directory.add_user(JA_USER, "taro", locale="ja-JP")
    directory.add_user(ZH_USER, "wei", locale="zh-CN")
    directory.add_user(FR_USER, "claire", locale="fr-FR")
    fake_slack.add_channel(CHANNEL, "ops", members=("U123", JA_USER, ZH_USER, FR_USER))
    return await started(WATCH_POLL_SECONDS="1")


def visible(post) -> str:
    """Every text a person reads in a message (not its action IDs or button values)."""
    found: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(post.body if hasattr(post, "body") else post)
    return "\n".join(found)


async def test_a_japanese_users_card_is_in_japanese(runtime, fake_slack, emulator):
    """ja-JP in Slack: the card's status, labels, buttons and fallback are Japanese; the
    locale is read once with include_locale, after the ack."""
    response = await command(runtime, fake_slack, JOB, user_id=JA_USER)
    assert response.status == 200 and not response.body
    _, second = await fake_slack.wait_for_posts("r1", 2)
    card = visible(second)
    assert "実行中" in card and "In progress" not in card  # the spec's word for IN_PROGRESS
    assert "再読み込み" in card and "Refresh" not in card
    assert "Job type" not in card and "Counting devices" not in card
    assert JOB in card and "ゲートウェイ 2.4" in card  # IDs and data stay as they are
    assert "更新バッチ" in second.body["text"]
    (lookup,) = fake_slack.calls_to("users.info")
    assert lookup.args["user"] == JA_USER and lookup.args["include_locale"] in ("true", "1", True)

    # The second request needs no lookup, and its usage answer comes in the ack itself.
    usage = await command(runtime, fake_slack, "help", user_id=JA_USER, key="r2")
    assert json.loads(usage.body)["text"] == "/otajob の使い方"
    assert len(fake_slack.calls_to("users.info")) == 1


async def test_a_chinese_users_failure_listing_is_in_chinese(runtime, fake_slack, emulator):
    """zh-CN in Slack: the failed-devices listing, its buttons and its CSV header are
    Simplified Chinese; the API's reasons are shown as they are."""
    await command(runtime, fake_slack, f"{JOB} failed", user_id=ZH_USER)
    (post,) = await fake_slack.wait_for_posts("r1")
    listing = visible(post)
    assert "失败" in listing and "failed" not in listing
    assert "download timeout" in listing and "低電圧" in listing
    assert "By reason" not in listing and "Previous" not in listing
    buttons = [
        element
        for block in post.body["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    csv_button = next(b for b in buttons if b["action_id"] == "failed_csv")
    assert "CSV" in csv_button["text"]["text"] and "all" not in csv_button["text"]["text"]

    # The CSV shared in the channel speaks the channel's language (here the workspace's,
    # English); sent by DM when the channel will not take it, the person's.
    await click(runtime, fake_slack, "failed_csv", csv_button["value"], user_id=ZH_USER)
    await handled()
    fake_slack.fail_next("files.completeUploadExternal", "channel_not_found")
    await click(runtime, fake_slack, "failed_csv", csv_button["value"], user_id=ZH_USER, key="b2")
    await handled()
    in_channel, by_dm = fake_slack.files
    assert in_channel["channel_id"] == CHANNEL and by_dm["channel_id"].startswith("D")
    assert csv_header(in_channel)[0] == "DeviceName"
    assert csv_header(by_dm)[0] == "设备名称 (DeviceName)"
    assert csv_header(by_dm)[-1] == "失败原因 (TaskDesc)"
    assert "失败" in by_dm["title"] and "Failed devices" in in_channel["title"]


def csv_header(upload: dict) -> list[str]:
    return next(csv.reader(io.StringIO(upload["content"].decode("utf-8-sig"))))


async def test_a_channel_set_to_japanese_gets_japanese_watch_posts(runtime, fake_slack, emulator):
    """`/otajob language ja`: the watched card, its thread replies, the final broadcast and
    the alert are Japanese for everyone there, whoever set the watch up; `watches` says so."""
    said = await answer(runtime, fake_slack, "language ja", key="lang")
    assert "日本語" in json.dumps(said, ensure_ascii=False)
    assert await runtime.store.channel_language(CHANNEL) == "ja"

    emulator.set_tasks(JOB, {"SUCCEEDED": 100, "QUEUED": 500})
    # alice (en-US) sets the watch up: her own answer is English, the channel's posts are not.
    reply = await answer(runtime, fake_slack, f"watch {JOB} alert failed>5%", key="w")
    assert "Watching" in reply["text"]
    (card,) = await fake_slack.wait_for_messages(CHANNEL)
    text = json.dumps(card, ensure_ascii=False)
    assert ("実行中" in text and "このチャンネルで監視中" in text) or "監視" in text
    assert "Watched here" not in text and "In progress" not in text

    emulator.set_tasks(JOB, {"SUCCEEDED": 100, "FAILED": 40, "QUEUED": 460})  # 28.6 %
    await runtime.deps.watcher.poll(JOB, None)
    (alert,) = fake_slack.thread(CHANNEL, card["ts"])[1:]
    alert_text = json.dumps(alert, ensure_ascii=False)
    assert "アラート" in alert_text and "Failure alert" not in alert_text
    assert alert["reply_broadcast"] is True

    emulator.set_status(JOB, "COMPLETED")
    await runtime.deps.watcher.poll(JOB, None)
    final = fake_slack.thread(CHANNEL, card["ts"])[-1]
    final_text = json.dumps(final, ensure_ascii=False)
    assert "完了" in final_text and "Completed" not in final_text

    listing = await answer(runtime, fake_slack, "watches", key="list")
    assert "日本語" in json.dumps(listing, ensure_ascii=False)


async def test_language_default_returns_the_channel_to_the_workspace_language(runtime, fake_slack):
    """`language default` forgets the channel's choice; bad words are explained."""
    await answer(runtime, fake_slack, "language zh", key="a")
    assert await runtime.store.channel_language(CHANNEL) == "zh_CN"
    said = await answer(runtime, fake_slack, "language default", key="b")
    assert await runtime.store.channel_language(CHANNEL) is None
    assert "English" in json.dumps(said)
    refused = await answer(runtime, fake_slack, "language klingon", key="c")
    assert "klingon" in refused["text"] and "/otajob language" in dump(refused)


async def test_full_width_input_from_an_ime_is_read_as_ascii(runtime, fake_slack, emulator):
    """Full-width spaces, digits and signs typed with a Japanese IME mean what they say."""
    text = f"watch\u3000{JOB}\u3000alert failed\uff1e\uff15\uff05"
    await answer(runtime, fake_slack, text, user_id=JA_USER)
    (watch,) = await runtime.store.live_watches()
    assert watch.alert_rule == "failed>5%"


async def test_a_failed_locale_lookup_falls_back_to_the_channel_language(
    runtime, fake_slack, emulator
):
    """users.info refused (a missing users:read scope, say): the reply is in the channel's
    language; a locale otajob does not speak (fr-FR) falls back the same way."""
    await runtime.store.set_channel_language(CHANNEL, "zh_CN", set_by="U1", now=0)
    fake_slack.fail_next("users.info", "missing_scope")
    said = await answer(runtime, fake_slack, "help", user_id=JA_USER)
    assert "使用" in json.dumps(said, ensure_ascii=False)  # Chinese usage, not Japanese
    said = await answer(runtime, fake_slack, "help", user_id=FR_USER, key="r2")
    assert "使用" in json.dumps(said, ensure_ascii=False)


async def test_a_slow_locale_lookup_never_delays_the_ack(runtime, fake_slack, emulator):
    """The ack goes back while users.info is still unanswered; the reply then comes in
    the channel's language once the lookup's time is up, and nothing waits for Slack."""
    runtime.deps.languages._lookup_seconds = 0.2  # the wait a reply allows the lookup
    gate = fake_slack.hold("users.info")
    try:
        response = await command(runtime, fake_slack, JOB, user_id=JA_USER)
        assert response.status == 200 and not response.body  # acked, lookup still held
        # The card and its counts come while users.info is still unanswered.
        posts = await fake_slack.wait_for_posts("r1", 2)
        assert "In progress" in visible(posts[-1])  # the workspace's English meanwhile
        assert fake_slack.calls_to("users.info") == []
    finally:
        gate.set()
    await handled()
    # The answer that came late is kept: the next reply is Japanese, with no new lookup.
    await command(runtime, fake_slack, JOB, user_id=JA_USER, key="r2")
    await handled()
    posts = fake_slack.posts_to("r2")
    assert "実行中" in visible(posts[-1])
    assert len(fake_slack.calls_to("users.info")) == 1


async def test_a_person_s_language_is_kept_an_hour_and_a_refusal_five_minutes(runtime, fake_slack):
    """One users.info per person per hour; a refused lookup is asked again after five
    minutes, not at every request (an injected clock, no waiting)."""
    now = [0.0]
    languages = Languages(
        "en", runtime.app.client, runtime.deps.watcher.channel_language, clock=lambda: now[0]
    )
    fake_slack.fail_next("users.info", "missing_scope")
    assert await languages.of_person(JA_USER, CHANNEL) == "en"
    assert await languages.of_person(JA_USER, CHANNEL) == "en"  # kept: not asked again
    assert len(fake_slack.calls_to("users.info")) == 1
    now[0] += UNKNOWN_SECONDS + 1
    assert await languages.of_person(JA_USER, CHANNEL) == "ja"
    assert languages.known(JA_USER) == "ja"
    now[0] += KNOWN_SECONDS - 1
    assert await languages.of_person(JA_USER, CHANNEL) == "ja"
    assert len(fake_slack.calls_to("users.info")) == 2
    now[0] += 2
    assert languages.known(JA_USER) is None  # an hour on: read again at the next request


async def test_the_cancel_dialog_opens_at_once_then_speaks_the_admins_language(
    emulator, fake_slack, started
):
    """The dialog opens before the admin's language is looked up (its trigger lasts three
    seconds), in the workspace's; what it says once the batch is read, its buttons and
    the refusal a submission may get are in the admin's language."""
    emulator.add_job(fixtures.make_job(JOB))
    fake_slack.directory.add_user(JA_USER, "taro", locale="ja-JP")
    runtime = await started(OTAJOB_ACTIONS="cancel", OTAJOB_ADMINS=JA_USER)
    card = fixtures.make_job(JOB)  # the card's Cancel button carries this JobRef

    await click(
        runtime, fake_slack, "job_cancel", JobRef(card["JobId"]).to_value(), user_id=JA_USER
    )
    (opened,) = await fake_slack.wait_for_calls("views.open")
    assert opened.args["view"]["title"]["text"] != ""  # in the workspace's language
    (update,) = await fake_slack.wait_for_calls("views.update")
    view = fake_slack.views[update.args["view_id"]]
    words = json.dumps(view, ensure_ascii=False)
    assert "キャンセル" in view["submit"]["text"] and "Cancel rollout" not in words
    assert json.loads(view["private_metadata"])["lang"] == "ja"


async def test_a_locale_on_the_payload_needs_no_lookup(runtime, fake_slack):
    """Where Slack puts the person's locale on the request itself, it is used as it is."""
    languages = runtime.deps.languages
    body = {"user": {"id": ZH_USER, "locale": "zh-CN"}}
    assert payload_locale(body) == "zh-CN" and payload_locale({"locale": "ja-JP"}) == "ja-JP"
    assert await languages.of_person(ZH_USER, CHANNEL, body) == "zh_CN"
    assert languages.known(ZH_USER) == "zh_CN"
    assert fake_slack.calls_to("users.info") == []
