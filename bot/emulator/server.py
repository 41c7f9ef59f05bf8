"""A real HTTP server that answers like the IoT Platform gateway for the OTA API.

Order of checks for each API call (``POST /`` or ``GET /``, parameters in the query):
signature (verify.py) -> nonce replay -> Version -> Action -> scripted failure (fail_next)
-> quota -> required parameters -> the action's handler. Only calls that pass the
signature and find their action reach the quota, and a throttled call does not take a
slot in the window: the real gateway rejects it before it runs, so it consumes nothing.
Scripted failures stand in for the gateway failing, so they take no slot either (except
"slow", which is a normal answer delivered late). Every API call is logged in ``calls``;
the ``/_emulator/*`` control paths are neither signed nor logged.

Gateway behaviours and their sources (the reference is the team's reference notes,
alibaba-iot-ota.md; signature checks are listed in verify.py):
gateway errors, 4xx and 5xx, are JSON {RequestId, HostId, Code, Message, Recommend}
(reference "Errors"); IoT business errors are {RequestId, Success: false, Code,
ErrorMessage}, under HTTP 200 or, scripted, 4xx/5xx (reference "Errors"); throttling is
HTTP 400 Throttling.User with ``x-acs-retry-after`` in milliseconds (reference "Errors"
for the header, Alibaba's SDK tests in aliyun/darabonba-openapi for the unit); a nonce
seen again while its request could still verify is SignatureNonceUsed (reference
"Errors"). Every answer carries ``x-acs-request-id``.

Actions: QueryOTAJob, ListOTATaskByJob (device tasks, held per job in ``tasks``),
ListOTAFirmware, ListOTAJobByFirmware, ListOTAJobByDevice, and the write actions
CancelOTAStrategyByJob, CancelOTATaskByJob and ReupgradeOTATask.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import itertools
import json
import logging
import math
import re
import time
import uuid
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.emulator.fixtures import (
    DEFAULT_FAILURE_REASONS,
    FALLBACK_SRC_VERSION,
    PRODUCT_NAME,
    TASK_STATUSES,
    default_jobs,
    default_tasks,
    make_job,
)
from bot.emulator.verify import (
    API_VERSION,
    WINDOW_SECONDS,
    GatewayError,
    Verified,
    WireRequest,
    describe,
    missing,
    verify,
)
from bot.iot.models import JOB_STATUSES

log = logging.getLogger(__name__)

DEMO_ACCESS_KEY_ID = "LTAIdemoOtajobEmulator"
# A published demo value, safe to print: the emulator is the only thing that accepts it.
DEMO_ACCESS_KEY_SECRET = "demo-secret-not-a-real-key"
DEMO_SECURITY_TOKEN = "CAISdemoOtajobEmulatorStsToken"

FAILURE_KINDS = (
    "throttle",
    "server_error",
    "internal",
    "malformed",
    "business",
    "slow",
    "reset",
    "garbled",
)
# "garbled": the action runs, then its answer cannot be read (JSON nested deeper than
# any parser takes), as a broken proxy or gateway might send: a write is then carried out
# although the caller cannot tell.
GARBLED_DEPTH = 100_000
SLOW_SECONDS = 30.0
# Per-action quotas that do not follow the ``qps`` attribute (reference: quotas section;
# ReupgradeOTATask's 20/s is from Alibaba's ReupgradeOTATask page). ``qps`` = 0 does not
# lift these: they stand for the account's quota, not for the emulator's setting.
FIXED_QUOTAS = {"QueryOTAFirmware": 20.0, "CancelOTATaskByJob": 5.0, "ReupgradeOTATask": 20.0}
WELL_FORMED_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
REDACTED = "<redacted>"
# The throttling hint header (reference "Errors"), in milliseconds (see fail_next).
RETRY_AFTER = "x-acs-retry-after"
MAX_PAGE_SIZE = 100
# The reference lists iot.check.InvalidFormattedParameter among the documented codes.
INVALID_FORMAT_CODE = "iot.check.InvalidFormattedParameter"
GENERATED_DEVICE = re.compile(r"^dev-(\d{6,})$")
# No public source names these codes; they are the emulator's choice. JobNotDynamic:
# CancelOTAStrategyByJob on a STATIC job (only dynamic jobs have a strategy to cancel).
# TaskStatusError: ReupgradeOTATask naming a TaskId that is not in the job, or a task that
# is neither FAILED nor CANCELED.
JOB_NOT_DYNAMIC_CODE = "iot.ota.JobNotDynamic"
TASK_STATUS_CODE = "iot.ota.TaskStatusError"
MAX_REUPGRADE_TASKS = 10
CANCELED_DESC = "canceled by user"
# CancelOTATaskByJob's flags -> the task statuses each one cancels. CancelScheduledTask
# acts on the job instead: a PLANNED job is canceled with its QUEUED and CONFIRM tasks.
CANCEL_FLAGS: dict[str, tuple[str, ...]] = {
    "CancelQueuedTask": ("QUEUED",),
    "CancelNotifiedTask": ("NOTIFIED",),
    "CancelInProgressTask": ("IN_PROGRESS",),
    "CancelUnconfirmedTask": ("CONFIRM",),
    "CancelScheduledTask": (),
}
# SimpleOTAJobInfo (ListOTAJobByFirmware, ListOTAJobByDevice): the job's fields it carries,
# each only when the job has it (UtcStartTime / UtcEndTime / Tags do not always apply).
JOB_INFO_FIELDS = (
    "JobId",
    "JobStatus",
    "JobType",
    "FirmwareId",
    "ProductKey",
    "SelectionType",
    "TargetSelection",
    "Tags",
    "UtcCreate",
    "UtcModified",
    "UtcStartTime",
    "UtcEndTime",
)


@dataclass
class Call:
    """One API request as the emulator saw and answered it.

    ``code`` is the Code sent back (None: success). Answers without a Code get emulator
    pseudo-codes: ``Emulator.Malformed`` (non-JSON 200) and ``Emulator.Reset`` (status 0,
    connection closed). ``scripted`` names the fail_next kind applied, if any.
    """

    action: str
    params: dict[str, str]
    access_key_id: str | None
    signature_version: str | None
    at: float
    status: int = 0
    code: str | None = None
    scripted: str | None = None


@dataclass
class _Script:
    kind: str
    remaining: int
    action: str | None
    retry_after: float | None
    status: int | None = None


class BusinessError(Exception):
    """An IoT-level failure: HTTP 200, ``Success: false``, ``ErrorMessage`` (not Message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ActionSpec:
    """An API action: its handler returns ``Data`` or raises BusinessError.

    With ``envelope`` the handler returns the body's top-level fields instead (paged lists
    put ``Total``, ``PageSize`` ... beside ``Data``); RequestId and Success are added.
    """

    handler: Callable[[IotEmulator, dict[str, str]], Any]
    required: tuple[str, ...] = ()
    envelope: bool = False


@dataclass
class _Answer:
    response: web.StreamResponse | None  # None: close the connection without answering
    delay: float
    status: int
    code: str | None
    scripted: str | None = None


def request_id() -> str:
    return str(uuid.uuid4()).upper()


def utc_text(moment: float) -> str:
    """The API's time format, ``2019-12-28T02:43:10.000Z``."""
    stamp = datetime.fromtimestamp(moment, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


class JobTasks:
    """One job's device tasks, indexed by status: a count is O(1) and a page is a slice.

    Task ``i`` (TaskIds sort by ``i``) is built on demand from the job and ``i``; only what
    differs from the generated task (hand-made devices, TaskDesc, moves) is stored, so
    100,000 tasks cost a status list and per-status index lists. ``set_tasks`` lays the
    statuses out in TASK_STATUSES order with devices ``dev-000000``, ``dev-000001`` ...

    Override dicts may be shared between tasks (move_many stamps every task it moves with
    one dict): they are copied before being changed, never edited in place.
    """

    def __init__(
        self, job_id: str, counts: dict[str, int], failure_reasons: Iterable[str] = ()
    ) -> None:
        for status, n in counts.items():
            if status not in TASK_STATUSES:
                raise ValueError(f"unknown task status {status!r}; expected {TASK_STATUSES}")
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise ValueError(f"task count for {status} must be an integer >= 0, not {n!r}")
        self.job_id = job_id
        self.failure_reasons = tuple(failure_reasons) or DEFAULT_FAILURE_REASONS
        self._stem = hashlib.sha256(job_id.encode()).hexdigest()[:18]
        self._status: list[str] = []
        self.by_status: dict[str, list[int]] = {}
        for status in TASK_STATUSES:
            start = len(self._status)
            n = counts.get(status, 0)
            self._status.extend([status] * n)
            self.by_status[status] = list(range(start, start + n))
        self._generated = len(self._status)
        self._failed_start = self.by_status["FAILED"][0] if self.by_status["FAILED"] else 0
        self._devices: dict[str, int] = {}  # hand-made device names
        self._overrides: dict[int, dict[str, str]] = {}  # API fields that differ

    def __len__(self) -> int:
        return len(self._status)

    def counts(self) -> dict[str, int]:
        return {status: len(self.by_status[status]) for status in TASK_STATUSES}

    def status_of(self, i: int) -> str:
        return self._status[i]

    def index_of_task(self, task_id: str) -> int | None:
        """The index of the task with ``task_id`` (stem + 8-digit index), None if not ours."""
        suffix = task_id[len(self._stem) :]
        if not task_id.startswith(self._stem) or not (suffix.isascii() and suffix.isdigit()):
            return None
        i = int(suffix)
        return i if i < len(self._status) and self.task_id(i) == task_id else None

    def index_of(self, device_name: str) -> int | None:
        if device_name in self._devices:
            return self._devices[device_name]
        match = GENERATED_DEVICE.match(device_name)
        if match:
            i = int(match[1])
            if i < self._generated and _generated_name(i) == device_name:
                return i
        return None

    def select(self, status: str | None, device_names: Sequence[str] = ()) -> Sequence[int]:
        """Task indices matching the filters, in TaskId order."""
        if not device_names:
            return range(len(self._status)) if status is None else self.by_status[status]
        found = {self.index_of(name) for name in device_names}
        return sorted(
            i for i in found if i is not None and (status is None or self._status[i] == status)
        )

    def add(
        self, device_name: str, status: str, desc: str | None, src_version: str | None, now: str
    ) -> int:
        _check_task_status(status)
        if self.index_of(device_name) is not None:
            raise ValueError(f"device {device_name!r} already has a task in job {self.job_id}")
        i = len(self._status)
        self._status.append(status)
        self.by_status[status].append(i)  # the highest index: the list stays sorted
        self._devices[device_name] = i
        fields = {"DeviceName": device_name, "UtcCreate": now, "UtcModified": now}
        if desc is not None:
            fields["TaskDesc"] = desc
        if src_version is not None:
            fields["SrcVersion"] = src_version
        self._overrides[i] = fields
        return i

    def move(self, device_name: str, status: str, desc: str | None, now: str) -> None:
        _check_task_status(status)
        i = self.index_of(device_name)
        if i is None:
            raise KeyError(f"no task for device {device_name!r} in job {self.job_id}")
        old = self.by_status[self._status[i]]
        del old[bisect_left(old, i)]
        insort(self.by_status[status], i)
        self._status[i] = status
        fields = dict(self._overrides.get(i, {}))  # copied: move_many shares its stamp
        fields["UtcModified"] = now
        if desc is None:
            fields.pop("TaskDesc", None)
        else:
            fields["TaskDesc"] = desc
        self._overrides[i] = fields

    def move_statuses(
        self, statuses: Iterable[str], status: str, desc: str | None, now: str
    ) -> int:
        """Move every task in one of ``statuses`` to ``status``; see move_many."""
        wanted = [s for s in dict.fromkeys(statuses) if s != status]
        for s in [*wanted, status]:
            _check_task_status(s)
        return self.move_many(
            itertools.chain.from_iterable(self.by_status[s] for s in wanted), status, desc, now
        )

    def move_many(self, indices: Iterable[int], status: str, desc: str | None, now: str) -> int:
        """Move tasks ``indices`` to ``status`` in one O(n) pass and return how many moved.

        Unlike ``move`` (a bisect delete per task), the per-status index lists are rebuilt
        once, so 100,000 tasks move in a few tens of milliseconds. Each moved task gets
        UtcModified ``now`` and TaskDesc ``desc`` (None: the status's default); tasks with
        no override share one stamp dict, so only what differs is stored. Tasks already in
        ``status`` are left alone.
        """
        _check_task_status(status)
        moving = sorted({i for i in indices if self._status[i] != status})
        if not moving:
            return 0
        stamp = {"UtcModified": now} if desc is None else {"UtcModified": now, "TaskDesc": desc}
        sources = set()
        for i in moving:
            sources.add(self._status[i])
            self._status[i] = status
            old = self._overrides.get(i)
            if old is None or old.keys() <= _STAMP_KEYS:  # nothing of its own to keep
                self._overrides[i] = stamp
            else:
                fields = {**old, **stamp}
                if desc is None:
                    fields.pop("TaskDesc", None)
                self._overrides[i] = fields
        for source in sources:
            self.by_status[source] = [
                i for i in self.by_status[source] if self._status[i] == source
            ]
        # Two sorted runs: Timsort merges them in linear time.
        self.by_status[status] = sorted(self.by_status[status] + moving)
        return len(moving)

    def task_id(self, i: int) -> str:
        return f"{self._stem}{i:08d}"

    def render(self, job: dict[str, Any], i: int) -> dict[str, Any]:
        """SimpleOTATaskInfo for task ``i``, built from the job as it is now."""
        status = self._status[i]
        fields = self._overrides.get(i, {})
        device = fields.get("DeviceName") or _generated_name(i)
        product_key = job.get("ProductKey") or ""
        versions = _src_versions(job)
        if status == "FAILED":
            reasons = self.failure_reasons
            desc = reasons[(i - self._failed_start) % len(reasons)]
        else:
            desc = ""
        started = job.get("UtcStartTime") or job.get("UtcCreate") or ""
        timeout = job.get("TimeoutInMinutes")
        return {
            "TaskId": self.task_id(i),
            "TaskStatus": status,
            "Progress": _progress(status, i),
            "TaskDesc": fields.get("TaskDesc", desc),
            "Timeout": "" if timeout is None else str(timeout),
            "DeviceName": device,
            "IotId": hashlib.sha256(f"{product_key}/{device}".encode()).hexdigest()[:26],
            "ProductKey": product_key,
            "ProductName": PRODUCT_NAME,
            "SrcVersion": fields.get("SrcVersion", versions[i % len(versions)]),
            "DestVersion": job.get("DestVersion") or "",
            "FirmwareId": job.get("FirmwareId") or "",
            "JobId": job.get("JobId") or self.job_id,
            "UtcCreate": fields.get("UtcCreate", started),
            "UtcModified": fields.get("UtcModified", job.get("UtcModified") or started),
        }


# What move_many writes on every task it moves.
_STAMP_KEYS = frozenset({"UtcModified", "TaskDesc"})


def _firmware_fields(
    firmware_id: str, name: str, product_key: str, dest_version: str, created: str
) -> dict[str, Any]:
    """SimpleFirmwareInfo of a verified (Status 1) full package, size from the FirmwareId.

    A full package (Type 0) has no version to update from: SrcVersion is "" (only
    differential packages, Type 1, name one; add_firmware can give one).
    """
    digest = hashlib.sha256(firmware_id.encode()).hexdigest()
    return {
        "FirmwareId": firmware_id,
        "FirmwareName": name,
        "ProductKey": product_key,
        "ProductName": PRODUCT_NAME,
        "SrcVersion": "",
        "DestVersion": dest_version,
        "ModuleName": "default",
        "Status": 1,
        "Type": 0,
        "FirmwareSize": 1_048_576 + int(digest[:6], 16) % 7_340_032,
        "SignMethod": "MD5",
        "UtcCreate": created,
        "UtcModified": created,
    }


def _generated_name(i: int) -> str:
    return f"dev-{i:06d}"


def _check_task_status(status: str) -> None:
    if status not in TASK_STATUSES:
        raise ValueError(f"unknown task status {status!r}; expected one of {TASK_STATUSES}")


def _src_versions(job: dict[str, Any]) -> list[str]:
    value = job.get("SrcVersions")
    versions = value.get("SrcVersion") if isinstance(value, dict) else value
    if isinstance(versions, list) and versions:
        return [str(v) for v in versions]
    return [FALLBACK_SRC_VERSION]


def _progress(status: str, i: int) -> str:
    if status == "SUCCEEDED":
        return "100"
    if status == "IN_PROGRESS":
        return str(5 + (i * 37) % 90)
    if status == "FAILED":
        return str((i * 53) % 100)
    return "0"


def _query_ota_job(emu: IotEmulator, params: dict[str, str]) -> dict[str, Any]:
    return emu.find_job(params["JobId"], _instance(params))


def _list_ota_task_by_job(emu: IotEmulator, params: dict[str, str]) -> dict[str, Any]:
    status = params.get("TaskStatus") or None
    if status is not None and status not in TASK_STATUSES:
        raise BusinessError(INVALID_FORMAT_CODE, "The TaskStatus parameter is invalid.")
    page, size = _paging(params)
    job = emu.find_job(params["JobId"], _instance(params))
    tasks = emu._tasks_of(params["JobId"])
    selected = tasks.select(status, _flat_list(params, "DeviceNames"))
    start = (page - 1) * size
    rows = [tasks.render(job, i) for i in selected[start : start + size]]
    return _page(len(selected), page, size, "Data", "SimpleOTATaskInfo", rows)


def _list_ota_firmware(emu: IotEmulator, params: dict[str, str]) -> dict[str, Any]:
    page, size = _paging(params)
    product_key = params.get("ProductKey") or None
    dest_version = params.get("DestVersion") or None
    found = [
        firmware
        for firmware in emu.firmwares(_instance(params))
        if (product_key is None or firmware.get("ProductKey") == product_key)
        and (dest_version is None or firmware.get("DestVersion") == dest_version)
    ]
    start = (page - 1) * size
    rows = found[start : start + size]
    return _page(len(found), page, size, "FirmwareInfo", "SimpleFirmwareInfo", rows)


def _list_ota_job_by_firmware(emu: IotEmulator, params: dict[str, str]) -> dict[str, Any]:
    page, size = _paging(params)
    firmware_id = params["FirmwareId"]
    jobs = [
        job
        for _, job in emu.visible_jobs(_instance(params))
        if job.get("FirmwareId") == firmware_id
    ]
    return _job_page(jobs, page, size)


def _list_ota_job_by_device(emu: IotEmulator, params: dict[str, str]) -> dict[str, Any]:
    page, size = _paging(params)
    firmware_id, product_key = params["FirmwareId"], params["ProductKey"]
    device_name = params["DeviceName"]
    jobs = [
        job
        for job_id, job in emu.visible_jobs(_instance(params))
        if job.get("FirmwareId") == firmware_id
        and job.get("ProductKey") == product_key
        and emu._tasks_of(job_id).index_of(device_name) is not None
    ]
    return _job_page(jobs, page, size)


def _job_page(jobs: list[dict[str, Any]], page: int, size: int) -> dict[str, Any]:
    """SimpleOTAJobInfo rows, newest UtcCreate first (ties: the order jobs were added)."""
    newest = sorted(jobs, key=lambda job: job.get("UtcCreate") or "", reverse=True)
    start = (page - 1) * size
    rows = [
        {k: job[k] for k in JOB_INFO_FIELDS if k in job} for job in newest[start : start + size]
    ]
    return _page(len(newest), page, size, "Data", "SimpleOTAJobInfo", rows)


def _cancel_ota_strategy_by_job(emu: IotEmulator, params: dict[str, str]) -> dict[str, Any]:
    job = emu.find_job(params["JobId"], _instance(params))
    if job.get("SelectionType") != "DYNAMIC":
        raise BusinessError(
            JOB_NOT_DYNAMIC_CODE, "Only a dynamic OTA job has an upgrade strategy to cancel."
        )
    emu.canceled_strategies.add(params["JobId"])
    return {}


def _cancel_ota_task_by_job(emu: IotEmulator, params: dict[str, str]) -> dict[str, Any]:
    flags = {name: _bool_param(params, name) for name in CANCEL_FLAGS}
    if not any(flags.values()):
        raise BusinessError(
            INVALID_FORMAT_CODE, f"At least one of {', '.join(CANCEL_FLAGS)} must be true."
        )
    job_id = params["JobId"]
    job = emu.find_job(job_id, _instance(params))
    statuses = [s for name, on in flags.items() if on for s in CANCEL_FLAGS[name]]
    if flags["CancelScheduledTask"] and job.get("JobStatus") == "PLANNED":
        emu.set_status(job_id, "CANCELED")
        statuses += ["QUEUED", "CONFIRM"]
    now = utc_text(emu.clock())
    emu._tasks_of(job_id).move_statuses(statuses, "CANCELED", CANCELED_DESC, now)
    return {}


def _reupgrade_ota_task(emu: IotEmulator, params: dict[str, str]) -> dict[str, Any]:
    task_ids = _flat_list(params, "TaskId")
    if not 1 <= len(task_ids) <= MAX_REUPGRADE_TASKS:
        raise BusinessError(
            INVALID_FORMAT_CODE, f"TaskId takes 1 to {MAX_REUPGRADE_TASKS} task IDs."
        )
    job_id = params["JobId"]
    job = emu.find_job(job_id, _instance(params))
    tasks = emu._tasks_of(job_id)
    indices = []
    for task_id in dict.fromkeys(task_ids):  # all checked before any task moves
        i = tasks.index_of_task(task_id)
        if i is None:
            raise BusinessError(TASK_STATUS_CODE, f"The task {task_id} is not in this OTA job.")
        if tasks.status_of(i) not in ("FAILED", "CANCELED"):
            raise BusinessError(
                TASK_STATUS_CODE, f"The task {task_id} is neither FAILED nor CANCELED."
            )
        indices.append(i)
    # A job that needs confirmation sends re-upgraded tasks back to be confirmed.
    status = "CONFIRM" if job.get("NeedConfirm") is True else "QUEUED"
    tasks.move_many(indices, status, None, utc_text(emu.clock()))
    return {}


def _instance(params: dict[str, str]) -> str | None:
    return params.get("IotInstanceId") or None


def _paging(params: dict[str, str]) -> tuple[int, int]:
    """(CurrentPage, PageSize), default (1, 10); InvalidPageParams outside 1.. and 1..100."""
    page = _page_param(params, "CurrentPage", 1)
    size = _page_param(params, "PageSize", 10)
    if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
        raise _invalid_page()
    return page, size


def _page(
    total: int, page: int, size: int, outer: str, inner: str, rows: list[Any]
) -> dict[str, Any]:
    return {
        "Total": total,
        "PageSize": size,
        "PageCount": math.ceil(total / size),
        "CurrentPage": page,
        outer: {inner: rows},
    }


def _bool_param(params: dict[str, str], name: str) -> bool:
    """A "true"/"false" parameter (any case); absent or empty is false."""
    value = (params.get(name) or "false").lower()
    if value not in ("true", "false"):
        raise BusinessError(INVALID_FORMAT_CODE, f"The {name} parameter is invalid.")
    return value == "true"


def _page_param(params: dict[str, str], name: str, default: int) -> int:
    value = params.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise _invalid_page() from None


def _flat_list(params: dict[str, str], name: str) -> list[str]:
    """``Name.1=a&Name.2=b`` -> ``["a", "b"]`` in index order, empty values dropped."""
    pattern = re.compile(rf"^{re.escape(name)}\.(\d+)$")
    items = []
    for key, value in params.items():
        match = pattern.match(key)
        if match and value:
            items.append((int(match[1]), value))
    return [value for _, value in sorted(items)]


ACTIONS: dict[str, ActionSpec] = {
    "QueryOTAJob": ActionSpec(_query_ota_job, required=("JobId",)),
    "ListOTATaskByJob": ActionSpec(_list_ota_task_by_job, required=("JobId",), envelope=True),
    "ListOTAFirmware": ActionSpec(_list_ota_firmware, envelope=True),
    "ListOTAJobByFirmware": ActionSpec(
        _list_ota_job_by_firmware, required=("FirmwareId",), envelope=True
    ),
    "ListOTAJobByDevice": ActionSpec(
        _list_ota_job_by_device,
        required=("ProductKey", "DeviceName", "FirmwareId"),
        envelope=True,
    ),
    # Write actions answer only RequestId and Success: their handlers return {}.
    "CancelOTAStrategyByJob": ActionSpec(
        _cancel_ota_strategy_by_job, required=("JobId",), envelope=True
    ),
    "CancelOTATaskByJob": ActionSpec(_cancel_ota_task_by_job, required=("JobId",), envelope=True),
    "ReupgradeOTATask": ActionSpec(_reupgrade_ota_task, required=("JobId",), envelope=True),
}


class IotEmulator:
    """The gateway plus an in-memory store of OTA jobs.

    Instance scoping is strict: a job added with an ``instance_id`` is visible only to
    requests whose IotInstanceId matches (otherwise iot.system.InstanceNotFound), and a job
    without one only to requests that send no IotInstanceId (a request naming a known
    instance gets iot.ota.JobNotFound for it; an unknown instance, InstanceNotFound).

    With ``auto_jobs=True`` any unknown JobId made of letters, digits, '-' and '_' is
    answered with a freshly minted IN_PROGRESS job (fixtures.make_job), stored so that
    set_status works on it afterwards: benchmarks can ask for as many jobs as they like.

    List actions (ListOTAFirmware, ListOTAJobByFirmware, ListOTAJobByDevice) see only the
    jobs and firmwares of the request's scope: an instance's with its IotInstanceId, the
    unscoped ones without; an IotInstanceId no job or firmware has is InstanceNotFound.

    ``qps`` applies to QueryOTAJob, ListOTATaskByJob and every action without a fixed
    quota (QueryOTAFirmware and ReupgradeOTATask 20/s, CancelOTATaskByJob 5/s: these hold
    even with ``qps`` 0); 0 or math.inf disables it.

    ``tasks`` holds each job's device tasks (JobTasks) for ListOTATaskByJob. add_job (and
    so each fixture and each auto_jobs job) gives a job fixtures.default_tasks(job);
    set_tasks, add_task and set_task_status change them, task_status_of reads one. Tasks do
    not follow set_status. CancelOTATaskByJob and ReupgradeOTATask move tasks (and
    CancelScheduledTask cancels a PLANNED job); CancelOTAStrategyByJob records the JobId in
    ``canceled_strategies``.

    Firmwares (ListOTAFirmware) are derived from the stored jobs, one per FirmwareId and
    scope (see ``firmwares``), plus those given to add_firmware.
    """

    def __init__(
        self,
        *,
        credentials: dict[str, str] | None = None,
        sts_tokens: dict[str, str] | None = None,
        jobs: dict[str, dict] | None = None,
        qps: float = 10,
        latency: float = 0.0,
        clock: Callable[[], float] = time.time,
        auto_jobs: bool = False,
    ) -> None:
        self.credentials = (
            dict(credentials)
            if credentials is not None
            else {DEMO_ACCESS_KEY_ID: DEMO_ACCESS_KEY_SECRET}
        )
        self.sts_tokens = (
            dict(sts_tokens)
            if sts_tokens is not None
            else {DEMO_ACCESS_KEY_ID: DEMO_SECURITY_TOKEN}
        )
        self.qps = qps
        self.latency = latency
        self.clock = clock
        self.auto_jobs = auto_jobs
        self.base_url = ""
        self.calls: list[Call] = []
        self.jobs: dict[str, dict] = {}
        self.tasks: dict[str, JobTasks] = {}
        self.canceled_strategies: set[str] = set()  # JobIds, by CancelOTAStrategyByJob
        self._instance_of: dict[str, str | None] = {}
        self._firmwares: dict[tuple[str | None, str], dict[str, Any]] = {}  # add_firmware
        for data in (default_jobs() if jobs is None else jobs).values():
            self.add_job(data)
        self._scripts: list[_Script] = []
        self._windows: dict[tuple[str, str], deque[float]] = {}
        # (AccessKeyId, nonce) -> when it may be forgotten, and the same as a min-heap.
        self._nonces: dict[tuple[str, str], float] = {}
        self._nonce_expiry: list[tuple[float, tuple[str, str]]] = []
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()

    # --- lifecycle ------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._stopping = asyncio.Event()
        # No access log: its request line would carry SecurityToken for V2 calls.
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound = self._runner.addresses[0][1]
        shown = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{shown}:{bound}"
        return self.base_url

    async def stop(self) -> None:
        self._stopping.set()  # wakes "slow" and latency sleeps so shutdown is immediate
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> IotEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("POST", "/", self._handle_api)
        app.router.add_route("GET", "/", self._handle_api)
        app.router.add_get("/_emulator/calls", self._handle_calls)
        app.router.add_get("/_emulator/jobs", self._handle_jobs)
        app.router.add_post("/_emulator/jobs/{job_id}/status", self._handle_set_status)
        app.router.add_get("/_emulator/jobs/{job_id}/tasks", self._handle_tasks)
        app.router.add_post("/_emulator/jobs/{job_id}/tasks", self._handle_set_tasks)
        return app

    # --- test controls --------------------------------------------------------------

    def count(self, action: str = "QueryOTAJob", code: str | None = None) -> int:
        return sum(1 for c in self.calls if c.action == action and (code is None or c.code == code))

    def add_job(self, data: dict, *, instance_id: str | None = None) -> None:
        """Store a job (replacing one with its JobId) with fixtures.default_tasks(data)."""
        job_id = data["JobId"]
        self.jobs[job_id] = data
        self._instance_of[job_id] = instance_id
        counts, reasons = default_tasks(data)
        self.tasks[job_id] = JobTasks(job_id, counts, reasons)

    def set_tasks(
        self,
        job_id: str,
        counts: dict[str, int],
        *,
        failure_reasons: Iterable[str] | None = None,
    ) -> None:
        """Replace the job's tasks with ``counts[status]`` generated tasks per status.

        FAILED tasks' TaskDesc cycles through ``failure_reasons`` (default
        fixtures.DEFAULT_FAILURE_REASONS). ValueError for an unknown status or a count that
        is not an integer >= 0; KeyError for an unknown job.
        """
        if job_id not in self.jobs:
            raise KeyError(job_id)
        self.tasks[job_id] = JobTasks(job_id, counts, failure_reasons or ())

    def add_task(
        self,
        job_id: str,
        *,
        device_name: str,
        status: str,
        desc: str | None = None,
        src_version: str | None = None,
    ) -> str:
        """Add one hand-made task (after the others) and return its TaskId.

        ``desc`` None gives the default TaskDesc (a failure reason if FAILED, else "").
        ValueError if the device already has a task in the job or the status is unknown.
        """
        tasks = self._tasks_of(job_id)
        now = utc_text(self.clock())
        return tasks.task_id(tasks.add(device_name, status, desc, src_version, now))

    def set_task_status(
        self, job_id: str, device_name: str, status: str, desc: str | None = None
    ) -> None:
        """Move one device's task to ``status`` (``desc`` as for add_task), stamping it."""
        self._tasks_of(job_id).move(device_name, status, desc, utc_text(self.clock()))

    def task_status_of(self, job_id: str, device_name: str) -> str:
        """The TaskStatus of the device's task in the job; KeyError for no job or no task."""
        tasks = self._tasks_of(job_id)
        i = tasks.index_of(device_name)
        if i is None:
            raise KeyError(f"no task for device {device_name!r} in job {job_id}")
        return tasks.status_of(i)

    def add_firmware(self, data: dict, *, instance_id: str | None = None) -> dict[str, Any]:
        """Store a firmware for ListOTAFirmware and return it as the API will show it.

        ``data`` needs FirmwareId; missing SimpleFirmwareInfo fields get defaults
        (UtcCreate and UtcModified: now). It replaces a firmware of the same FirmwareId in
        the same scope, derived from the jobs or added before.
        """
        firmware_id = data["FirmwareId"]
        now = utc_text(self.clock())
        firmware = {
            **_firmware_fields(firmware_id, firmware_id, "", "", now),
            **data,
        }
        self._firmwares[(instance_id, firmware_id)] = firmware
        return firmware

    def firmwares(self, instance_id: str | None = None) -> list[dict[str, Any]]:
        """SimpleFirmwareInfo of the scope's firmwares, newest UtcCreate first.

        Each FirmwareId of the scope's jobs gives one firmware: ProductKey, DestVersion and
        FirmwareName (the job's Name) from its earliest job (UtcCreate, then the order jobs
        were added), whose UtcCreate it takes. add_firmware's firmwares replace or add to
        those. InstanceNotFound (BusinessError) for an unknown ``instance_id``.
        """
        found: dict[str, dict[str, Any]] = {}
        oldest = sorted(
            (job for _, job in self.visible_jobs(instance_id)),
            key=lambda job: job.get("UtcCreate") or "",
        )
        for job in oldest:
            firmware_id = job.get("FirmwareId")
            if firmware_id and firmware_id not in found:
                found[firmware_id] = _firmware_fields(
                    firmware_id,
                    job.get("Name") or firmware_id,
                    job.get("ProductKey") or "",
                    job.get("DestVersion") or "",
                    job.get("UtcCreate") or "",
                )
        for (scope, firmware_id), firmware in self._firmwares.items():
            if scope == instance_id:
                found[firmware_id] = firmware
        return sorted(found.values(), key=lambda f: f.get("UtcCreate") or "", reverse=True)

    def visible_jobs(self, instance_id: str | None) -> list[tuple[str, dict[str, Any]]]:
        """(JobId, job) of the scope's jobs in the order they were added.

        InstanceNotFound (BusinessError) for an ``instance_id`` no job or firmware has.
        """
        self._check_instance(instance_id)
        return [
            (job_id, job)
            for job_id, job in self.jobs.items()
            if self._instance_of.get(job_id) == instance_id
        ]

    def task_counts(self, job_id: str) -> dict[str, int]:
        """Per-status task counts of a job, every status present."""
        return self._tasks_of(job_id).counts()

    def _tasks_of(self, job_id: str) -> JobTasks:
        if job_id not in self.jobs:
            raise KeyError(job_id)
        if job_id not in self.tasks:  # a job put straight into ``jobs``
            self.tasks[job_id] = JobTasks(job_id, {})
        return self.tasks[job_id]

    def set_status(self, job_id: str, status: str) -> None:
        """Move a job to ``status``, stamping the times the API would show for it."""
        if status not in JOB_STATUSES:
            raise ValueError(f"unknown job status {status!r}; expected one of {JOB_STATUSES}")
        job = self.jobs[job_id]  # KeyError for an unknown job, on purpose
        now = utc_text(self.clock())
        job["JobStatus"] = status
        job["UtcModified"] = now
        if status == "PLANNED":
            job.pop("UtcStartTime", None)
            job.pop("UtcEndTime", None)
        elif status == "IN_PROGRESS":
            job["UtcStartTime"] = now
            job.pop("UtcEndTime", None)
        else:
            job["UtcEndTime"] = now

    def fail_next(
        self,
        kind: str,
        *,
        count: int = 1,
        action: str | None = None,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        """Script failures for the next ``count`` well-signed calls (of ``action`` if given).

        ``retry_after`` (throttle only) is in seconds; it is sent as ``x-acs-retry-after`` in
        milliseconds, the unit Alibaba's SDKs read it in (aliyun/darabonba-openapi,
        csharp/OpenApiClientUnitTests/UtilsThrottlingTest.cs: "2000" -> 2000 ms); None
        sends no header. ``status`` (business only, default 200) is the HTTP status of the
        ``Success: false`` answer: the reference ("Errors") has IoT business errors both
        under HTTP 200 and under 4xx/5xx. Scripts queue in order.
        """
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {kind!r}; expected one of {FAILURE_KINDS}")
        if retry_after is not None and kind != "throttle":
            raise ValueError("retry_after applies to the throttle kind only")
        if status is not None and (kind != "business" or not 200 <= status <= 599):
            raise ValueError("status applies to the business kind only, as 200..599")
        if count > 0:
            self._scripts.append(_Script(kind, count, action, retry_after, status))

    def reset(self) -> None:
        self.calls.clear()
        self._scripts.clear()
        self._windows.clear()
        self._nonces.clear()
        self._nonce_expiry.clear()

    def find_job(self, job_id: str, instance_id: str | None) -> dict[str, Any]:
        if job_id not in self.jobs and self.auto_jobs and WELL_FORMED_JOB_ID.match(job_id):
            self.add_job(make_job(job_id), instance_id=instance_id)
        self._check_instance(instance_id)
        if job_id not in self.jobs:
            raise _job_not_found()
        scope = self._instance_of.get(job_id)  # a job put straight into ``jobs``: unscoped
        if scope != instance_id:
            raise _instance_not_found() if scope is not None else _job_not_found()
        return self.jobs[job_id]

    def _check_instance(self, instance_id: str | None) -> None:
        """InstanceNotFound for an IotInstanceId that no job or firmware was added under."""
        if instance_id is None:
            return
        if instance_id not in self._instance_of.values() and not any(
            scope == instance_id for scope, _ in self._firmwares
        ):
            raise _instance_not_found()

    # --- the API --------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        arrived = self.clock()
        wire = WireRequest(
            method=request.method,
            raw_query=request.rel_url.raw_query_string,  # undecoded, as signed
            headers=request.headers,
            body=await request.read(),
            path=request.rel_url.raw_path,
        )
        seen = describe(wire)
        params = dict(seen.params)
        if "SecurityToken" in params:
            params["SecurityToken"] = REDACTED
        call = Call(seen.action, params, seen.access_key_id, seen.signature_version, arrived)
        self.calls.append(call)
        answer = self._answer(wire, request.host, arrived)
        call.status, call.code, call.scripted = answer.status, answer.code, answer.scripted
        log.info(
            "%s %s -> %s %s", call.action or "-", call.signature_version, call.status, call.code
        )
        await self._pause(answer.delay)
        if answer.response is None:
            if request.transport is not None:
                request.transport.abort()
            # Nothing is sent: aiohttp drops a response it cannot write to a closed socket.
            return web.Response(status=500)
        return answer.response

    def _answer(self, wire: WireRequest, host: str, arrived: float) -> _Answer:
        rid = request_id()
        try:
            verified = verify(
                wire, credentials=self.credentials, sts_tokens=self.sts_tokens, now=arrived
            )
            # Nonce replay after the signature: a forged request cannot burn a nonce.
            self._use_nonce(verified, arrived)
            if verified.version != API_VERSION:
                raise GatewayError(
                    400, "InvalidVersion", "Specified parameter Version is not valid."
                )
            spec = ACTIONS.get(verified.action)
            if spec is None:
                raise GatewayError(
                    404,
                    "InvalidAction.NotFound",
                    "Specified api is not found, please check your url and method.",
                )
            script = self._take_script(verified.action)
            if script is not None:
                return self._scripted(script, verified, spec, host, rid, arrived)
            return self._run(verified, spec, host, rid, arrived)
        except GatewayError as err:
            return self._gateway_error(err, host, rid)

    def _run(
        self, verified: Verified, spec: ActionSpec, host: str, rid: str, arrived: float
    ) -> _Answer:
        wait = self._admit(verified.access_key_id, verified.action, arrived)
        if wait is not None:
            # The reference ("Errors"): a throttling answer may carry x-acs-retry-after,
            # how long to wait; here the time until the window frees a slot, in ms.
            raise _throttled({RETRY_AFTER: _milliseconds(wait)})
        for name in spec.required:
            if not verified.params.get(name):
                raise missing(name)
        try:
            data = spec.handler(self, verified.params)
        except BusinessError as err:
            return self._business_error(err, rid)
        if spec.envelope:
            body = {"RequestId": rid, "Success": True, **data}
        else:
            body = {"RequestId": rid, "Success": True, "Data": data}
        return _Answer(_json(200, body, rid), self.latency, 200, None)

    def _scripted(
        self,
        script: _Script,
        verified: Verified,
        spec: ActionSpec,
        host: str,
        rid: str,
        arrived: float,
    ) -> _Answer:
        kind = script.kind
        answer: _Answer
        if kind == "throttle":
            headers = {}
            if script.retry_after is not None:
                headers[RETRY_AFTER] = str(round(script.retry_after * 1000))
            answer = self._gateway_error(_throttled(headers), host, rid)
        elif kind == "server_error":
            answer = self._gateway_error(
                GatewayError(
                    503,
                    "ServiceUnavailable",
                    "The request has failed due to a temporary failure of the server.",
                ),
                host,
                rid,
            )
        elif kind == "internal":
            answer = self._gateway_error(
                GatewayError(
                    500,
                    "InternalError",
                    "The request processing has failed due to some unknown error, "
                    "exception or failure.",
                ),
                host,
                rid,
            )
        elif kind == "business":
            answer = self._business_error(
                BusinessError("iot.system.SystemException", "A system exception occurred."),
                rid,
                script.status or 200,
            )
        elif kind == "malformed":
            page = "<html><head><title>502 Bad Gateway</title></head><body>Tengine</body></html>"
            response = web.Response(status=200, text=page, content_type="text/html")
            answer = _Answer(response, self.latency, 200, "Emulator.Malformed")
        elif kind == "garbled":
            try:
                answer = self._run(verified, spec, host, rid, arrived)
            except GatewayError as err:
                answer = self._gateway_error(err, host, rid)
            body = '{"RequestId": "' + rid + '", "Data": ' + "[" * GARBLED_DEPTH
            body += "]" * GARBLED_DEPTH + "}"
            response = web.Response(status=200, text=body, content_type="application/json")
            answer = _Answer(response, self.latency, 200, "Emulator.Garbled")
        elif kind == "slow":
            try:
                answer = self._run(verified, spec, host, rid, arrived)
            except GatewayError as err:
                answer = self._gateway_error(err, host, rid)
            answer.delay = SLOW_SECONDS
        else:  # reset
            answer = _Answer(None, self.latency, 0, "Emulator.Reset")
        answer.scripted = kind
        return answer

    def _gateway_error(self, err: GatewayError, host: str, rid: str) -> _Answer:
        # Gateway errors, 4xx and 5xx alike: JSON {RequestId, HostId, Code, Message,
        # Recommend} (reference "Errors"); HostId is the endpoint host the call was sent to.
        body = {
            "RequestId": rid,
            "HostId": host,
            "Code": err.code,
            "Message": err.message,
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={err.code}&product=Iot&requestId={rid}",
        }
        return _Answer(
            _json(err.status, body, rid, err.headers), self.latency, err.status, err.code
        )

    def _business_error(self, err: BusinessError, rid: str, status: int = 200) -> _Answer:
        # IoT business errors: {RequestId, Success: false, Code, ErrorMessage} (ErrorMessage,
        # not Message), under HTTP 200 or 4xx/5xx (reference "Errors").
        body = {"RequestId": rid, "Success": False, "Code": err.code, "ErrorMessage": err.message}
        return _Answer(_json(status, body, rid), self.latency, status, err.code)

    def _take_script(self, action: str) -> _Script | None:
        for script in self._scripts:
            if script.action is None or script.action == action:
                script.remaining -= 1
                if script.remaining <= 0:
                    self._scripts.remove(script)
                return script
        return None

    def _use_nonce(self, verified: Verified, now: float) -> None:
        """SignatureNonceUsed for a nonce seen (with this AccessKeyId) while still usable.

        Reference "Errors" (SignatureNonceUsed) and Alibaba's V2 signature doc (the nonce
        "prevents replay attacks"). A replay carries the same signed timestamp, which stays
        acceptable until timestamp + WINDOW_SECONDS (verify.check_timestamp), so the nonce is
        kept until then, or WINDOW_SECONDS after arrival if later: a client clock running
        ahead cannot outlive the memory of its nonce.
        """
        while self._nonce_expiry and self._nonce_expiry[0][0] <= now:
            _, old = heapq.heappop(self._nonce_expiry)
            if self._nonces.get(old, math.inf) <= now:
                del self._nonces[old]
        key = (verified.access_key_id, verified.nonce)
        if key in self._nonces:
            raise GatewayError(
                400, "SignatureNonceUsed", "Specified signature nonce was used already."
            )
        expiry = max(now, verified.timestamp) + WINDOW_SECONDS
        self._nonces[key] = expiry
        heapq.heappush(self._nonce_expiry, (expiry, key))

    def _admit(self, access_key_id: str, action: str, now: float) -> float | None:
        """Sliding-window quota per key and action; only admitted calls take a slot.

        None: admitted. Otherwise the seconds until the oldest call leaves the window.
        """
        limit = FIXED_QUOTAS.get(action, self.qps)
        if limit <= 0 or math.isinf(limit):
            return None
        span = max(1.0, 1.0 / limit)  # under 1 qps: one call per 1/qps seconds
        allowed = max(1, math.floor(limit * span + 1e-9))
        window = self._windows.setdefault((access_key_id, action), deque())
        while window and window[0] <= now - span:
            window.popleft()
        if len(window) >= allowed:
            return window[0] + span - now
        window.append(now)
        return None

    async def _pause(self, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)

    # --- control paths (no signature: for people driving the emulator by hand) ----------

    async def _handle_calls(self, request: web.Request) -> web.Response:
        return web.json_response([asdict(c) for c in self.calls])

    async def _handle_jobs(self, request: web.Request) -> web.Response:
        return web.json_response(self.jobs)

    async def _handle_set_status(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        try:
            status = (await request.json())["status"]
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": 'expected JSON {"status": "..."}'}, status=400)
        if job_id not in self.jobs:
            return web.json_response({"error": f"no job {job_id}"}, status=404)
        try:
            self.set_status(job_id, status)
        except ValueError as err:
            return web.json_response({"error": str(err)}, status=400)
        return web.json_response(self.jobs[job_id])

    async def _handle_tasks(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        if job_id not in self.jobs:
            return web.json_response({"error": f"no job {job_id}"}, status=404)
        return web.json_response(self._tasks_summary(job_id))

    async def _handle_set_tasks(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        usage = 'expected JSON {"counts": {"SUCCEEDED": 10, ...}, "failure_reasons": [...]}'
        try:
            body = await request.json()
            counts = body["counts"]
            reasons = body.get("failure_reasons") or []
        except (ValueError, KeyError, TypeError, AttributeError):
            return web.json_response({"error": usage}, status=400)
        if (
            not isinstance(counts, dict)
            or not isinstance(reasons, list)
            or not all(isinstance(r, str) for r in reasons)
        ):
            return web.json_response({"error": usage}, status=400)
        if job_id not in self.jobs:
            return web.json_response({"error": f"no job {job_id}"}, status=404)
        try:
            self.set_tasks(job_id, counts, failure_reasons=reasons)
        except ValueError as err:
            return web.json_response({"error": str(err)}, status=400)
        return web.json_response(self._tasks_summary(job_id))

    def _tasks_summary(self, job_id: str) -> dict[str, Any]:
        counts = self.task_counts(job_id)
        return {"JobId": job_id, "Total": sum(counts.values()), "counts": counts}


def _json(
    status: int, body: dict[str, Any], rid: str, headers: dict[str, str] | None = None
) -> web.Response:
    # Serialised now, so the answer reflects the job as it was when the call arrived.
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type="application/json",
        headers={"x-acs-request-id": rid, **(headers or {})},
    )


def _milliseconds(seconds: float) -> str:
    """An ``x-acs-retry-after`` value: whole milliseconds, at least 1."""
    return str(max(1, math.ceil(seconds * 1000)))


def _throttled(headers: dict[str, str] | None = None) -> GatewayError:
    # HTTP 400 with Code Throttling.*, as Alibaba's SDK test servers answer flow control
    # (aliyun/darabonba-openapi, csharp/OpenApiClientUnitTests/Mock/MockHttpServer.cs).
    return GatewayError(
        400, "Throttling.User", "Request was denied due to user flow control.", headers
    )


def _instance_not_found() -> BusinessError:
    return BusinessError("iot.system.InstanceNotFound", "The specified instance does not exist.")


def _invalid_page() -> BusinessError:
    return BusinessError(
        "iot.common.InvalidPageParams", "The specified page size or page number is invalid."
    )


def _job_not_found() -> BusinessError:
    # No public source names the real code for an unknown JobId; this one is our guess.
    return BusinessError("iot.ota.JobNotFound", "The OTA job does not exist.")
