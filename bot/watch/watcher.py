"""The watcher: polls watched batches and tells each channel about every transition.

One poll per job serves every channel watching it. Polls run at background priority and
within the watchers' share of the quota; when more jobs are watched than that share can
poll every ``poll_seconds``, every job's interval stretches by the same factor, and jobs
are polled in order of when they are due, so none starves.

The layers, each calling only the ones below it: ``scheduler`` (when to poll) ->
``lifecycle`` (what a read means for each watch) -> ``delivery`` (each post exactly once)
-> ``poster`` (Slack). ``budget`` (the poll interval) serves the first two.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from ..db import Store
from ..iot.service import OtaService
from ..render import Renderer
from .budget import Budget, WatchSettings
from .delivery import Delivery
from .lifecycle import Lifecycle, Outcome, WatchResult
from .live import Live
from .poster import SlackPoster
from .scheduler import Scheduler

__all__ = ["Outcome", "WatchResult", "WatchSettings", "Watcher"]


class Watcher:
    """Builds the layers and offers what callers use, each served by the layer holding it."""

    def __init__(
        self,
        store: Store,
        service: OtaService,
        renderer: Renderer,
        poster: SlackPoster,
        settings: WatchSettings,
        *,
        demo: bool = False,
        language: str = "en",
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.service = service
        self.renderer = renderer
        self.poster = poster
        self.demo = demo
        # Set when a poll finishes or a watch is added: the loop looks for due polls.
        self._wake = asyncio.Event()
        budget = Budget(store, settings, clock=clock, rng=rng or random.Random())
        delivery = Delivery(store, poster, clock=clock)
        lifecycle = Lifecycle(
            store,
            service,
            renderer,
            poster,
            delivery,
            budget,
            settings,
            self._wake,
            demo=demo,
            language=language,
            clock=clock,
        )
        scheduler = Scheduler(store, service, lifecycle, budget, settings, self._wake, clock=clock)
        self.live = Live(
            store,
            polling_interval=budget.polling_interval,
            pushed=scheduler.pushed,
            wake=self._wake,
            clock=clock,
        )
        budget.live = self.live.connected
        # The push subscription (bot/iot/push.py) calls these two.
        self.on_push_event = self.live.on_event
        self.on_push_state = self.live.on_state
        self._budget, self._lifecycle, self._scheduler = budget, lifecycle, scheduler
        self.watch = lifecycle.watch
        self.unwatch = lifecycle.unwatch
        self.card = lifecycle.card
        self.channel_language = lifecycle.channel_language
        self.poll = scheduler.poll
        self.tick = scheduler.tick
        self.run = scheduler.run
        self.interval = budget.interval
        # For tests and the benchmark, as before the split.
        self._locks = lifecycle.locks
        self._post_card = lifecycle.post_card
        self._next_poll = budget.next_poll
        self._backoff = budget.backoff

    def start(self) -> None:
        """Start polling. Polls a live subscription stretched in an earlier run are due
        within the polling interval again: push is not live yet, and may never be."""
        self._scheduler.start()
        self.live.pull_in(self._budget.polling_interval())

    async def stop(self) -> None:
        """Stop polling (polls under way finish), then the summaries being filled in."""
        await self._scheduler.stop()
        await self._lifecycle.aclose()
        await self.live.aclose()

    @property
    def settings(self) -> WatchSettings:
        return self._budget.settings

    @settings.setter
    def settings(self, settings: WatchSettings) -> None:
        """Tests and the benchmark swap the settings of a running watcher."""
        self._budget.settings = settings
        self._lifecycle.settings = settings
        self._scheduler.settings = settings

    @property
    def _polled_jobs(self) -> int:
        return self._budget.polled_jobs

    @_polled_jobs.setter
    def _polled_jobs(self, count: int) -> None:  # the timing tests set it
        self._budget.polled_jobs = count
