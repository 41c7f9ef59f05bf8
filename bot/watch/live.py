"""Pushed messages as triggers: the subscription says when, the API says what.

A batch status message makes that batch's poll due now; the poll reads QueryOTAJob and
posts exactly as a timed poll would, so a duplicate, a late or a reordered message does
no harm (and duplicates are dropped by message ID anyway: delivery is at least once). A
device result for a batch with an alert brings its poll forward by a few seconds, once
per window, so a storm of device results costs one poll (with its device counts) per
window. Messages about batches nobody watches move no poll and cost no call.

While the subscription is live, polling is only the safety net
(``WATCH_SAFETY_POLL_SECONDS``); after every (re)connect each watched batch is polled
once, and when the subscription goes down polling returns to ``WATCH_POLL_SECONDS`` at
once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from cachetools import LRUCache

from ..db import Store
from ..iot.push_messages import JobStatusEvent, PushEvent

log = logging.getLogger("otajob.watch")

DEVICE_DEBOUNCE_SECONDS = 5.0
# And at most one such poll (with its seven count calls) per job this often: a rollout's
# thousands of results cost six polls a minute, the first within seconds of the first.
DEVICE_GAP_SECONDS = 10.0
# A pushed batch is due "this long ago": due polls are taken oldest first, so it goes
# ahead of every timed poll, even of a backlog (1,000 batches polled after a reconnect).
FIRST_IN_LINE_SECONDS = 86_400.0
SEEN_MESSAGES = 20_000  # message IDs remembered for de-duplication


class Live:
    def __init__(
        self,
        store: Store,
        *,
        polling_interval: Callable[[], float],
        pushed: Callable[[str], None],
        wake: asyncio.Event,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self._polling_interval = polling_interval  # without push (Budget's)
        self._pushed = pushed  # tells the scheduler: poll this job again if it is polling
        self._wake = wake
        self._clock = clock
        self.state = "off"  # the subscription's: off, connecting, live, down, refused
        self.device_debounce = DEVICE_DEBOUNCE_SECONDS
        self.device_gap = DEVICE_GAP_SECONDS
        self._seen: LRUCache[str, bool] = LRUCache(maxsize=SEEN_MESSAGES)
        self._tasks: set[asyncio.Task[int]] = set()
        self.events = 0  # pushed events handled (not duplicates), for /healthz

    def connected(self) -> bool:
        return self.state == "live"

    async def on_event(self, event: PushEvent) -> None:
        if event.message_id in self._seen:
            return
        now = self._clock()
        if isinstance(event, JobStatusEvent):
            moved = await self.store.poll_soon(event.job_id, now - FIRST_IN_LINE_SECONDS)
            self._pushed(event.job_id)
        else:
            moved = await self.store.poll_soon(
                event.job_id,
                now + self.device_debounce,
                alerted_only=True,
                not_before_last_poll=self.device_gap,
            )
        # Seen only once handled: a message whose handling failed may come again.
        self._seen[event.message_id] = True
        self.events += 1
        if moved:
            self._wake.set()

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def on_state(self, state: str) -> None:
        before, self.state = self.state, state
        if state == "off":
            return  # stopping with the app: nothing left to reschedule
        if state == "live":
            self.pull_in(0)  # what was sent while away may be lost
        elif before == "live":
            self.pull_in(self._polling_interval())

    def pull_in(self, within: float) -> None:
        """Every wanted poll due within ``within`` seconds at the latest (in the
        background: called from the subscription's state changes and at start)."""
        work = self.store.poll_all_by(self._clock() + within)
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[int]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "rescheduling polls after a subscription change failed", exc_info=task.exception()
            )
        self._wake.set()
