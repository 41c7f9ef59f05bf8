"""Templates -> Block Kit: valid JSON, within Slack's limits, and no data ever becomes markup."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.emulator import fixtures
from bot.iot.errors import IotApiError, error_kind
from bot.iot.models import OtaJob
from bot.render import Renderer, RenderError, cut, slack_escape, validate_blocks
from fakes.block_kit import message_errors, view_errors
from tests.helpers import texts_in
from tests.render_cases import NOTE_KINDS

RENDERER = Renderer()
# The hostile-data tests run in every language: translated words must escape data too.
LANGUAGES = ("en", "ja", "zh_CN")
NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
NASTY = [
    '"',
    "\\",
    "\n\r\t",
    "<!channel>",
    "<!here|here>",
    "<!everyone>",
    "<@U12345>",
    "<!subteam^S123>",
    "<http://evil.example|harmless>",
    "&amp; &lt; &",
    "x" * 5000,
    "😀🚀",
    "ファームウェア更新",
    "{{ 7*7 }}",
    '"},{"type":"section"',
    "*bold* _it_ `code`",
    "",
    "\x01\x02\x1b[31m" * 2000,
]
# Long values come from NASTY and from repeating a generated piece: cheap to generate.
hostile = (
    st.sampled_from(NASTY)
    | st.text(max_size=300)
    | st.builds(lambda piece, n: piece * n, st.text(min_size=1, max_size=20), st.integers(100, 400))
)
STRING_FIELDS = [
    "JobId",
    "JobStatus",
    "JobType",
    "JobDesc",
    "Name",
    "FirmwareId",
    "ProductKey",
    "DestVersion",
    "SelectionType",
    "TargetSelection",
    "GrayPercent",
    "GroupId",
    "GroupName",
    "DownloadProtocol",
]
DATE_TOKEN = re.compile(r"<!date\^\d+\^[^|<>]*\|[^<>]*>")
CHANNEL_LINK = re.compile(r"<#[CGD][A-Z0-9]{2,30}>")  # made only from validated IDs


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def mrkdwn_texts(message) -> list[str]:
    """Every string Slack parses for control sequences: mrkdwn objects and the fallback."""
    return [message.text, *texts_in(message.blocks, mrkdwn_only=True)]


@dataclass
class Found:
    """What a device lookup across packages reports under its list."""

    firmware_checked: int
    firmware_total: int
    firmware_failed: int


def assert_no_markup_from_data(message) -> None:
    for text in mrkdwn_texts(message):
        stripped = CHANNEL_LINK.sub("", DATE_TOKEN.sub("", text))
        assert "<" not in stripped and ">" not in stripped, text
    # And Slack would take it: the fake Slack's Block Kit rules, from Slack's docs.
    assert message_errors(message.blocks) == [], message_errors(message.blocks)


def render_job(data: dict, lang: str = "en", **overrides):
    context = {
        "job": OtaJob.model_validate(data),
        "job_id": data.get("JobId") or "J",
        "request_id": "RID-1",
        "checked_at": NOW,
        "instance_id": None,
        "demo": False,
        "shared_by": None,
        "buttons": ("refresh", "share"),
        "button_value": '{"job":"J","instance":null}',
    }
    context.update(overrides)
    return RENDERER.render("job", lang=lang, **context)


@pytest.mark.parametrize("job_id", sorted(fixtures.default_jobs()))
def test_every_fixture_job_renders(job_id: str) -> None:
    """Each emulator fixture (every mode and field combination) renders a valid card."""
    message = render_job(fixtures.default_jobs()[job_id])
    assert message.text and message.blocks[0]["type"] == "header"
    assert_no_markup_from_data(message)


def test_card_shows_what_on_call_needs() -> None:
    """The spec example's card carries status, versions, product, times, settings, IDs."""
    message = render_job(fixtures.default_jobs()[fixtures.EXAMPLE_JOB_ID])
    dump = json.dumps(message.blocks, ensure_ascii=False)
    for expected in [
        ":arrows_counterclockwise: *In progress*",
        "1.0.0 → 1.0.1",
        "a19mzPZ****",
        "Firmware upgrade",
        "Static · Specific devices",
        "<!date^1577500990^",
        "*Max devices per minute*\\n1000",
        "1 × every 60 min",
        "5 min",
        "needed in the mobile app",
        "batch upgrade",
        "UfuxnwygsuSkVE0VCN****0100",
        "RequestId `RID-1`",
        "job_refresh",
        "job_share",
    ]:
        assert expected in dump, expected
    assert "In progress" in message.text


def test_demo_and_shared_by_lines() -> None:
    """Demo cards say so; a shared card names who shared it without mentioning them."""
    message = render_job({"JobId": "J"}, demo=True, shared_by="<@U1> alice", buttons=())
    dump = json.dumps(message.blocks)
    assert "Demo data" in dump and message.text.startswith("[demo]")
    assert "Shared by &lt;@U1&gt; alice" in dump
    assert not any(b["type"] == "actions" for b in message.blocks)


@pytest.mark.parametrize("lang", LANGUAGES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.fixed_dictionaries({name: hostile for name in STRING_FIELDS}),
    src=st.lists(hostile, max_size=5),
    tags=st.lists(st.tuples(hostile, hostile), max_size=40),
    extra_key=hostile,
    extra_value=hostile,
    shared_by=st.none() | hostile,
)
def test_hostile_job_data_stays_data(
    values, src, tags, extra_key, extra_value, shared_by, lang
) -> None:
    """Any strings in any field render valid Block Kit and never become mentions or links."""
    data = dict(values)
    data["SrcVersions"] = {"SrcVersion": src}
    data["Tags"] = {"OtaTagDTO": [{"Key": k, "Value": v} for k, v in tags]}
    if extra_key and extra_key not in STRING_FIELDS:
        data["X" + extra_key] = extra_value
    message = render_job(data, lang, shared_by=shared_by, instance_id=values["GroupId"])
    assert_no_markup_from_data(message)
    # Escaped once, not twice: unescaping the fallback gives the name back.
    name = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", values["Name"][:100])
    if name and not message.text.endswith("…"):
        assert name in unescape(message.text)
    header = message.blocks[0]["text"]["text"]
    assert len(header) <= 150


@pytest.mark.parametrize("lang", LANGUAGES)
@settings(max_examples=40, deadline=None)
@given(code=hostile, message=hostile, request_id=hostile, job_id=hostile, instance=hostile)
def test_hostile_api_errors_stay_data(code, message, request_id, job_id, instance, lang) -> None:
    """Error Codes, messages and RequestIds from the API are shown escaped, never as markup."""
    error = IotApiError(code or "X", message, request_id, 400)
    rendered = RENDERER.render(
        "api_error",
        lang=lang,
        error=error,
        kind=error_kind(error),
        job_id=job_id,
        instance_id=instance,
        demo=True,
    )
    assert_no_markup_from_data(rendered)


@pytest.mark.parametrize("lang", LANGUAGES)
@settings(max_examples=40, deadline=None)
@given(
    reason=st.sampled_from(
        [
            "masked_id",
            "bad_job_id",
            "bad_instance",
            "missing_instance",
            "extra_words",
            "bad_channel",
            "bad_states",
            "missing_states",
            "missing_job",
            "x",
        ]
    ),
    value=hostile,
)
def test_hostile_user_input_stays_data(reason, value, lang) -> None:
    """Whatever a person types is echoed back escaped."""
    assert_no_markup_from_data(
        RENDERER.render("bad_input", lang=lang, reason=reason, value=value, demo=False)
    )


def test_usage_and_unexpected_render() -> None:
    """The usage and unexpected-error messages render and validate."""
    usage = RENDERER.render("usage", lang="en", default_instance="<!here>", demo=True)
    assert "/otajob <JobId>" not in usage.blocks[0]["text"]["text"]  # escaped form instead
    assert "/otajob &lt;JobId&gt;" in usage.blocks[0]["text"]["text"]
    assert_no_markup_from_data(usage)
    oops = RENDERER.render("unexpected", lang="en", error_id="abc123", demo=False)
    assert "abc123" in oops.text
    busy = RENDERER.render(
        "unexpected", lang="en", error_id="abc123", slack_error="ratelimited", demo=False
    )
    assert "rate limited" in busy.text and "try again in a minute" in busy.text.lower()
    refused = RENDERER.render(
        "unexpected", lang="en", error_id="x", slack_error="<!channel>", demo=True
    )
    assert_no_markup_from_data(refused)


def test_cut_never_splits_an_entity() -> None:
    """Cutting escaped text keeps entities whole and ends with an ellipsis."""
    for limit in range(1, 30):
        result = cut("<" * 40, limit)
        assert len(result) <= limit
        assert re.fullmatch(r"(&lt;)*…?", result), result
    assert cut("short", 10) == "short"
    assert slack_escape("a&b<c>d'\"") == "a&amp;b&lt;c&gt;d'\""


@pytest.mark.parametrize(
    ("blocks", "problem"),
    [
        ([{"type": "divider"}] * 51, "51 blocks"),
        ([{"type": "nonsense"}], "unknown type"),
        ([{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}], "plain_text"),
        (
            [{"type": "section", "fields": [{"type": "mrkdwn", "text": "x" * 2001}]}],
            "over 2000",
        ),
        ([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}], "3000"),
        (
            [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 2900}}] * 5,
            "characters of JSON",
        ),
    ],
)
def test_validation_catches_what_slack_rejects(blocks, problem) -> None:
    """Limits slack_sdk misses (and some it checks) raise RenderError."""
    with pytest.raises(RenderError, match=problem):
        validate_blocks(blocks)


@pytest.mark.parametrize("lang", LANGUAGES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=hostile, job_id=hostile, note=hostile, user=hostile, code=hostile)
def test_hostile_data_in_watch_messages_stays_data(name, job_id, note, user, code, lang) -> None:
    """Transition replies, watch notes, DMs, watch answers and listings escape everything."""
    from datetime import timedelta

    from bot.iot.models import TaskCounts
    from bot.watch.transitions import Transition

    job = OtaJob(job_status="COMPLETED", name=name, job_id=job_id, src_versions=[note])
    watch = hostile_watch(job_id, user, note)
    error = IotApiError(code or "X", note, user, 400)
    final = Transition("IN_PROGRESS", "COMPLETED", NOW, timedelta(hours=3))
    counts = TaskCounts(counts={"SUCCEEDED": 10, "FAILED": 2})
    # A final reply with its summary, with the summary's error, and still counting.
    messages = [
        RENDERER.render(
            "transition",
            lang=lang,
            job=job,
            job_id=job_id,
            t=final,
            counts=summary,
            counts_error=summary_error,
            counts_loading=loading,
            demo=demo,
        )
        for summary, summary_error, loading, demo in (
            (counts, None, False, True),
            (None, error, False, False),
            (None, None, True, False),
        )
    ]
    messages += [
        RENDERER.render(
            "watch_note",
            lang=lang,
            reason="unwatched",
            watch=watch,
            demo=False,
            max_days=14,
            user_name=user,
            error=error,
        ),
        RENDERER.render("watch_paused", lang=lang, watch=watch, error=note, demo=False),
        RENDERER.render(
            "watches",
            lang=lang,
            rows=[{"watch": watch, "status": note, "firmware": name}],
            more=3,
            unchecked=2,
            everywhere=True,
            interval=60,
            live=False,
            demo=False,
        ),
    ]
    messages += [
        RENDERER.render(
            "watch_reply",
            lang=lang,
            outcome=outcome,
            job_id=job_id,
            channel_id=note,
            watch=watch,
            interval=60,
            live=outcome == "created",
            error=note,
            demo=False,
        )
        for outcome in (
            "created",
            "exists",
            "alert_set",
            "finished",
            "channel_unavailable",
            "channel_not_allowed",
            "not_a_member",
            "membership_unknown",
        )
    ]
    for message in messages:
        assert_no_markup_from_data(message)


def hostile_watch(job_id: str, user: str, note: str, **overrides):
    from bot.db import Watch

    fields = {
        "id": 7,
        "job_id": job_id,
        "instance_id": None,
        "channel_id": "C123",
        "created_by": "U1",
        "created_by_name": user,
        "created_at": 0.0,
        "expires_at": 1.0,
        "only": frozenset({"COMPLETED"}),
        "quiet": False,
        "card_ts": "1.2",
        "told_status": note,
        "state": "paused",
        "note": note,
        "alert_rule": "failed>5%",
        "notify": ("U0ONCALL", "S0GROUP"),
        "alerting": True,
    }
    return Watch(**(fields | overrides))


MENTIONS = re.compile(r"<@U0ONCALL>|<!subteam\^S0GROUP>")


@pytest.mark.parametrize("lang", LANGUAGES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=hostile, job_id=hostile, note=hostile, user=hostile, code=hostile)
def test_hostile_data_in_triage_messages_stays_data(name, job_id, note, user, code, lang) -> None:
    """Failed-device listings, lookups, alerts, the Home tab, the cancel dialog and action
    records escape everything; the only mentions are the configured notify IDs."""
    from bot.failures import page_of
    from bot.iot.models import JobSummary, OtaTask, TaskCounts
    from bot.iot.service import Failures
    from bot.watch.alerts import AlertRule

    job = OtaJob(job_status="IN_PROGRESS", name=name, job_id=job_id, src_versions=[note])
    error = IotApiError(code or "X", note, user, 400)
    counts = TaskCounts(counts={"SUCCEEDED": 100, "FAILED": 12, "QUEUED": 5, "IN_PROGRESS": 3})
    tasks = [
        OtaTask(
            task_id=f"T{i}", device_name=name, src_version=note, task_desc=note if i % 2 else code
        )
        for i in range(30)
    ]
    failures = Failures(tasks=tasks, total=45, request_ids=[user])
    watch = hostile_watch(job_id, user, note)
    messages = [
        RENDERER.render(
            "failed",
            lang=lang,
            job=job,
            job_id=job_id,
            instance_id=note,
            failures=failures,
            reasons=failures.reasons(),
            page=page_of(tasks, 1),
            top_reasons=8,
            can_reupgrade=True,
            nav_value=lambda n: note,
            demo=True,
        ),
        RENDERER.render(
            "job_list",
            lang=lang,
            jobs=[JobSummary(job_id=job_id, job_status=note, job_type=name, firmware_id=code)] * 3,
            total=3,
            request_ids=[user],
            instance_id=note,
            searched=Found(3, 20, 2),
            open_value=lambda j: j,
            product_key=name,
            device_name=user,
            firmware_id=code,
            demo=False,
        ),
        *(
            RENDERER.render(
                "note", lang=lang, kind=kind, job_id=job_id, error=note, n=12, who=user, demo=False
            )
            for kind in NOTE_KINDS
        ),
        RENDERER.render("refused", lang=lang, reason=note, demo=False),
        RENDERER.render(
            "action_record",
            lang=lang,
            action="cancel",
            job=job,
            job_id=job_id,
            instance_id=note,
            detail={"cancel": ["queued", "in_progress"], "done": ["strategy"], "dynamic": True},
            request_ids=[user, code],
            outcome="partial",
            error=error,
            who=user,
            at=0.0,
            log_id=3,
            demo=True,
        ),
        RENDERER.render(
            "action_record",
            lang=lang,
            action="reupgrade",
            job=None,
            job_id=job_id,
            instance_id=note,
            detail={"reupgraded": 0, "found": 40, "total": 40, "capped": False},
            request_ids=[code],
            outcome="interrupted",
            error=None,
            uncertain=True,
            who=user,
            at=0.0,
            log_id=4,
            demo=False,
        ),
        RENDERER.render(
            "action_record",
            lang=lang,
            action="reupgrade",
            job=None,
            job_id=job_id,
            instance_id=None,
            detail={"reupgraded": 12},
            request_ids=[],
            outcome="failed",
            error=error,
            who=user,
            at=0.0,
            log_id=4,
            demo=False,
        ),
    ]
    for message in messages:
        assert_no_markup_from_data(message)
    for recovered in (False, True):
        alert = RENDERER.render(
            "alert",
            lang=lang,
            job=job,
            job_id=job_id,
            rule=AlertRule(5, True),
            counts=counts,
            notify=("U0ONCALL", "S0GROUP", note),  # a stray value is never a mention
            recovered=recovered,
            demo=False,
        )
        for text in mrkdwn_texts(alert):
            stripped = MENTIONS.sub("", text)
            assert "<" not in stripped and ">" not in stripped, text
        assert ("<@U0ONCALL>" in alert.text) is not recovered
    views = [
        RENDERER.view(
            "home",
            lang=lang,
            rows=[
                {"watch": watch, "job": job, "counts": counts, "link": "https://x", "error": error},
                {
                    "watch": hostile_watch(job_id, user, note, alert_rule=None),
                    "job": None,
                    "counts": None,
                    "link": None,
                },
            ],
            hidden=4,
            unchecked=1,
            refreshing=False,
            now=0.0,
            demo=True,
        ),
        RENDERER.view(
            "cancel_modal",
            lang=lang,
            loading=False,
            private=note,
            demo=False,
            now=0.0,
            error=None,
            job=job,
            job_id=job_id,
            counts=counts,
        ),
        RENDERER.view(
            "cancel_modal",
            lang=lang,
            loading=False,
            private=note,
            demo=False,
            now=0.0,
            error=error,
            job=None,
            job_id=job_id,
            counts=None,
        ),
    ]
    for view in views:
        from bot.render import Message

        assert_no_markup_from_data(Message(text="view", blocks=view["blocks"]))
        method = "views.publish" if view["type"] == "home" else "views.open"
        assert view_errors(view, method) == [], view_errors(view, method)


@pytest.mark.parametrize(
    ("detail", "words"),
    [
        ({"reupgraded": 0, "found": 0, "total": 0}, "found no failed devices to re-upgrade"),
        (
            {"reupgraded": 300, "found": 300, "total": 950, "capped": True},
            "the first 300 of 950 failed",
        ),
        ({"reupgraded": 12, "found": 12, "total": 12}, "asked for 12 failed devices"),
    ],
)
def test_a_reupgrade_record_says_what_was_found(detail, words) -> None:
    message = RENDERER.render(
        "action_record",
        lang="en",
        action="reupgrade",
        job=None,
        job_id="J1234567",
        instance_id=None,
        detail=detail,
        request_ids=[],
        outcome="done",
        error=None,
        who="ann",
        at=0.0,
        log_id=1,
        demo=False,
    )
    assert words in message.text


@pytest.mark.parametrize(
    ("subject", "words", "label"),
    [
        ("batch", "has no update batch `X1`", "Job `X1`"),
        ("firmware", "has no update package `X1`", "Firmware `X1`"),
        ("device", "Check the ProductKey and DeviceName", "Device `X1`"),
    ],
)
def test_a_refusal_names_what_was_asked_about(subject, words, label) -> None:
    error = IotApiError("iot.ota.NotFound", "not found", "RID-9", 404)
    message = RENDERER.render(
        "api_error",
        lang="en",
        error=error,
        kind=error_kind(error),
        job_id="X1",
        instance_id=None,
        subject=subject,
        demo=False,
    )
    text = json.dumps(message.blocks, ensure_ascii=False)
    assert words in text and label in text and "RID-9" in text
