"""`make run` with nothing set up: the app in local mode, driven through the page's API.

One ``python app.py`` process with no settings (as a newcomer starts it), reached only over
HTTP: what the page sends (``/local/api/*``) becomes signed Slack requests into the
unchanged app, and the app's answers land in the fake Slack the page reads. The browser
test (test_local_browser.py) clicks through the same flows in Chromium.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from localchat.mode import alibaba_configured, local_settings, wanted
from tests.local_app import LocalApp, buttons, texts

JOB = "HvKuBpuk3rdk6E92CPa1b20200"  # the demo data's batch (the spec's example, unmasked)
FIRMWARE = "firmware2"  # its FirmwareName
ROLLOUTS = "C0ROLLOUT1"
ME = "U0YOU00001"

# Each test leaves the shared app as it found it (a batch it completes runs again after),
# so they pass in any order and on any process (each process starts its own app).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> LocalApp:
    app = LocalApp(tmp_path_factory.mktemp("home"))
    yield app
    app.stop()


def ephemeral_with(text: str, channel: str = ROLLOUTS):
    def found(state: dict) -> dict | None:
        for e in reversed(state["ephemerals"]):
            if e["channel"] == channel and text in (e["text"] + texts(e["blocks"])):
                return e
        return None

    return found


def message_with(text: str, channel: str = ROLLOUTS, *, where=lambda m: True):
    def found(state: dict) -> dict | None:
        for m in reversed(state["messages"].get(channel, [])):
            if where(m) and text in (m["text"] + texts(m.get("blocks") or [])):
                return m
        return None

    return found


# ---- which mode ---------------------------------------------------------------------------


def test_local_mode_only_without_any_slack_setting():
    assert wanted({})
    assert wanted({"SLACK_BOT_TOKEN": "", "PORT": "3000"})
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        assert not wanted({name: "x"}), name


def test_local_settings_choose_demo_data_unless_alibaba_is_configured(tmp_path: Path):
    common = {
        "person_id": ME,
        "database_path": tmp_path / "db",
        "bot_token": "xoxb-local-1",
        "signing_secret": "s",
    }
    settings = local_settings({"PORT": "3456"}, **common)
    assert settings.otajob_demo
    assert settings.slack_api_url == "http://127.0.0.1:3456/api/"
    assert settings.database_url == f"sqlite:///{tmp_path / 'db'}"
    assert settings.actions == {"cancel", "reupgrade"} and settings.otajob_admins == ME
    real = local_settings({"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI5t"}, **common)
    assert not real.otajob_demo
    assert real.actions == frozenset()  # no write action on a real account unless asked
    # What the person set wins over the local defaults.
    mine = local_settings({"WATCH_POLL_SECONDS": "30", "OTAJOB_ACTIONS": ""}, **common)
    assert mine.watch_poll_seconds == 30 and mine.actions == frozenset()


def test_alibaba_profile_file_counts_as_configured(tmp_path: Path):
    assert not alibaba_configured({}, home=tmp_path)
    (tmp_path / ".alibabacloud").mkdir()
    (tmp_path / ".alibabacloud" / "credentials").write_text("[default]\n")
    assert alibaba_configured({}, home=tmp_path)


# ---- the running app --------------------------------------------------------------------


def test_prints_its_address_and_serves_the_page_on_loopback(local: LocalApp):
    assert local.url == f"http://127.0.0.1:{local.port}/"
    page = local.http.get("/")
    assert page.status_code == 200 and "<script" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert local.http.get("/static/app.js").status_code == 200
    assert local.http.get("/healthz").json()["demo"] is True
    state = local.state()
    names = {c["name"] for c in state["channels"]}
    assert {"ota-rollouts", "firmware-team", "otajob"} <= names
    assert state["demo"] is True
    assert JOB in state["messages"][ROLLOUTS][0]["text"]  # the welcome names a JobId to try


def test_only_this_page_may_drive_the_surface(local: LocalApp):
    """It signs as Slack: another site's page (a cross-site POST) or a rebound DNS name
    must not reach it."""
    say = {"channel": ROLLOUTS, "text": f"/otajob {JOB}"}
    elsewhere = local.http.post(
        "/local/api/say", json=say, headers={"Origin": "https://attacker.example"}
    )
    assert elsewhere.status_code == 403
    form = local.http.post(
        "/local/api/say", content=json.dumps(say).encode(), headers={"Content-Type": "text/plain"}
    )
    assert form.status_code == 415
    rebound = local.http.get("/local/api/state", headers={"Host": f"evil.example:{local.port}"})
    assert rebound.status_code == 421
    mine = local.http.post(
        "/local/api/say",
        json={"channel": ROLLOUTS, "text": "hello"},
        headers={"Origin": local.url.rstrip("/")},
    )
    assert mine.json() == {"ok": True}


def test_card_refresh_and_share(local: LocalApp):
    local.say(f"/otajob {JOB}")
    card = local.wait_for("the card", ephemeral_with(FIRMWARE))
    assert "[demo]" in card["text"]  # nothing hides that it is demo data
    found = buttons(card["blocks"])
    assert {"job_refresh", "job_share", "job_watch"} <= set(found)

    # Two more devices fail; Refresh reads the batch again and replaces the card in place.
    before = sum(1 for e in local.state()["ephemerals"] if FIRMWARE in e["text"])
    local.post("/local/api/emulator/fail", {"job_id": JOB, "count": 2, "reason": "no power"})
    local.post(
        "/local/api/click", click("ephemeral", found["job_refresh"], ephemeral_id=card["id"])
    )

    def refreshed(state: dict) -> dict | None:
        same = next(e for e in state["ephemerals"] if e["id"] == card["id"])
        return same if same["blocks"] != card["blocks"] else None

    local.wait_for("the refreshed card", refreshed)
    after = sum(1 for e in local.state()["ephemerals"] if FIRMWARE in e["text"])
    assert after == before  # replaced in place, not a second card

    share = found["job_share"]
    local.post("/local/api/click", click("ephemeral", share, ephemeral_id=card["id"]))
    shared = local.wait_for("the shared card", message_with("Shared by"))
    assert FIRMWARE in shared["text"] + texts(shared["blocks"])
    assert "<@" not in texts(shared["blocks"])  # the sharer is named, not mentioned


def test_bad_input_is_answered_in_the_acknowledgement(local: LocalApp):
    local.say("/otajob wahVIzGkCMuAUE2gDERM02****", channel="C0FIRMWARE")
    masked = local.wait_for("the masked-ID answer", ephemeral_with("masked", "C0FIRMWARE"))
    assert masked["channel"] == "C0FIRMWARE"
    local.say("/deploy now", channel="C0FIRMWARE")
    local.wait_for("Slack's answer", ephemeral_with("/deploy is not a valid command", "C0FIRMWARE"))


def test_watch_to_completion_with_thread_reply_and_broadcast(local: LocalApp):
    local.say(f"/otajob watch {JOB}", channel="C0FIRMWARE")
    card = local.wait_for("the watched card", message_with(FIRMWARE, "C0FIRMWARE"))
    said = local.wait_for("the watch's answer", ephemeral_with("Watching OTA batch", "C0FIRMWARE"))
    assert said["text"] == f"[demo] Watching OTA batch {JOB}"  # the notification's words
    answer = local.post("/local/api/emulator/status", {"job_id": JOB, "status": "COMPLETED"})
    assert answer["ok"], answer

    def is_reply(m: dict) -> bool:
        return m.get("thread_ts") == card["ts"] and m["ts"] != card["ts"]

    reply = local.wait_for(
        "the completion reply",
        message_with("ompleted", "C0FIRMWARE", where=lambda m: is_reply(m) and m.get("subtype")),
    )
    assert reply["subtype"] == "thread_broadcast"  # the final result goes to the channel too
    local.post("/local/api/emulator/status", {"job_id": JOB, "status": "IN_PROGRESS"})


def test_failed_devices_csv_downloads(local: LocalApp):
    # Enough failures for more than one page: the listing then offers the CSV of them all.
    local.post("/local/api/emulator/fail", {"job_id": JOB, "count": 40, "reason": "disk full"})
    local.say(f"/otajob {JOB} failed", channel="C0FIRMWARE")
    with_reason = ephemeral_with("disk full", "C0FIRMWARE")

    def listing_with_csv(state: dict) -> dict | None:
        listing = with_reason(state)
        return listing if listing and "failed_csv" in buttons(listing["blocks"]) else None

    listing = local.wait_for("the failure listing", listing_with_csv)
    csv_button = buttons(listing["blocks"])["failed_csv"]
    local.post(
        "/local/api/click",
        click("ephemeral", csv_button, channel="C0FIRMWARE", ephemeral_id=listing["id"]),
    )
    shared = local.wait_for("the CSV file", lambda s: s["files"][-1] if s["files"] else None)
    download = local.http.get(shared["url"])
    assert download.headers["content-disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(download.text)))
    assert sum(1 for row in rows if "disk full" in row) == 40


def test_mention_answers_in_a_thread_and_home_tab_opens(local: LocalApp):
    local.say(f"@otajob {JOB}", channel="C0FIRMWARE")
    mine = local.wait_for(
        "my message", message_with(JOB, "C0FIRMWARE", where=lambda m: m.get("user") == ME)
    )
    local.wait_for(
        "the card in my thread",
        message_with(FIRMWARE, "C0FIRMWARE", where=lambda m: m.get("thread_ts") == mine["ts"]),
    )
    local.post("/local/api/home", {})
    home = local.wait_for("the Home tab", lambda s: s["home"])
    assert home["type"] == "home"


def test_cancel_dialog_opens_and_closes(local: LocalApp):
    local.say(f"/otajob {JOB}", channel="C0ROLLOUT1")
    card = local.wait_for("a card", ephemeral_with(FIRMWARE))
    # The batch runs again, but an earlier read (COMPLETED) may still be in the short
    # cache: Refresh reads it afresh, and the running batch offers Cancel.
    local.post(
        "/local/api/click",
        click("ephemeral", buttons(card["blocks"])["job_refresh"], ephemeral_id=card["id"]),
    )

    def with_cancel(state: dict) -> dict | None:
        same = next(e for e in state["ephemerals"] if e["id"] == card["id"])
        return same if "job_cancel" in buttons(same["blocks"]) else None

    card = local.wait_for("the card with the cancel button", with_cancel)
    cancel = next(b for a, b in buttons(card["blocks"]).items() if "cancel" in a)
    local.post("/local/api/click", click("ephemeral", cancel, ephemeral_id=card["id"]))
    # The dialog opens at once (the trigger lasts 3 s) and fills in when the batch is read.
    modal = local.wait_for(
        "the cancel dialog",
        lambda s: s["modal"] if JOB in texts((s["modal"] or {}).get("blocks", [])) else None,
    )
    assert modal["type"] == "modal" and JOB in texts(modal["blocks"])
    local.post("/local/api/close", {"view_id": modal["id"]})
    local.wait_for(
        "the dialog closed", lambda s: s["modal"] is None or s["modal"]["id"] != modal["id"]
    )


def click(where: str, button: dict, *, channel: str = ROLLOUTS, **ids: str) -> dict:
    return {
        "where": where,
        "channel": channel,
        "action_id": button["action_id"],
        "block_id": button["block_id"],
        "value": button.get("value", ""),
        "text": button["text"]["text"],
        "state": {},
        **ids,
    }
