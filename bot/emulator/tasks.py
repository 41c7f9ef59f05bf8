"""One job's device tasks (ListOTATaskByJob's SimpleOTATaskInfo), indexed by status."""

from __future__ import annotations

import hashlib
import itertools
import re
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from bot.emulator.fixtures import (
    DEFAULT_FAILURE_REASONS,
    FALLBACK_SRC_VERSION,
    PRODUCT_NAME,
    TASK_STATUSES,
)

GENERATED_DEVICE = re.compile(r"^dev-(\d{6,})$")
# The outcomes IoT Platform pushes per device (reference "Push instead of polling").
RESULT_STATUSES = frozenset({"SUCCEEDED", "FAILED"})


class JobTasks:
    """One job's device tasks, indexed by status: a count is O(1) and a page is a slice.

    Task ``i`` (TaskIds sort by ``i``) is built on demand from the job and ``i``; only what
    differs from the generated task (hand-made devices, TaskDesc, moves) is stored, so
    100,000 tasks cost a status list and per-status index lists. ``set_tasks`` lays the
    statuses out in TASK_STATUSES order with devices ``dev-000000``, ``dev-000001`` ...

    Override dicts may be shared between tasks (move_many stamps every task it moves with
    one dict): they are copied before being changed, never edited in place.

    ``on_result``, if set, is called after add, move or move_many with the indices of the
    tasks that have just become SUCCEEDED or FAILED (from another status, or new).
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
        self.on_result: Callable[[list[int]], None] | None = None

    def __len__(self) -> int:
        return len(self._status)

    def counts(self) -> dict[str, int]:
        return {status: len(self.by_status[status]) for status in TASK_STATUSES}

    def status_of(self, i: int) -> str:
        return self._status[i]

    def generated_status(self, i: int) -> str | None:
        """The status of generated device ``dev-{i:06d}``, None if there is no such device."""
        return self._status[i] if i < self._generated else None

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
        if status in RESULT_STATUSES:
            self._results([i])
        return i

    def move(self, device_name: str, status: str, desc: str | None, now: str) -> None:
        _check_task_status(status)
        i = self.index_of(device_name)
        if i is None:
            raise KeyError(f"no task for device {device_name!r} in job {self.job_id}")
        was = self._status[i]
        old = self.by_status[was]
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
        if status in RESULT_STATUSES and was != status:
            self._results([i])

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
        if status in RESULT_STATUSES:
            self._results(moving)
        return len(moving)

    def _results(self, indices: list[int]) -> None:
        if self.on_result is not None:
            self.on_result(indices)

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
