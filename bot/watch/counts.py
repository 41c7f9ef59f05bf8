"""A poll's device counts: read at most once, and only if something in the poll needs them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from ..db import Store
from ..iot.models import TaskCounts
from ..iot.quota import Priority
from ..iot.service import OtaService


class PollCounts:
    """Device counts cost several calls: fetch them at most once per poll, and only if a
    final transition needs them."""

    def __init__(
        self,
        service: OtaService,
        store: Store,
        job_id: str,
        instance_id: str | None,
        *,
        clock: Callable[[], float],
    ) -> None:
        self.service = service
        self.store = store
        self.job_id = job_id
        self.instance_id = instance_id
        self._clock = clock
        self._task: asyncio.Task[TaskCounts] | None = None
        self.slow = False  # a final reply already went out without them this poll

    async def __call__(self, priority: Priority = Priority.SUMMARY) -> TaskCounts:
        """The counts; the first caller's priority reads them (an alert's goes with the
        polls, a summary's behind them)."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._read(priority))
        return await self._task

    def peek(self) -> TaskCounts | None:
        """The counts if this poll read them (for the card), without reading them."""
        if self._task is None or not self._task.done() or self._task.exception():
            return None
        return self._task.result()

    async def _read(self, priority: Priority) -> TaskCounts:
        counts = await self.service.count_tasks(
            self.job_id, self.instance_id, fresh=True, priority=priority
        )
        await self.store.record_counts(
            self.job_id, self.instance_id, json.dumps(counts.counts), self._clock()
        )
        return counts
