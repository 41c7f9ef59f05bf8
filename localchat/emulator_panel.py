"""The side panel's routes: drive the built-in IoT emulator's demo batches by hand.

Moving a batch's status or failing some of its devices changes what the emulator's API
answers, nothing else: the app sees it the way it would see Alibaba Cloud change, at its
next read (a watch's poll, a Refresh), so watches, alerts and dialogs behave as in a real
rollout.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.emulator import IotEmulator
from bot.emulator.fixtures import DEFAULT_FAILURE_REASONS
from bot.emulator.state import utc_text
from bot.iot.models import JOB_STATUSES

from .json_api import json_body, refusal, refused

# Devices that have not finished: what "fail N devices" takes first.
UNFINISHED = ("IN_PROGRESS", "NOTIFIED", "QUEUED", "CONFIRM")
MAX_DEVICES = 10_000  # one click moves at most this many


class EmulatorPanel:
    def __init__(self, emulator: IotEmulator) -> None:
        self.emulator = emulator
        self._added = 0

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get("/local/api/emulator", self._jobs)
        router.add_post("/local/api/emulator/status", self._set_status)
        router.add_post("/local/api/emulator/fail", self._fail)
        router.add_post("/local/api/emulator/succeed", self._succeed)

    async def _jobs(self, _: web.Request) -> web.Response:
        state = self.emulator
        jobs = [
            {
                "JobId": job_id,
                "JobStatus": job.get("JobStatus"),
                "FirmwareName": job.get("FirmwareName"),
                "DestVersion": job.get("DestVersion"),
                "counts": {k: v for k, v in state.task_counts(job_id).items() if v},
            }
            for job_id, job in state.jobs.items()
            if "*" not in job_id  # the spec's masked example cannot be typed as a JobId
        ]
        return web.json_response(
            {
                "available": True,
                "statuses": list(JOB_STATUSES),
                "reasons": list(DEFAULT_FAILURE_REASONS),
                "jobs": jobs,
            }
        )

    async def _set_status(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        job_id, status = self._job_id(body), body.get("status")
        if status not in JOB_STATUSES:
            return refused(f"status: one of {', '.join(JOB_STATUSES)}")
        self.emulator.set_status(job_id, status)
        return web.json_response({"ok": True, "JobStatus": status})

    async def _fail(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        job_id, count = self._job_id(body), _count(body)
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            return refused("reason: say why the devices failed (it becomes their TaskDesc)")
        moved = self._move(job_id, count, "FAILED", reason.strip()[:500])
        return web.json_response({"ok": True, "moved": moved})

    async def _succeed(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        moved = self._move(self._job_id(body), _count(body), "SUCCEEDED", None)
        return web.json_response({"ok": True, "moved": moved})

    def _move(self, job_id: str, count: int, status: str, desc: str | None) -> int:
        """Finish `count` unfinished devices of the batch; when it has fewer, new devices
        join it already finished, so the panel always does what it says."""
        state = self.emulator
        tasks = state.tasks_of(job_id)
        now = utc_text(state.clock())
        waiting = [i for s in UNFINISHED for i in tasks.select(s)][:count]
        moved = tasks.move_many(waiting, status, desc, now)
        for _ in range(count - moved):
            self._added += 1
            state.add_task(
                job_id, device_name=f"local-device-{self._added:05d}", status=status, desc=desc
            )
        return count

    def _job_id(self, body: dict[str, Any]) -> str:
        job_id = body.get("job_id")
        if not isinstance(job_id, str) or job_id not in self.emulator.jobs:
            raise refusal("job_id: pick one of the emulator's batches")
        return job_id


def _count(body: dict[str, Any]) -> int:
    count = body.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_DEVICES:
        raise refusal(f"count: a whole number of devices from 1 to {MAX_DEVICES}")
    return count
