"""Every template with contexts that reach each of its kinds, reasons and outcomes: the
cases the language tests render in every language (tests/test_languages.py).

A case is ``(case id, template, context)``; the template is the file's name without
``.j2`` (``job.json``, ``job.txt``), and :func:`render_case` calls the renderer's method
for it. The data in the contexts comes from one :class:`Data`: :data:`FRIENDLY` is short
and, where a real value could be, not English (Japanese names and reasons, IDs), so what
is left of a Japanese or Chinese rendering once the data is taken out is the catalogue's
words; :func:`hostile_data` fills every place with the longest, nastiest text instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.db import Watch
from bot.failures import page_of
from bot.iot.errors import IotApiError
from bot.iot.models import JobSummary, OtaJob, OtaTask, TaskCounts
from bot.iot.service import Failures
from bot.job_ref import JobRef
from bot.languages import NAMES
from bot.render import Renderer
from bot.watch.alerts import AlertRule
from bot.watch.transitions import Transition

NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
# Templates shown in a Home tab or a modal (Renderer.view) rather than as a message.
VIEWS = frozenset({"home.json", "cancel_modal.json"})
# The context entries that choose a template's branch: words of the app, not data.
SELECTORS = ("kind", "reason", "outcome", "action", "subject", "slack_error", "error")
# Whom the alert cases notify: the only mentions a template may write.
NOTIFY = ("U0ONCALL", "S0GROUP")


@dataclass(frozen=True)
class Data:
    """The values a case puts into a template, one per kind of place."""

    name: str  # a batch's (firmware's) name
    person: str  # a person's display name
    message: str  # an error message from Alibaba Cloud
    reason: str  # a device's failure reason (TaskDesc)
    description: str  # a batch's description (JobDesc)
    tag: str  # tag keys and values, other fields' values
    group: str  # a device group's name
    job_id: str
    instance_id: str
    request_id: str
    code: str  # an API error Code
    product_key: str
    device_name: str
    firmware_id: str
    version: str
    status: str  # a status Alibaba Cloud may add one day
    channel_id: str
    slack_error: str  # an error code from Slack
    typed: str  # what a person typed
    field: str  # the name of a field the API added
    link: str


FRIENDLY = Data(
    name="照明ファームウェア 2.4.1",
    person="佐藤 花子",
    message="指定されたリソースは存在しません。",
    reason="ダウンロードに失敗しました",
    description="東京ゲートウェイの夜間更新",
    tag="本番環境",
    group="東京ゲートウェイ群",
    job_id="HvKuBpuk3rdk6E92CPa1b20200",
    instance_id="iot-cn-0pp1n8t1234",
    request_id="E4C1A9D2-7B3F-4C0E-9A51-2F6D8B0C1E37",
    code="iot.ota.JobNotFound",
    product_key="a1BwAGV1234",
    device_name="照明-0042",
    firmware_id="FJFx8JzpnhpIsKftRjjm031234",
    version="2.4.0",
    status="NEW_STATUS_2027",
    channel_id="C0123ABCD",
    slack_error="restricted_action",
    typed="あいう<&>",
    field="NewField2027",
    link="https://example.slack.com/archives/C0123ABCD/p1764126000000200",
)

# Values of the app's own that a case still passes as data: alert rules and the states
# of `only` are what a person typed (command keywords are never translated), and the
# languages' names are their own.
RULE_PERCENT = "failed>5%"
RULE_COUNT = "failed>20"
ONLY = frozenset({"COMPLETED", "CANCELED"})
ONLY_WORDS = ", ".join(sorted(state.lower() for state in ONLY))
LANGUAGE_NAMES = tuple(NAMES.values())


def hostile_data(length: int = 5000) -> Data:
    """Every value ``length`` characters of mentions, markup, quotes, backslashes, control
    characters, emoji and Japanese: the most a template can be given."""
    piece = '<!channel> "q" \\ \n<@U1> *b* `c` & <http://x.example|y> 😀 ファームウェア更新 \x01'
    text = (piece * (length // len(piece) + 1))[:length]
    return Data(**{f.name: text for f in fields(Data)})


# A button's value is written by the app (bot/job_ref.py, bot/slack/triage.py), not taken
# from data: the longest it writes holds a 64-character JobId and instance ID, a page
# number and a Slack name. Data never reaches a value unchecked.
LONGEST_ID = "J" * 64


def button_value(page: int | None = None, shared: bool = False) -> str:
    """A card's button (``shared``: a card shared in a channel, which names who shared it),
    a listing's page button (``page``), or a list's Open button (neither)."""
    ref = JobRef(LONGEST_ID, "iot-" + "i" * 60, shared_by="n" * 80 if shared else None)
    value = json.loads(ref.to_value())
    return json.dumps(value | ({"page": page} if page is not None else {}))


def injected(data: Data = FRIENDLY) -> list[str]:
    """Every string the cases put into templates as data, longest first."""
    values = {getattr(data, f.name) for f in fields(Data)}
    values |= {RULE_PERCENT, RULE_COUNT, ONLY_WORDS, *LANGUAGE_NAMES}
    return sorted((v for v in values if v), key=len, reverse=True)


def render_case(renderer: Renderer, name: str, context: dict[str, Any], lang: str) -> Any:
    """Render one case: a Message (``*.json``), a view's dict (``VIEWS``) or the text of a
    terminal template (``*.txt``)."""
    template, kind = name.rsplit(".", 1)
    if kind == "txt":
        return renderer.text(template, lang=lang, **context)
    if name in VIEWS:
        return renderer.view(template, lang=lang, **context)
    if name == "job_list.json":  # as bot/slack/triage.py renders it: as many as fit
        return renderer.render_fitting(template, context["jobs"][:20], lang=lang, **context)
    return renderer.render(template, lang=lang, **context)


# --- building blocks ----------------------------------------------------------------------


def _error(d: Data, request_id: bool = True, http_status: int | None = 400) -> IotApiError:
    return IotApiError(d.code, d.message, d.request_id if request_id else None, http_status)


def _watch(d: Data, **overrides: Any) -> Watch:
    fields_ = {
        "id": 7,
        "job_id": d.job_id,
        "instance_id": None,
        "channel_id": d.channel_id,
        "created_by": "U0CREATOR",
        "created_by_name": d.person,
        "created_at": NOW.timestamp(),
        "expires_at": NOW.timestamp() + 86400,
        "only": frozenset(),
        "quiet": False,
        "card_ts": "1764126000.000200",
        "told_status": "IN_PROGRESS",
        "state": "active",
        "note": None,
        "alert_rule": None,
        "notify": (),
        "alerting": False,
    }
    return Watch(**(fields_ | overrides))


def _job(d: Data, **fields_: Any) -> OtaJob:
    base = {
        "job_id": d.job_id,
        "job_status": "IN_PROGRESS",
        "name": d.name,
        "src_versions": [d.version],
        "dest_version": d.version + ".1",
        "selection_type": "STATIC",
    }
    return OtaJob(**(base | fields_))


def _full_job(d: Data, **fields_: Any) -> OtaJob:
    """A batch with every field the card shows."""
    base = {
        "job_type": "UPGRADE_FIRMWARE",
        "job_desc": d.description,
        "firmware_id": d.firmware_id,
        "product_key": d.product_key,
        "target_selection": "SPECIFIC",
        "group_id": d.tag,
        "group_name": d.group,
        "download_protocol": "HTTPS",
        "multi_module_mode": True,
        "need_confirm": True,
        "need_push": True,
        "overwrite_mode": 1,
        "maximum_per_minute": 1000,
        "retry_count": 2,
        "retry_interval": 60,
        "timeout_in_minutes": 5,
        "tags": [{"Key": d.tag, "Value": d.tag}, {"Key": d.tag, "Value": d.group}],
        "utc_create": NOW - timedelta(days=2),
        "utc_modified": NOW - timedelta(hours=1),
        "utc_start_time": NOW - timedelta(days=1),
        "utc_end_time": NOW,
        "utc_schedule_time": NOW - timedelta(days=1),
        "utc_schedule_finish_time": NOW + timedelta(days=1),
    }
    return _job(d, **(base | fields_ | {d.field: {d.field: [d.tag, 1]}}))


COUNTS = TaskCounts(
    counts={
        "SUCCEEDED": 100,
        "FAILED": 12,
        "CANCELED": 2,
        "QUEUED": 5,
        "IN_PROGRESS": 3,
        "NOTIFIED": 2,
        "CONFIRM": 1,
        "NEW_STATUS_2027": 4,
    }
)
COUNTS_NO_FAILURES = TaskCounts(counts={"SUCCEEDED": 10, "IN_PROGRESS": 1})
COUNTS_NO_RESULT = TaskCounts(counts={"QUEUED": 5})
COUNTS_ONE_EACH = TaskCounts(counts={"SUCCEEDED": 1, "FAILED": 1, "IN_PROGRESS": 1})
COUNTS_NONE = TaskCounts(counts={})


# --- the cases, template by template ------------------------------------------------------


def _action_record(d: Data) -> list[tuple[str, dict]]:
    base = {
        "job": _job(d),
        "job_id": d.job_id,
        "instance_id": d.instance_id,
        "request_ids": [d.request_id],
        "error": None,
        "who": d.person,
        "at": NOW.timestamp(),
        "log_id": 3,
        "demo": False,
    }
    cancel = {"action": "cancel"}
    reupgrade = {"action": "reupgrade"}
    variants = {
        "cancel_strategy_tasks_all": cancel
        | {"detail": {"cancel": ["queued", "in_progress"], "done": ["strategy", "tasks"]}},
        "cancel_strategy_tasks": cancel
        | {"detail": {"cancel": ["queued"], "done": ["strategy", "tasks"]}},
        "cancel_tasks": cancel | {"detail": {"cancel": ["queued"], "done": ["tasks"]}},
        "cancel_tasks_all": cancel
        | {"detail": {"cancel": ["queued", "in_progress"], "done": ["tasks"]}},
        "cancel_strategy": cancel | {"detail": {"cancel": ["queued"], "done": ["strategy"]}},
        "cancel_nothing_done": cancel | {"detail": {"cancel": ["queued"], "done": []}},
        "cancel_partial": cancel
        | {
            "detail": {"cancel": ["queued"], "done": ["strategy"]},
            "outcome": "partial",
            "error": _error(d),
        },
        "cancel_partial_uncertain": cancel
        | {
            "detail": {"cancel": ["queued"], "done": ["strategy"]},
            "outcome": "partial",
            "error": _error(d),
            "uncertain": True,
        },
        "cancel_failed_finished": cancel
        | {
            "detail": {"cancel": ["queued"], "done": [], "finished": True},
            "outcome": "failed",
            "error": _error(d, request_id=False),
        },
        "cancel_failed": cancel
        | {"detail": {"cancel": ["queued"], "done": []}, "outcome": "failed", "error": _error(d)},
        "cancel_failed_uncertain": cancel
        | {
            "detail": {"cancel": ["queued"], "done": []},
            "outcome": "failed",
            "error": _error(d),
            "uncertain": True,
            "demo": True,
        },
        "cancel_interrupted": cancel
        | {
            "job": None,
            "detail": {"cancel": ["queued"], "done": []},
            "outcome": "interrupted",
            "uncertain": True,
            "request_ids": [d.request_id] * 5,
        },
        "reupgrade_asked": reupgrade
        | {"detail": {"reupgraded": 12, "found": 12, "total": 12}, "request_ids": []},
        "reupgrade_asked_one": reupgrade
        | {"detail": {"reupgraded": 1}, "instance_id": None, "request_ids": [d.request_id] * 2},
        "reupgrade_capped": reupgrade
        | {"detail": {"reupgraded": 300, "found": 300, "total": 950, "capped": True}},
        "reupgrade_capped_one": reupgrade
        | {"detail": {"reupgraded": 1, "found": 1, "total": 950, "capped": True}},
        "reupgrade_none": reupgrade | {"detail": {"reupgraded": 0, "found": 0, "total": 0}},
        "reupgrade_partial": reupgrade
        | {
            "detail": {"reupgraded": 10, "found": 20, "total": 20},
            "outcome": "partial",
            "error": _error(d),
        },
        "reupgrade_partial_uncertain": reupgrade
        | {
            "detail": {"reupgraded": 10, "found": 20, "total": 20},
            "outcome": "partial",
            "error": _error(d),
            "uncertain": True,
        },
        "reupgrade_failed": reupgrade
        | {"detail": {"reupgraded": 0}, "outcome": "failed", "error": _error(d)},
        "reupgrade_failed_uncertain": reupgrade
        | {"detail": {"reupgraded": 0}, "outcome": "failed", "error": _error(d), "uncertain": True},
        "reupgrade_interrupted": reupgrade
        | {
            "job": None,
            "detail": {"reupgraded": 0, "found": 40, "total": 40, "capped": False},
            "outcome": "interrupted",
            "uncertain": True,
            "demo": True,
        },
    }
    return [(key, base | {"outcome": "done"} | extra) for key, extra in variants.items()]


def _alert(d: Data) -> list[tuple[str, dict]]:
    cases = []
    for rule in (AlertRule(5, True), AlertRule(20, False)):
        for recovered in (False, True):
            for label, counts in (("rate", COUNTS), ("no_result", COUNTS_NO_RESULT)):
                context = {
                    "job": _job(d) if label == "rate" else OtaJob(job_id=d.job_id),
                    "job_id": d.job_id,
                    "rule": rule,
                    "counts": counts,
                    "notify": () if recovered else (*NOTIFY, d.person),
                    "recovered": recovered,
                    "demo": label == "no_result",
                }
                kind = "recovered" if recovered else "crossed"
                cases.append((f"{kind}_{rule.text}_{label}", context))
    return cases


API_ERROR_KINDS = (
    "not_found",
    "wrong_instance",
    "permission",
    "credentials",
    "no_credentials",
    "throttled",
    "unreachable",
    "bad_response",
    "refused",
)


def _api_error(d: Data) -> list[tuple[str, dict]]:
    cases = []
    subjects = ("batch", "firmware", "device", None)
    for i, kind in enumerate(API_ERROR_KINDS):
        # Not found says what was asked about; every kind names it in its context line.
        for subject in subjects if kind == "not_found" else (subjects[i % 4], subjects[~i % 4]):
            for instance in (None, d.instance_id):
                context = {
                    "error": _error(d, request_id=bool(instance), http_status=404 if i else None),
                    "kind": kind,
                    "job_id": d.job_id,
                    "instance_id": instance,
                    "demo": bool(instance),
                }
                if subject:
                    context["subject"] = subject
                where = "instance" if instance else "public"
                cases.append((f"{kind}_{subject or 'default'}_{where}", context))
    return cases


BAD_INPUT_REASONS = (
    "masked_id",
    "bad_job_id",
    "bad_instance",
    "missing_instance",
    "extra_words",
    "bad_channel",
    "bad_states",
    "missing_states",
    "missing_job",
    "bad_alert",
    "missing_alert",
    "plain_mention",
    "whole_channel",
    "too_many_notify",
    "missing_notify",
    "notify_without_alert",
    "bad_product_key",
    "bad_device_name",
    "bad_firmware_id",
    "missing_device",
    "missing_firmware",
    "bad_language",
    "stale_button",
    "unknown_reason",
)


def _bad_input(d: Data) -> list[tuple[str, dict]]:
    return [
        (reason, {"reason": reason, "value": d.typed, "demo": reason == "unknown_reason"})
        for reason in BAD_INPUT_REASONS
    ]


def _cancel_modal(d: Data) -> list[tuple[str, dict]]:
    base = {"loading": False, "private": d.typed, "demo": False, "now": NOW.timestamp()}
    ready = base | {"error": None, "job_id": d.job_id}
    return [
        ("loading", {"loading": True, "private": d.typed, "demo": False}),
        ("error", base | {"error": _error(d), "job": None, "job_id": d.job_id, "counts": None}),
        (
            "error_without_request_id",
            base
            | {"error": _error(d, request_id=False), "job": None, "job_id": d.job_id}
            | {"counts": None},
        ),
        ("finished", ready | {"job": _job(d, job_status="COMPLETED"), "counts": COUNTS}),
        ("dynamic", ready | {"job": _job(d, selection_type="DYNAMIC"), "counts": COUNTS}),
        ("planned", ready | {"job": _job(d, job_status="PLANNED"), "counts": COUNTS}),
        (
            "planned_without_counts",
            ready | {"job": _job(d, job_status="PLANNED", name=None), "counts": None, "demo": True},
        ),
        ("one_in_progress", ready | {"job": _job(d, src_versions=[]), "counts": COUNTS_ONE_EACH}),
        ("in_progress_without_counts", ready | {"job": _job(d), "counts": None}),
    ]


DIALOG_REFUSALS = (
    "action_disabled",
    "not_admin",
    "other_workspace",
    "user_not_allowed",
    "channel_not_allowed",
    "stale",
)


def _dialog_refusal(d: Data) -> list[tuple[str, dict]]:
    return [(reason, {"reason": reason}) for reason in DIALOG_REFUSALS]


def _tasks(d: Data, count: int, reasons: int) -> list[OtaTask]:
    return [
        OtaTask(
            task_id=f"T{i}",
            device_name=f"{d.device_name}{i}",
            src_version=d.version if i % 7 else None,
            dest_version=d.version + ".1",
            task_desc=f"{d.reason}{i % reasons}" if i % 5 else None,
            utc_modified=(NOW - timedelta(minutes=i)) if i % 4 else None,
        )
        for i in range(count)
    ]


def _failed(d: Data) -> list[tuple[str, dict]]:
    def context(tasks, total, page=1, *, can=True, limit=None, job=True, calls=1, demo=False):
        failures = Failures(
            tasks=tasks,
            total=total,
            request_ids=[d.request_id] * calls,
            fetched_at=NOW,
            **({"limit": limit} if limit else {}),
        )
        return {
            "job": _job(d) if job else None,
            "job_id": d.job_id,
            "instance_id": d.instance_id if calls else None,
            "failures": failures,
            "reasons": failures.reasons(),
            "page": page_of(tasks, page),
            "top_reasons": 8,
            "can_reupgrade": can,
            "nav_value": lambda n: button_value(page=n),
            "demo": demo,
        }

    return [
        ("none", context([], 0, can=False, job=False, calls=0)),
        ("one", context(_tasks(d, 2, 1)[1:], 1)),
        ("first_page_one_reason", context(_tasks(d, 12, 1), 12, can=False)),
        ("middle_page_many_reasons", context(_tasks(d, 40, 12), 40, page=2, calls=2)),
        ("last_page_truncated", context(_tasks(d, 30, 2), 45, page=3, limit=30, demo=True)),
        ("truncated_one_reason", context(_tasks(d, 6, 1)[1:2], 45, limit=1)),
    ]


def _home(d: Data) -> list[tuple[str, dict]]:
    job = _job(d, utc_modified=NOW)
    rows = [
        {
            "watch": _watch(d, alert_rule=RULE_PERCENT, alerting=True),
            "job": job,
            "counts": COUNTS,
            "link": d.link,
        },
        {
            "watch": _watch(d, state="paused", note=d.slack_error),
            "job": None,
            "counts": None,
            "link": None,
            "error": _error(d),
        },
        {
            "watch": _watch(d, alert_rule=RULE_COUNT, told_status=d.status),
            "job": _job(d, name=None, job_status=None),
            "counts": COUNTS_NONE,
            "link": None,
        },
        {"watch": _watch(d), "job": job, "counts": COUNTS_NO_RESULT, "link": d.link},
    ]
    base = {"refreshing": False, "now": NOW.timestamp(), "demo": False}
    return [
        ("empty_refreshing", base | {"rows": [], "hidden": 0, "unchecked": 0, "refreshing": True}),
        ("rows", base | {"rows": rows, "hidden": 4, "unchecked": 2}),
        ("one_unchecked", base | {"rows": rows[:1], "hidden": 1, "unchecked": 1, "demo": True}),
        ("without_hidden", base | {"rows": rows[:1]}),
    ]


def _job_contexts(d: Data) -> list[tuple[str, OtaJob]]:
    """Batches that reach every word the card and the terminal have for a field."""
    return [
        ("full", _full_job(d)),
        (
            "planned_dynamic_gray",
            _full_job(
                d,
                job_status="PLANNED",
                selection_type="DYNAMIC",
                target_selection="GRAY",
                gray_percent="30",
                dynamic_mode=1,
                overwrite_mode=2,
                need_push=False,
                need_confirm=False,
                multi_module_mode=False,
                retry_interval=None,
                job_type="VERIFY_FIRMWARE",
            ),
        ),
        (
            "completed_all_devices",
            _full_job(
                d,
                job_status="COMPLETED",
                target_selection="ALL",
                dynamic_mode=2,
                overwrite_mode=3,
                job_type="VERFIY_FIRMWARE",
            ),
        ),
        (
            "canceled_unknown_values",
            _full_job(
                d,
                job_status="CANCELED",
                selection_type=d.status,
                target_selection=d.status,
                dynamic_mode=9,
                job_type=d.status,
            ),
        ),
        ("unknown_status_bare", OtaJob(job_id=d.job_id, job_status=d.status)),
        ("no_status_no_name", OtaJob()),
    ]


def _job_card(d: Data) -> list[tuple[str, dict]]:
    watch = _watch(d, only=ONLY, quiet=True)
    every_button = ("refresh", "share", "watch", "failed", "cancel")
    base = {
        "job_id": d.job_id,
        "request_id": d.request_id,
        "checked_at": NOW,
        "instance_id": d.instance_id,
        "demo": False,
        "shared_by": None,
        "buttons": every_button,
        "button_value": button_value(shared=True),
    }
    counts_variants = [
        {"counts": COUNTS},
        {"counts": COUNTS_NO_FAILURES},
        {"counts": COUNTS_NO_RESULT},
        {"counts": COUNTS_NONE},
        {"counts": None, "counts_error": _error(d)},
        {"counts": None, "counts_error": _error(d, request_id=False)},
        {"counts": None, "counts_loading": True},
        {"counts": None, "counts_slow": True},
    ]
    watching_variants = [
        None,
        {"watch": watch, "interval": 3700, "live": False, "ended": False},
        {"watch": _watch(d), "interval": 60, "live": True, "ended": False},
        {"watch": watch, "interval": 60, "live": False, "ended": True},
    ]
    # Each batch with other device results and watch lines, every other one shared in a
    # demo; the results left over go on a plain batch.
    cases = []
    for i, (label, job) in enumerate(_job_contexts(d)):
        context = base | {"job": job} | counts_variants[i % len(counts_variants)]
        context["watching"] = watching_variants[i % len(watching_variants)]
        if i % 2:
            context |= {"demo": True, "shared_by": d.person, "instance_id": None}
        if label == "no_status_no_name":
            context |= {"buttons": (), "request_id": None}
        cases.append((label, context))
    for i, counts in enumerate(counts_variants[len(cases) :]):
        cases.append((f"counts_{i}", base | {"job": _job(d)} | counts))
    return cases


def _job_text(d: Data) -> list[tuple[str, dict]]:
    return [
        (
            label,
            {
                "job": job,
                "job_id": d.job_id,
                "demo": i % 2 == 0,
                "request_id": d.request_id if i % 3 else None,
                "instance_id": d.instance_id if i % 2 else None,
            },
        )
        for i, (label, job) in enumerate(_job_contexts(d))
    ]


@dataclass
class Searched:
    """How a device lookup went across the product's update packages."""

    firmware_checked: int
    firmware_total: int
    firmware_failed: int


def _job_list(d: Data) -> list[tuple[str, dict]]:
    statuses = ["IN_PROGRESS", "COMPLETED", "CANCELED", "PLANNED", d.status]
    jobs = [
        JobSummary(
            job_id=f"{d.job_id}{i}" if i != 4 else None,
            job_status=statuses[i % len(statuses)],
            job_type=["UPGRADE_FIRMWARE", "VERIFY_FIRMWARE", d.status][i % 3],
            firmware_id=d.firmware_id if i % 2 else None,
            utc_create=NOW if i % 4 else None,
            utc_end_time=NOW if i % 3 else None,
        )
        for i in range(26)
    ]
    device = {"product_key": d.product_key, "device_name": d.device_name, "firmware_id": ""}
    firmware = {"product_key": "", "device_name": "", "firmware_id": d.firmware_id}
    variants = [
        ("device", jobs[:3], 3, [d.request_id] * 2, None, Searched(3, 20, 0), device),
        ("device_more_than_shown", jobs[:1], 5, [d.request_id], d.instance_id, None, device),
        ("device_none", [], 0, [d.request_id], None, Searched(1, 1, 2), device),
        ("firmware_over_twenty", jobs, 26, [d.request_id], None, None, firmware),
        ("firmware_twenty_one", jobs[:21], 21, [], None, None, firmware),
        ("firmware_none", [], 0, [], d.instance_id, Searched(1, 1, 1), firmware),
    ]
    return [
        (
            label,
            {
                "jobs": found,
                "total": total,
                "request_ids": request_ids,
                "instance_id": instance,
                "searched": searched,
                "open_value": lambda job_id: button_value(),
                "demo": i % 2 == 1,
            }
            | subject,
        )
        for i, (label, found, total, request_ids, instance, searched, subject) in enumerate(
            variants
        )
    ]


def _language(d: Data) -> list[tuple[str, dict]]:
    base = {
        "channel_id": d.channel_id,
        "current": NAMES["ja"],
        "workspace": NAMES["en"],
        "names": list(LANGUAGE_NAMES),
        "demo": False,
    }
    return [
        ("changed_to_chosen", base | {"changed": True, "chosen": NAMES["zh_CN"]}),
        ("changed_to_workspace", base | {"changed": True, "chosen": ""}),
        ("chosen", base | {"changed": False, "chosen": NAMES["ja"], "demo": True}),
        ("workspace", base | {"changed": False, "chosen": ""}),
    ]


NOTE_KINDS = (
    "mention_only_cards",
    "mention_cannot_post",
    "dialog_failed",
    "reupgrade_running",
    "reupgrading",
    "reading_failed",
    "csv_here",
    "csv_in_dm",
    "csv_nowhere",
    "csv_title",
    "csv_comment",
)


def _note(d: Data) -> list[tuple[str, dict]]:
    cases = []
    for n in (1, 1234):
        for kind in NOTE_KINDS:
            context = {
                "kind": kind,
                "job_id": d.job_id,
                "error": d.slack_error,
                "n": n,
                "who": d.person,
                "demo": n == 1,
            }
            cases.append((f"{kind}_{n}", context))
    cases.append(
        ("reupgrading_only_job_id", {"kind": "reupgrading", "job_id": d.job_id, "demo": False})
    )
    return cases


REFUSED_REASONS = (
    "other_workspace",
    "user_not_allowed",
    "channel_not_allowed",
    "action_disabled",
    "not_admin",
    "unknown_reason",
)


def _refused(d: Data) -> list[tuple[str, dict]]:
    return [
        (reason, {"reason": reason, "demo": reason == "not_admin"}) for reason in REFUSED_REASONS
    ]


def _transition(d: Data) -> list[tuple[str, dict]]:
    final = _job(
        d,
        job_status="COMPLETED",
        src_versions=[d.version, d.version + ".0"],
        utc_start_time=NOW - timedelta(hours=3),
        utc_end_time=NOW,
    )
    bare = OtaJob(job_status="IN_PROGRESS", job_id=d.job_id)
    variants = [
        (
            "completed_with_counts",
            Transition("IN_PROGRESS", "COMPLETED", NOW, timedelta(hours=3, minutes=4)),
            final,
            {"counts": COUNTS, "demo": True},
        ),
        (
            "canceled_counts_error",
            Transition("IN_PROGRESS", "CANCELED", NOW, None),
            final,
            {"counts_error": _error(d)},
        ),
        (
            "completed_counting",
            Transition("IN_PROGRESS", "COMPLETED", None, timedelta(seconds=30)),
            bare,
            {"counts_loading": True},
        ),
        (
            "started_after_waiting",
            Transition("PLANNED", "IN_PROGRESS", NOW, timedelta(days=2, hours=1)),
            bare,
            {},
        ),
        ("started", Transition("PLANNED", "IN_PROGRESS", None, None), final, {"demo": True}),
        ("unknown_statuses", Transition(d.status, d.status, NOW, None), bare, {}),
    ]
    base = {"counts": None, "counts_error": None, "counts_loading": False, "demo": False}
    return [
        (label, base | {"job": job, "job_id": d.job_id, "t": t} | extra)
        for label, t, job, extra in variants
    ]


def _unexpected(d: Data) -> list[tuple[str, dict]]:
    return [
        ("ours", {"error_id": d.request_id, "demo": False}),
        ("rate_limited", {"error_id": d.request_id, "slack_error": "ratelimited", "demo": False}),
        ("slack_refused", {"error_id": d.request_id, "slack_error": d.slack_error, "demo": True}),
    ]


def _usage(d: Data) -> list[tuple[str, dict]]:
    return [
        ("no_default_instance", {"default_instance": None, "demo": False}),
        ("default_instance", {"default_instance": d.instance_id, "demo": True}),
    ]


def _watch_note(d: Data) -> list[tuple[str, dict]]:
    variants = [
        ("expired", "expired", {"max_days": 14}),
        ("expired_one_day", "expired", {"max_days": 1, "demo": True}),
        ("job_gone", "job_gone", {"error": _error(d)}),
        ("job_gone_without_request_id", "job_gone", {"error": _error(d, request_id=False)}),
        ("unwatched_by_name", "unwatched", {"user_name": d.person}),
        ("unwatched_no_name", "unwatched", {"user_name": ""}),
        ("unwatched", "unwatched", {}),
        ("unknown_reason", "unknown_reason", {}),
    ]
    base = {"watch": _watch(d), "demo": False, "max_days": 14}
    return [(label, base | {"reason": reason} | extra) for label, reason, extra in variants]


WATCH_PAUSED_ERRORS = ("not_in_channel", "channel_not_found", "is_archived")


def _watch_paused(d: Data) -> list[tuple[str, dict]]:
    cases = [
        (error, {"watch": _watch(d), "error": error, "demo": False})
        for error in WATCH_PAUSED_ERRORS
    ]
    cases.append(("other_error", {"watch": _watch(d), "error": d.slack_error, "demo": True}))
    return cases


WATCH_OUTCOMES = (
    "created",
    "resumed",
    "alert_set",
    "exists",
    "finished",
    "channel_unavailable",
    "unwatched",
    "not_a_channel",
    "channel_not_allowed",
    "not_a_member",
    "membership_unknown",
    "not_watched",
)
# Outcomes about a channel rather than a watch: one case each is enough.
_CHANNEL_OUTCOMES = {
    "not_a_channel",
    "channel_not_allowed",
    "not_a_member",
    "membership_unknown",
    "not_watched",
}


def _watch_reply(d: Data) -> list[tuple[str, dict]]:
    watches = [
        _watch(d),
        _watch(d, quiet=True, only=ONLY, alert_rule=RULE_PERCENT, notify=NOTIFY[:1]),
        _watch(
            d,
            alert_rule=RULE_COUNT,
            notify=NOTIFY,
            state="paused",
            note=d.slack_error,
        ),
        _watch(d, alert_rule=RULE_COUNT, only=ONLY),
    ]
    cases = []
    for outcome in WATCH_OUTCOMES:
        for i, watch in enumerate(watches):
            if outcome in _CHANNEL_OUTCOMES and i:
                continue
            context = {
                "outcome": outcome,
                "job_id": d.job_id,
                "channel_id": d.channel_id,
                "watch": None if outcome in ("not_a_channel", "not_watched") else watch,
                "interval": 60 + i * 3600,
                "live": i % 2 == 0,
                "error": d.slack_error if i else None,
                "demo": i == 1,
            }
            cases.append((f"{outcome}_{i}", context))
    return cases


def _watches(d: Data) -> list[tuple[str, dict]]:
    rows = [
        {"watch": _watch(d), "status": "IN_PROGRESS", "firmware": d.name, "language": NAMES["ja"]},
        {
            "watch": _watch(
                d,
                state="paused",
                note=d.slack_error,
                only=ONLY,
                quiet=True,
                alert_rule=RULE_PERCENT,
                notify=NOTIFY,
                alerting=True,
            ),
            "status": d.status,
            "firmware": None,
        },
        {"watch": _watch(d, alert_rule=RULE_COUNT), "status": "PLANNED", "firmware": d.name},
    ]
    variants = [
        ("here", rows, 0, 0, False, False, None),
        ("everywhere_live", rows[:1], 0, 1, True, True, NAMES["zh_CN"]),
        ("everywhere_more", rows, 3, 2, True, False, ""),
        ("none", [], 0, 0, False, False, NAMES["en"]),
        ("none_shown_one_more", [], 1, 0, False, True, None),
    ]
    cases = []
    for label, shown, more, unchecked, everywhere, live, language in variants:
        context = {
            "rows": shown,
            "more": more,
            "unchecked": unchecked,
            "everywhere": everywhere,
            "interval": 3700,
            "live": live,
            "demo": live,
        }
        if language is not None:
            context["language"] = language
        cases.append((label, context))
    return cases


_BUILDERS = {
    "action_record.json": _action_record,
    "alert.json": _alert,
    "api_error.json": _api_error,
    "bad_input.json": _bad_input,
    "cancel_modal.json": _cancel_modal,
    "csv_header.txt": lambda d: [("columns", {})],
    "dialog_refusal.txt": _dialog_refusal,
    "failed.json": _failed,
    "home.json": _home,
    "job.json": _job_card,
    "job.txt": _job_text,
    "job_list.json": _job_list,
    "language.json": _language,
    "note.json": _note,
    "refused.json": _refused,
    "transition.json": _transition,
    "unexpected.json": _unexpected,
    "usage.json": _usage,
    "watch_note.json": _watch_note,
    "watch_paused.json": _watch_paused,
    "watch_reply.json": _watch_reply,
    "watches.json": _watches,
}


def build_cases(data: Data = FRIENDLY) -> list[tuple[str, str, dict]]:
    """Every case, its data taken from ``data``."""
    return [
        (f"{name}/{label}", name, context)
        for name, build in _BUILDERS.items()
        for label, context in build(data)
    ]


CASES: list[tuple[str, str, dict]] = build_cases()
