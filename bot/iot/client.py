"""IotClient: one method per IoT Platform API action, each a call through the transport."""

from __future__ import annotations

import asyncio
from typing import Any

from .errors import IotBadResponse
from .models import (
    TASK_STATUSES,
    Firmware,
    JobResult,
    JobSummary,
    OtaJob,
    OtaTask,
    Page,
    TaskCounts,
)
from .quota import Priority
from .transport import RetryPolicy, Transport, _WaitRetryAfterOrBackoff, parse_response

# RetryPolicy, parse_response and _WaitRetryAfterOrBackoff live in transport; the runtime
# and the tests import them from here.
__all__ = [
    "CANCEL_FLAGS",
    "MAX_PAGE_SIZE",
    "REUPGRADE_BATCH",
    "IotClient",
    "RetryPolicy",
    "_WaitRetryAfterOrBackoff",
    "parse_response",
]

MAX_PAGE_SIZE = 100
REUPGRADE_BATCH = 10  # ReupgradeOTATask takes 1 to 10 TaskIds
# Our names for CancelOTATaskByJob's flags.
CANCEL_FLAGS = {
    "queued": "CancelQueuedTask",
    "notified": "CancelNotifiedTask",
    "in_progress": "CancelInProgressTask",
    "scheduled": "CancelScheduledTask",
    "unconfirmed": "CancelUnconfirmedTask",
}


class IotClient(Transport):
    """The API surface: built with Transport's arguments, it adds a typed method per action."""

    async def query_ota_job(
        self,
        job_id: str,
        *,
        instance_id: str | None = None,
        priority: Priority = Priority.PERSON,
    ) -> JobResult:
        params = {"JobId": job_id}
        body = await self.call("QueryOTAJob", _scoped(params, instance_id), priority=priority)
        data = body.get("Data") or {}
        if not isinstance(data, dict):
            raise IotBadResponse("InvalidResponse", "Data is not an object", body.get("RequestId"))
        request_id = body.get("RequestId")
        return JobResult(job=OtaJob.parse(data), request_id=request_id, raw=data)

    async def count_tasks(
        self,
        job_id: str,
        *,
        instance_id: str | None = None,
        priority: Priority = Priority.PERSON,
    ) -> TaskCounts:
        """Devices per task status. There is no statistics API: one ListOTATaskByJob call
        per status with PageSize=1, reading Total; the calls go concurrently."""

        async def one(status: str) -> tuple[str, int, str | None]:
            page = await self.list_tasks(
                job_id, status=status, page=1, size=1, instance_id=instance_id, priority=priority
            )
            return status, page.total, page.request_id

        results = await asyncio.gather(*(one(s) for s in TASK_STATUSES))
        return TaskCounts(
            counts={status: total for status, total, _ in results},
            request_ids=[rid for _, _, rid in results if rid],
        )

    async def list_tasks(
        self,
        job_id: str,
        *,
        status: str | None = None,
        page: int = 1,
        size: int = MAX_PAGE_SIZE,
        instance_id: str | None = None,
        priority: Priority = Priority.PERSON,
    ) -> Page:
        """One page of a batch's device tasks (``Page.items``: OtaTask), optionally of one
        status. The API serves at most CurrentPage x PageSize <= 100,000."""
        params = {"JobId": job_id, "CurrentPage": str(page), "PageSize": str(size)}
        if status:
            params["TaskStatus"] = status
        body = await self.call("ListOTATaskByJob", _scoped(params, instance_id), priority=priority)
        rows = _rows(body.get("Data"), "SimpleOTATaskInfo")
        return Page(items=[OtaTask.parse(r) for r in rows], **_page_meta(body))

    async def list_jobs_by_firmware(
        self, firmware_id: str, *, page: int = 1, instance_id: str | None = None
    ) -> Page:
        """Batches of an update package (``Page.items``: JobSummary)."""
        params = {"FirmwareId": firmware_id, "CurrentPage": str(page), "PageSize": "100"}
        body = await self.call("ListOTAJobByFirmware", _scoped(params, instance_id))
        rows = _rows(body.get("Data"), "SimpleOTAJobInfo")
        return Page(items=[JobSummary.parse(r) for r in rows], **_page_meta(body))

    async def list_jobs_by_device(
        self,
        product_key: str,
        device_name: str,
        firmware_id: str,
        *,
        page: int = 1,
        instance_id: str | None = None,
    ) -> Page:
        """Batches of one update package that include a device (the API wants all three)."""
        params = {
            "ProductKey": product_key,
            "DeviceName": device_name,
            "FirmwareId": firmware_id,
            "CurrentPage": str(page),
            "PageSize": "100",
        }
        body = await self.call("ListOTAJobByDevice", _scoped(params, instance_id))
        rows = _rows(body.get("Data"), "SimpleOTAJobInfo")
        return Page(items=[JobSummary.parse(r) for r in rows], **_page_meta(body))

    async def list_firmware(
        self, product_key: str, *, page: int = 1, instance_id: str | None = None
    ) -> Page:
        """A product's update packages (``Page.items``: Firmware)."""
        params = {"ProductKey": product_key, "CurrentPage": str(page), "PageSize": "100"}
        body = await self.call("ListOTAFirmware", _scoped(params, instance_id))
        rows = _rows(body.get("FirmwareInfo"), "SimpleFirmwareInfo")
        return Page(items=[Firmware.parse(r) for r in rows], **_page_meta(body))

    # --- write actions: never retried blindly (see _write) ---------------------------------

    async def cancel_strategy(self, job_id: str, *, instance_id: str | None = None) -> str | None:
        """Stop a dynamic batch from taking in more devices. Returns the RequestId."""
        body = await self._write("CancelOTAStrategyByJob", {"JobId": job_id}, instance_id)
        return body.get("RequestId")

    async def cancel_tasks(
        self, job_id: str, kinds: frozenset[str], *, instance_id: str | None = None
    ) -> str | None:
        """CancelOTATaskByJob for the named kinds of task (CANCEL_FLAGS). Returns the RequestId."""
        unknown = kinds - CANCEL_FLAGS.keys()
        if not kinds or unknown:
            raise ValueError(
                f"cancel kinds must be among {sorted(CANCEL_FLAGS)}: {sorted(unknown)}"
            )
        params = {"JobId": job_id} | {CANCEL_FLAGS[k]: "true" for k in sorted(kinds)}
        body = await self._write("CancelOTATaskByJob", params, instance_id)
        return body.get("RequestId")

    async def reupgrade_tasks(
        self, job_id: str, task_ids: list[str], *, instance_id: str | None = None
    ) -> str | None:
        """ReupgradeOTATask for up to 10 failed or canceled tasks. Returns the RequestId."""
        if not 1 <= len(task_ids) <= REUPGRADE_BATCH:
            raise ValueError(f"ReupgradeOTATask takes 1 to {REUPGRADE_BATCH} TaskIds")
        params = {"JobId": job_id} | {f"TaskId.{i}": t for i, t in enumerate(task_ids, 1)}
        body = await self._write("ReupgradeOTATask", params, instance_id)
        return body.get("RequestId")

    async def _write(
        self, action: str, params: dict[str, str], instance_id: str | None
    ) -> dict[str, Any]:
        """A write is retried only when the gateway surely did not run it (throttled or
        refused before the action): a timeout may hide a cancel that took effect."""
        return await self.call(action, _scoped(params, instance_id), write=True)


def _scoped(params: dict[str, str], instance_id: str | None) -> dict[str, str]:
    return params | {"IotInstanceId": instance_id} if instance_id else params


def _rows(value: Any, inner: str) -> list[Any]:
    """``{"SimpleOTATaskInfo": [...]}`` (or a bare list, or null) -> the list."""
    if isinstance(value, dict):
        value = value.get(inner)
    return value if isinstance(value, list) else []


def _page_meta(body: dict[str, Any]) -> dict[str, Any]:
    return {"total": _count(body, "Total"), "request_id": body.get("RequestId")}


def _count(body: dict[str, Any], field: str) -> int:
    """A count the API sent; absent is 0. Anything but a whole number >= 0 is an answer
    we cannot read: a made-up 0 would tell a person no device failed."""
    value = body.get(field)
    if value is None or value == "":
        return 0
    digits = isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19
    if digits or (isinstance(value, float) and value.is_integer()):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise IotBadResponse(
        "InvalidResponse", f"{field} is not a count: {str(value)[:40]!r}", body.get("RequestId")
    )
