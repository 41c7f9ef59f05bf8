"""The emulator's store: OTA jobs, each job's tasks, firmwares and instance scopes."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.emulator.fixtures import PRODUCT_NAME, default_jobs, default_tasks, make_job
from bot.emulator.tasks import RESULT_STATUSES, JobTasks
from bot.iot.models import JOB_STATUSES

WELL_FORMED_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OtaEvent:
    """A change IoT Platform pushes to server-side subscribers: its topic and JSON payload.

    Topics and payloads follow the reference ("Push instead of polling"): ``job_status``
    is a batch status notification, ``device_status`` a device's upgrade result.
    ``instance_id`` is the job's instance scope (None: unscoped).
    """

    kind: str
    topic: str
    payload: dict[str, Any]
    instance_id: str | None


class BusinessError(Exception):
    """An IoT-level failure: HTTP 200, ``Success: false``, ``ErrorMessage`` (not Message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def utc_text(moment: float) -> str:
    """The API's time format, ``2019-12-28T02:43:10.000Z``."""
    stamp = datetime.fromtimestamp(moment, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


class OtaState:
    """OTA jobs with their device tasks, firmwares and instance scopes; no HTTP here.

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

    ``tasks`` holds each job's device tasks (JobTasks) for ListOTATaskByJob. add_job (and
    so each fixture and each auto_jobs job) gives a job fixtures.default_tasks(job);
    set_tasks, add_task and set_task_status change them, task_status_of reads one. Tasks do
    not follow set_status. CancelOTATaskByJob and ReupgradeOTATask move tasks (and
    CancelScheduledTask cancels a PLANNED job); CancelOTAStrategyByJob records the JobId in
    ``canceled_strategies``.

    Firmwares (ListOTAFirmware) are derived from the stored jobs, one per FirmwareId and
    scope (see ``firmwares``), plus those given to add_firmware.

    ``listeners`` are called with an OtaEvent when a job's JobStatus changes (set_status,
    so CancelOTATaskByJob's CancelScheduledTask too) and when a device task becomes
    SUCCEEDED or FAILED (set_task_status, add_task, set_tasks for each generated device
    whose status changed, and moves made on a job's JobTasks directly). A listener must
    not block; one that raises is logged and the change stands. add_job sends nothing: it
    sets a job up, it is not a change the platform would report.
    """

    def __init__(
        self,
        *,
        jobs: dict[str, dict] | None = None,
        clock: Callable[[], float] = time.time,
        auto_jobs: bool = False,
    ) -> None:
        self.clock = clock
        self.auto_jobs = auto_jobs
        self.jobs: dict[str, dict] = {}
        self.tasks: dict[str, JobTasks] = {}
        self.canceled_strategies: set[str] = set()  # JobIds, by CancelOTAStrategyByJob
        self.listeners: list[Callable[[OtaEvent], None]] = []
        self._instance_of: dict[str, str | None] = {}
        self._firmwares: dict[tuple[str | None, str], dict[str, Any]] = {}  # add_firmware
        for data in (default_jobs() if jobs is None else jobs).values():
            self.add_job(data)

    def add_job(self, data: dict, *, instance_id: str | None = None) -> None:
        """Store a job (replacing one with its JobId) with fixtures.default_tasks(data)."""
        job_id = data["JobId"]
        self.jobs[job_id] = data
        self._instance_of[job_id] = instance_id
        counts, reasons = default_tasks(data)
        self.tasks[job_id] = self._job_tasks(job_id, counts, reasons)

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
        old = self.tasks.get(job_id)
        new = self._job_tasks(job_id, counts, failure_reasons or ())
        self.tasks[job_id] = new
        if self.listeners:
            # Generated devices keep their names (dev-000000 ...): a device whose status
            # is now a result it did not have before reports that result.
            changed = [
                i
                for status in RESULT_STATUSES
                for i in new.by_status[status]
                if old is None or old.generated_status(i) != status
            ]
            self._task_results(job_id, new, sorted(changed))

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
        tasks = self.tasks_of(job_id)
        now = utc_text(self.clock())
        return tasks.task_id(tasks.add(device_name, status, desc, src_version, now))

    def set_task_status(
        self, job_id: str, device_name: str, status: str, desc: str | None = None
    ) -> None:
        """Move one device's task to ``status`` (``desc`` as for add_task), stamping it."""
        self.tasks_of(job_id).move(device_name, status, desc, utc_text(self.clock()))

    def task_status_of(self, job_id: str, device_name: str) -> str:
        """The TaskStatus of the device's task in the job; KeyError for no job or no task."""
        tasks = self.tasks_of(job_id)
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
        return self.tasks_of(job_id).counts()

    def tasks_of(self, job_id: str) -> JobTasks:
        """The job's tasks (none yet for a job put straight into ``jobs``); KeyError if no job."""
        if job_id not in self.jobs:
            raise KeyError(job_id)
        if job_id not in self.tasks:  # a job put straight into ``jobs``
            self.tasks[job_id] = self._job_tasks(job_id, {})
        return self.tasks[job_id]

    def set_status(self, job_id: str, status: str) -> None:
        """Move a job to ``status``, stamping the times the API would show for it."""
        if status not in JOB_STATUSES:
            raise ValueError(f"unknown job status {status!r}; expected one of {JOB_STATUSES}")
        job = self.jobs[job_id]  # KeyError for an unknown job, on purpose
        moment = self.clock()
        now = utc_text(moment)
        was = job.get("JobStatus")
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
        if self.listeners and was != status:
            self._emit(job_status_event(job, self._instance_of.get(job_id), moment))

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

    def _job_tasks(
        self, job_id: str, counts: dict[str, int], reasons: Iterable[str] = ()
    ) -> JobTasks:
        tasks = JobTasks(job_id, counts, reasons)
        tasks.on_result = lambda indices: self._task_results(job_id, tasks, indices)
        return tasks

    def _task_results(self, job_id: str, tasks: JobTasks, indices: list[int]) -> None:
        """A device_status event for each task ``indices`` of ``tasks``, as it is now."""
        if not self.listeners or not indices:
            return
        try:
            job = self.jobs[job_id]
            scope = self._instance_of.get(job_id)
            moment = self.clock()
            events = [device_status_event(tasks.render(job, i), scope, moment) for i in indices]
        except Exception:  # a push must never undo or fail the change that caused it
            log.exception("could not build the device results of job %s", job_id)
            return
        for event in events:
            self._emit(event)

    def _emit(self, event: OtaEvent) -> None:
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:
                log.exception("OTA event listener %r failed", listener)

    def _check_instance(self, instance_id: str | None) -> None:
        """InstanceNotFound for an IotInstanceId that no job or firmware was added under."""
        if instance_id is None:
            return
        if instance_id not in self._instance_of.values() and not any(
            scope == instance_id for scope, _ in self._firmwares
        ):
            raise _instance_not_found()


def job_status_event(job: dict[str, Any], instance_id: str | None, moment: float) -> OtaEvent:
    """A batch status notification: topic ``/${productKey}/${packageId}/${jobId}/ota/job/status``.

    Reference "Push instead of polling": payload {productKey, moduleName, packageId, jobId,
    status, messageCreateTime}; packageId is the job's FirmwareId. moduleName is "default",
    the module of the emulator's firmwares (SimpleFirmwareInfo ModuleName).
    """
    product_key = job.get("ProductKey") or ""
    package_id = job.get("FirmwareId") or ""
    job_id = job.get("JobId") or ""
    payload = {
        "productKey": product_key,
        "moduleName": "default",
        "packageId": package_id,
        "jobId": job_id,
        "status": job.get("JobStatus") or "",
        "messageCreateTime": int(moment * 1000),
    }
    topic = f"/{product_key}/{package_id}/{job_id}/ota/job/status"
    return OtaEvent("job_status", topic, payload, instance_id)


def device_status_event(task: dict[str, Any], instance_id: str | None, moment: float) -> OtaEvent:
    """A device's upgrade result: topic ``/${productKey}/${deviceName}/ota/upgrade``.

    ``task`` is the task as ListOTATaskByJob shows it (JobTasks.render). Reference "Push
    instead of polling": payload {iotId, productKey, deviceName, status, messageCreateTime,
    srcVersion, destVersion, desc, jobId, taskId}.
    """
    payload = {
        "iotId": task["IotId"],
        "productKey": task["ProductKey"],
        "deviceName": task["DeviceName"],
        "status": task["TaskStatus"],
        "messageCreateTime": int(moment * 1000),
        "srcVersion": task["SrcVersion"],
        "destVersion": task["DestVersion"],
        "desc": task["TaskDesc"],
        "jobId": task["JobId"],
        "taskId": task["TaskId"],
    }
    topic = f"/{task['ProductKey']}/{task['DeviceName']}/ota/upgrade"
    return OtaEvent("device_status", topic, payload, instance_id)


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


def _instance_not_found() -> BusinessError:
    return BusinessError("iot.system.InstanceNotFound", "The specified instance does not exist.")


def _job_not_found() -> BusinessError:
    # No public source names the real code for an unknown JobId; this one is our guess.
    return BusinessError("iot.ota.JobNotFound", "The OTA job does not exist.")
