"""The local chat surface in a real browser: Chromium (Debian's package) driven by Playwright.

A newcomer's first minutes, click by click, on ``python app.py`` with no settings: the
card, Refresh, Share, a watch, the batch completed from the side panel (thread reply and
broadcast), the cancel dialog, the failed devices' CSV, the Home tab, and hostile text
shown as text. Each step saves a screenshot in test-artifacts/local-surface/. Then the
card as an English, a Japanese and a Chinese terminal's user sees it (card-<lang>.png).

Chromium comes from the machine (``.ci/run`` installs Debian's ``chromium``); Playwright's
own browser download is never used. Without Chromium these tests skip, except under CI
(``CI=true``), where a missing browser fails the run.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.local_app import ROOT, LocalApp

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

JOB = "HvKuBpuk3rdk6E92CPa1b20200"
FIRMWARE = "firmware2"
GRAY_JOB = "Gy4dGrAy7PcNt1KsVw8Lfe0200"  # a phased rollout, in progress
ROLLOUTS = "C0ROLLOUT1"
SHOTS = ROOT / "test-artifacts" / "local-surface"
# Chromium as root in a container: no sandbox; no calls home (the network is closed, and
# background requests only slow the start).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 45_000  # a watch's poll, through the real quota, on a busy machine

pytestmark = pytest.mark.slow


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("Chromium is missing: .ci/run installs Debian's chromium package")
    pytest.skip("Chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Iterator[LocalApp]:
    app = LocalApp(tmp_path_factory.mktemp("home"))
    yield app
    app.stop()


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module; each test opens its own pages in it."""
    executable = chromium_path()
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        expect.set_options(timeout=WAIT_MS)
        yield browser
        browser.close()


def open_page(browser, url: str, errors: list[str], locale: str = "en-US"):
    context = browser.new_context(
        viewport={"width": 1400, "height": 1000}, timezone_id="Asia/Tokyo", locale=locale
    )
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    return page


@pytest.fixture(scope="module")
def page(browser, local: LocalApp):
    errors: list[str] = []
    page = open_page(browser, local.url, errors)
    yield page
    page.context.close()
    assert errors == [], f"the page threw: {errors}"


def shot(page, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def send(page, text: str, testid: str = "composer") -> None:
    box = page.get_by_test_id(testid)
    box.fill(text)
    box.press("Enter")


def channel(page, channel_id: str):
    page.get_by_test_id(f"channel-{channel_id}").click()


def new_ephemeral(page, text: str, containing: str):
    """Send `text`; the one new message only I see that contains `containing`."""
    found = page.locator(".message.ephemeral").filter(has_text=containing)
    before = found.count()
    send(page, text)
    expect(found).to_have_count(before + 1)
    return found.nth(before)


def test_a_newcomers_first_minutes(page, local: LocalApp):
    """One story, step by step (each step leans on the one before, so they are one test:
    they must run in order, in one browser). A failing step leaves "failed.png"."""
    try:
        card_id = step_1_card_from_a_slash_command(page)
        step_2_refresh_replaces_the_card_and_share_posts_it(page, card_id)
        step_3_watch_then_complete_from_the_panel(page)
        step_4_cancel_dialog_and_failed_devices_csv(page, local)
        step_5_home_tab(page)
        step_6_hostile_text_is_shown_as_text(page)
    except BaseException:
        shot(page, "failed")
        raise


def step_1_card_from_a_slash_command(page) -> str:
    channel(page, ROLLOUTS)
    card = new_ephemeral(page, f"/otajob {JOB}", FIRMWARE)
    card_id = card.get_attribute("data-ephemeral-id")
    expect(card).to_contain_text("Only visible to you")
    expect(card).to_contain_text("Demo data")
    expect(card.locator("[data-action-id=job_refresh]")).to_be_visible()
    card.evaluate("el => el.scrollIntoView({block: 'start'})")  # the whole card, header first
    shot(page, "01-card")
    return card_id


def step_2_refresh_replaces_the_card_and_share_posts_it(page, card_id: str) -> None:
    cards = page.locator(".message.ephemeral").filter(has_text=FIRMWARE)
    count = cards.count()
    card = page.locator(f'[data-ephemeral-id="{card_id}"]')
    card.locator("[data-action-id=job_refresh]").click()
    expect(card.locator("[data-action-id=job_refresh]")).to_be_enabled()
    expect(cards).to_have_count(count)  # replaced, not added
    card.locator("[data-action-id=job_share]").click()
    shared = page.locator(".message:not(.ephemeral)").filter(has_text="Shared by").last
    expect(shared).to_contain_text(FIRMWARE)
    shot(page, "02-shared")


def step_3_watch_then_complete_from_the_panel(page) -> None:
    channel(page, "C0FIRMWARE")
    send(page, f"/otajob watch {JOB}")
    watched = page.locator(".message:not(.ephemeral)").filter(has_text=FIRMWARE).last
    expect(watched).to_be_visible()
    ts = watched.get_attribute("data-ts")  # now, before a broadcast naming it arrives too
    shot(page, "03-watching")

    panel = page.get_by_test_id("emulator-panel")
    expect(panel).to_be_visible()
    panel.locator("#emu-job").select_option(JOB)
    panel.locator("#emu-status").select_option("COMPLETED")
    panel.locator("#emu-set-status").click()

    # The final result is broadcast to the channel ("replied to a thread") ...
    broadcast = page.locator(".message").filter(has_text="replied to a thread").last
    expect(broadcast).to_be_visible()
    expect(page.get_by_test_id("notification").first).to_be_visible()
    shot(page, "04-completed-broadcast")
    # ... and is a reply in the card's thread.
    page.get_by_test_id(f"replies-{ts}").click()
    thread = page.get_by_test_id("thread-pane")
    expect(thread).to_contain_text(re.compile("ompleted"))
    shot(page, "05-thread")


def step_4_cancel_dialog_and_failed_devices_csv(page, local: LocalApp) -> None:
    local.post("/local/api/emulator/status", {"job_id": JOB, "status": "IN_PROGRESS"})
    local.post("/local/api/emulator/fail", {"job_id": JOB, "count": 30, "reason": "flash full"})
    channel(page, ROLLOUTS)
    card = new_ephemeral(page, f"/otajob {JOB}", FIRMWARE)
    # The batch runs again, but the last read (the watch's, COMPLETED) may still be in the
    # short cache: Refresh reads it afresh, and the running batch offers Cancel.
    card.locator("[data-action-id=job_refresh]").click()
    card.locator("[data-action-id=job_cancel]").click()
    modal = page.get_by_test_id("modal")
    expect(modal).to_contain_text(JOB)
    shot(page, "06-cancel-dialog")
    page.get_by_test_id("modal-close").click()
    expect(modal).to_have_count(0)

    listing = new_ephemeral(page, f"/otajob {JOB} failed", "flash full")
    listing.locator("[data-action-id=failed_csv]").click()
    file_card = page.locator("[data-testid^=file-]").last
    expect(file_card).to_be_visible()
    with page.expect_download() as download:
        file_card.get_by_role("link").first.click()
    saved = SHOTS / "failed.csv"
    download.value.save_as(saved)
    assert saved.read_text().count("flash full") == 30
    shot(page, "07-csv")


def step_5_home_tab(page) -> None:
    channel(page, ROLLOUTS)
    send(page, f"/otajob watch {GRAY_JOB}")  # still running: the Home tab lists it
    expect(page.locator(".message:not(.ephemeral)").filter(has_text=GRAY_JOB).last).to_be_visible()
    page.get_by_test_id("home-tab").click()
    home = page.get_by_test_id("home-view")
    expect(home).to_contain_text(GRAY_JOB)  # the batch watched in a channel I am in
    shot(page, "08-home")


def step_6_hostile_text_is_shown_as_text(page) -> None:
    channel(page, "C0FIRMWARE")
    hostile = '<img src=x onerror="window.__owned=1"><script>window.__owned=2</script>'
    send(page, hostile)
    send(page, f"@otajob {hostile}")
    send(page, f"/otajob {hostile}")
    expect(
        page.locator(".message").filter(has_text="<script>window.__owned=2</script>").first
    ).to_be_visible()
    expect(page.locator(".message.ephemeral").last).to_be_visible()
    assert page.evaluate("window.__owned") is None
    assert page.locator(".message img[src=x]").count() == 0
    assert page.locator(".message script").count() == 0
    shot(page, "09-hostile-text")


# Per language: the terminal's LANG, the browser's locale, then what the card must show in
# that language: the batch's status and the Refresh button's label.
LANGUAGES = {
    "en": ("en_US.UTF-8", "en-US", "In progress", "Refresh"),
    "ja": ("ja_JP.UTF-8", "ja-JP", "実行中", "再読み込み"),
    "zh": ("zh_CN.UTF-8", "zh-CN", "执行中", "刷新"),
}
DEVICE_BAR = re.compile("[█░]{4,}")  # the devices' progress bar: their results are in


def test_the_card_speaks_the_terminals_language(browser, tmp_path):
    """``python app.py`` from an English, a Japanese and a Chinese terminal (LANG alone
    set): the card only you see is in your language, status and buttons alike. The three
    apps start at once; their pages are visited one after another."""

    def start(name: str) -> LocalApp:
        home = tmp_path / name
        home.mkdir()
        lang = LANGUAGES[name][0]
        return LocalApp(home, {"LANG": lang, "LC_ALL": None, "LC_MESSAGES": None})

    with ThreadPoolExecutor(len(LANGUAGES)) as pool:
        starting = {name: pool.submit(start, name) for name in LANGUAGES}
        try:
            for name, future in starting.items():
                card_in_language(browser, future.result(), name)
        finally:
            for future in starting.values():
                if future.exception() is None:
                    pool.submit(future.result().stop)


def card_in_language(browser, app: LocalApp, name: str) -> None:
    _, locale, status, refresh = LANGUAGES[name]
    errors: list[str] = []
    page = open_page(browser, app.url, errors, locale)
    try:
        channel(page, ROLLOUTS)
        welcome = page.locator(".message").filter(has_text="/otajob ").first
        job = re.search(r"/otajob (\w+)", welcome.inner_text()).group(1)  # the sample batch
        card = new_ephemeral(page, f"/otajob {job}", FIRMWARE)
        expect(card).to_contain_text(DEVICE_BAR)
        expect(card).to_contain_text(status)
        expect(card.locator("[data-action-id=job_refresh]")).to_have_text(refresh)
        card.screenshot(path=str(SHOTS / f"card-{name}.png"))
    except BaseException:
        shot(page, f"failed-card-{name}")
        raise
    finally:
        page.context.close()
    assert errors == [], f"the {name} page threw: {errors}"
