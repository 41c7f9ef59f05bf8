"""The ``/_emulator/*`` control routes: no signature, no call log, for people driving by hand."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any

from aiohttp import web

from bot.emulator.state import OtaState


class ControlRoutes:
    """Read the call log and the jobs, move a job, read or replace a job's tasks.

    ``calls`` gives the call log (dataclass records) when asked, so it shows what is
    logged then, reset included.
    """

    def __init__(self, state: OtaState, calls: Callable[[], Iterable[Any]]) -> None:
        self.state = state
        self.calls = calls

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get("/_emulator/calls", self._handle_calls)
        router.add_get("/_emulator/jobs", self._handle_jobs)
        router.add_post("/_emulator/jobs/{job_id}/status", self._handle_set_status)
        router.add_get("/_emulator/jobs/{job_id}/tasks", self._handle_tasks)
        router.add_post("/_emulator/jobs/{job_id}/tasks", self._handle_set_tasks)

    async def _handle_calls(self, request: web.Request) -> web.Response:
        return web.json_response([asdict(c) for c in self.calls()])

    async def _handle_jobs(self, request: web.Request) -> web.Response:
        return web.json_response(self.state.jobs)

    async def _handle_set_status(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        try:
            status = (await request.json())["status"]
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": 'expected JSON {"status": "..."}'}, status=400)
        if job_id not in self.state.jobs:
            return web.json_response({"error": f"no job {job_id}"}, status=404)
        try:
            self.state.set_status(job_id, status)
        except ValueError as err:
            return web.json_response({"error": str(err)}, status=400)
        return web.json_response(self.state.jobs[job_id])

    async def _handle_tasks(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        if job_id not in self.state.jobs:
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
        if job_id not in self.state.jobs:
            return web.json_response({"error": f"no job {job_id}"}, status=404)
        try:
            self.state.set_tasks(job_id, counts, failure_reasons=reasons)
        except ValueError as err:
            return web.json_response({"error": str(err)}, status=400)
        return web.json_response(self._tasks_summary(job_id))

    def _tasks_summary(self, job_id: str) -> dict[str, Any]:
        counts = self.state.task_counts(job_id)
        return {"JobId": job_id, "Total": sum(counts.values()), "counts": counts}
