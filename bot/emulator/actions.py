"""The eight OTA actions: handlers over the store that return an answer's fields, no HTTP.

QueryOTAJob, ListOTATaskByJob (device tasks, held per job in the store's ``tasks``),
ListOTAFirmware, ListOTAJobByFirmware, ListOTAJobByDevice, and the write actions
CancelOTAStrategyByJob, CancelOTATaskByJob and ReupgradeOTATask.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.emulator.fixtures import TASK_STATUSES
from bot.emulator.state import BusinessError, OtaState, utc_text

MAX_PAGE_SIZE = 100
# The reference lists iot.check.InvalidFormattedParameter among the documented codes.
INVALID_FORMAT_CODE = "iot.check.InvalidFormattedParameter"
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


@dataclass(frozen=True)
class ActionSpec:
    """An API action: its handler returns ``Data`` or raises BusinessError.

    With ``envelope`` the handler returns the body's top-level fields instead (paged lists
    put ``Total``, ``PageSize`` ... beside ``Data``); RequestId and Success are added.
    """

    handler: Callable[[OtaState, dict[str, str]], Any]
    required: tuple[str, ...] = ()
    envelope: bool = False


def _query_ota_job(state: OtaState, params: dict[str, str]) -> dict[str, Any]:
    return state.find_job(params["JobId"], _instance(params))


def _list_ota_task_by_job(state: OtaState, params: dict[str, str]) -> dict[str, Any]:
    status = params.get("TaskStatus") or None
    if status is not None and status not in TASK_STATUSES:
        raise BusinessError(INVALID_FORMAT_CODE, "The TaskStatus parameter is invalid.")
    page, size = _paging(params)
    job = state.find_job(params["JobId"], _instance(params))
    tasks = state.tasks_of(params["JobId"])
    selected = tasks.select(status, _flat_list(params, "DeviceNames"))
    start = (page - 1) * size
    rows = [tasks.render(job, i) for i in selected[start : start + size]]
    return _page(len(selected), page, size, "Data", "SimpleOTATaskInfo", rows)


def _list_ota_firmware(state: OtaState, params: dict[str, str]) -> dict[str, Any]:
    page, size = _paging(params)
    product_key = params.get("ProductKey") or None
    dest_version = params.get("DestVersion") or None
    found = [
        firmware
        for firmware in state.firmwares(_instance(params))
        if (product_key is None or firmware.get("ProductKey") == product_key)
        and (dest_version is None or firmware.get("DestVersion") == dest_version)
    ]
    start = (page - 1) * size
    rows = found[start : start + size]
    return _page(len(found), page, size, "FirmwareInfo", "SimpleFirmwareInfo", rows)


def _list_ota_job_by_firmware(state: OtaState, params: dict[str, str]) -> dict[str, Any]:
    page, size = _paging(params)
    firmware_id = params["FirmwareId"]
    jobs = [
        job
        for _, job in state.visible_jobs(_instance(params))
        if job.get("FirmwareId") == firmware_id
    ]
    return _job_page(jobs, page, size)


def _list_ota_job_by_device(state: OtaState, params: dict[str, str]) -> dict[str, Any]:
    page, size = _paging(params)
    firmware_id, product_key = params["FirmwareId"], params["ProductKey"]
    device_name = params["DeviceName"]
    jobs = [
        job
        for job_id, job in state.visible_jobs(_instance(params))
        if job.get("FirmwareId") == firmware_id
        and job.get("ProductKey") == product_key
        and state.tasks_of(job_id).index_of(device_name) is not None
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


def _cancel_ota_strategy_by_job(state: OtaState, params: dict[str, str]) -> dict[str, Any]:
    job = state.find_job(params["JobId"], _instance(params))
    if job.get("SelectionType") != "DYNAMIC":
        raise BusinessError(
            JOB_NOT_DYNAMIC_CODE, "Only a dynamic OTA job has an upgrade strategy to cancel."
        )
    state.canceled_strategies.add(params["JobId"])
    return {}


def _cancel_ota_task_by_job(state: OtaState, params: dict[str, str]) -> dict[str, Any]:
    flags = {name: _bool_param(params, name) for name in CANCEL_FLAGS}
    if not any(flags.values()):
        raise BusinessError(
            INVALID_FORMAT_CODE, f"At least one of {', '.join(CANCEL_FLAGS)} must be true."
        )
    job_id = params["JobId"]
    job = state.find_job(job_id, _instance(params))
    statuses = [s for name, on in flags.items() if on for s in CANCEL_FLAGS[name]]
    if flags["CancelScheduledTask"] and job.get("JobStatus") == "PLANNED":
        state.set_status(job_id, "CANCELED")
        statuses += ["QUEUED", "CONFIRM"]
    now = utc_text(state.clock())
    state.tasks_of(job_id).move_statuses(statuses, "CANCELED", CANCELED_DESC, now)
    return {}


def _reupgrade_ota_task(state: OtaState, params: dict[str, str]) -> dict[str, Any]:
    task_ids = _flat_list(params, "TaskId")
    if not 1 <= len(task_ids) <= MAX_REUPGRADE_TASKS:
        raise BusinessError(
            INVALID_FORMAT_CODE, f"TaskId takes 1 to {MAX_REUPGRADE_TASKS} task IDs."
        )
    job_id = params["JobId"]
    job = state.find_job(job_id, _instance(params))
    tasks = state.tasks_of(job_id)
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
    tasks.move_many(indices, status, None, utc_text(state.clock()))
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


def _invalid_page() -> BusinessError:
    return BusinessError(
        "iot.common.InvalidPageParams", "The specified page size or page number is invalid."
    )
