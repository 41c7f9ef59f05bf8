"""The audit record of a write action: written before its first write, kept alive by a
heartbeat while it runs, finished with how it ended, and posted where people will see it
(the batch's thread, else the channel it was taken from, and the person who took it).
An action whose process died mid-way is claimed once and reported as interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from slack_sdk.errors import SlackApiError

from ..iot.errors import IotError
from ..iot.models import OtaJob
from ..render import Message
from ..watch.poster import ChannelUnavailable
from .asker import Asker
from .deps import Deps

log = logging.getLogger("otajob.actions")
# A running action refreshes its row this often; one silent for ACTION_STALE_SECONDS
# belonged to a process that died, and is reported as interrupted.
ACTION_HEARTBEAT_SECONDS = 15.0
ACTION_STALE_SECONDS = 60.0


@dataclass
class Action:
    """One write action while it runs: its row in action_log (written before the first
    write), what it did so far, and how it ended."""

    deps: Deps
    asker: Asker
    kind: str  # cancel | reupgrade
    job_id: str
    instance: str | None
    detail: dict[str, Any]
    log_id: int = 0
    job: OtaJob | None = None
    request_ids: list[str] = field(default_factory=list)
    error: IotError | None = None
    uncertain: bool = False  # a write got no clear answer: it may have gone through

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Action]:
        """Write the started row, keep its heartbeat while the body runs, and record how it
        ended, whatever happened: an exception is recorded (as uncertain) and raised."""
        store = self.deps.store
        self.log_id = await store.start_action(
            at=time.time(),
            team_id=self.asker.team_id or None,
            user_id=self.asker.user_id,
            user_name=self.asker.user_name,
            action=self.kind,
            job_id=self.job_id,
            instance_id=self.instance,
            channel_id=self.asker.channel_id,
            detail=self.detail,
        )
        heartbeat = asyncio.create_task(self._beat())
        unexpected: BaseException | None = None
        try:
            yield self
        except IotError as exc:
            self.failed(exc)
        except BaseException as exc:  # recorded first (it may have written), then raised
            unexpected = exc
            self.uncertain = True
            self.error = self.error or IotError("Unexpected", f"{type(exc).__name__} inside otajob")
        finally:
            heartbeat.cancel()
        if unexpected is None:
            await self._finish()
            return
        if isinstance(unexpected, Exception):
            try:
                await self._finish()
            except Exception:  # the first failure is the one to raise
                log.exception("could not record action %s", self.log_id)
        raise unexpected

    def failed(self, error: IotError, *, wrote: bool = True) -> None:
        """A write (or the read before it, ``wrote=False``) failed with ``error``."""
        self.error = self.error or error
        # No clear answer (a timeout, a dropped connection, a 5xx, a page that is not the
        # API's): the write may have taken effect, so the record must not say nothing changed.
        self.uncertain = self.uncertain or (wrote and error.may_have_run)
        if error.request_id:
            self.request_ids.append(error.request_id)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(ACTION_HEARTBEAT_SECONDS)
            with contextlib.suppress(Exception):  # a missed beat only risks a late report
                await self.deps.store.action_alive(self.log_id, time.time())

    async def _finish(self) -> None:
        done = self.detail.get("done") or self.detail.get("reupgraded")
        outcome = "done" if self.error is None else ("partial" if done else "failed")
        if self.kind == "cancel" and self.detail.get("finished") and not done:
            outcome = "failed"  # confirmed after the batch finished: nothing to cancel
        request_ids = [r for r in self.request_ids if r]
        await self.deps.store.finish_action(
            self.log_id,
            detail=self.detail,
            request_ids=request_ids,
            outcome=outcome,
            error=str(self.error) if self.error else None,
        )
        log.info(
            "action %s %s on %s by %s: %s",
            self.log_id,
            self.kind,
            self.job_id,
            self.asker.user_id,
            outcome,
        )
        record = partial(
            self.deps.renderer.render,
            "action_record",
            action=self.kind,
            job=self.job,
            job_id=self.job_id,
            instance_id=self.instance,
            detail=self.detail,
            request_ids=request_ids,
            outcome=outcome,
            error=self.error,
            uncertain=self.uncertain,
            who=self.asker.user_name,
            at=time.time(),
            log_id=self.log_id,
            demo=self.deps.demo,
        )
        await _tell_everyone(self.deps, self.job_id, self.instance, record, self.log_id, self.asker)


async def _tell_everyone(
    deps: Deps,
    job_id: str,
    instance: str | None,
    record: Callable[..., Message],
    log_id: int,
    asker: Asker,
) -> None:
    """Post the record in the batch's thread(s), else in the channel it was taken from, and
    tell the person who took it by DM when it was not posted where they clicked. Each
    channel reads it in its language, the DM in the person's (``record(lang=...)``)."""
    places = await _post_in_threads(deps, job_id, instance, record, log_id)
    if not places and asker.channel_id.startswith(("C", "G")):
        try:
            lang = await deps.languages.of_channel(asker.channel_id)
            message = record(lang=lang)
            await deps.poster.post(asker.channel_id, message, marker={"action": log_id})
            places.append(asker.channel_id)
        except (ChannelUnavailable, SlackApiError) as exc:
            log.info("could not post action %s in %s: %s", log_id, asker.channel_id, exc)
    if asker.channel_id not in places:  # the person always learns how it went
        lang = await deps.languages.of_person(asker.user_id, asker.channel_id)
        await deps.poster.direct_message(asker.user_id, record(lang=lang))


async def report_interrupted(deps: Deps, *, stale_before: float | None = None) -> int:
    """Tell about actions whose process died while they ran (their heartbeat stopped
    before ``stale_before``): the record says they may have partly taken effect. Returns
    how many were told."""
    if stale_before is None:
        stale_before = time.time() - ACTION_STALE_SECONDS
    rows = await deps.store.claim_interrupted(stale_before)
    told = 0
    for row in rows:
        try:
            await _tell_interrupted(deps, row)
            told += 1
        except Exception:  # told next round: the row goes back to the unclaimed
            log.exception("could not report interrupted action %s", row["id"])
            await deps.store.unclaim_interrupted(row["id"])
    return told


async def _tell_interrupted(deps: Deps, row: dict[str, Any]) -> None:
    detail = json.loads(row["detail"] or "{}")
    instance = row["instance_id"] or None
    record = partial(
        deps.renderer.render,
        "action_record",
        action=row["action"],
        job=None,
        job_id=row["job_id"],
        instance_id=instance,
        detail=detail,
        request_ids=[r for r in (row["request_ids"] or "").split(",") if r],
        outcome="interrupted",
        error=None,
        uncertain=True,
        who=row["user_name"],
        at=row["at"],
        log_id=row["id"],
        demo=deps.demo,
    )
    asker = Asker(row["channel_id"] or "", row["user_id"], row["user_name"], row["team_id"])
    await _tell_everyone(deps, row["job_id"], instance, record, row["id"], asker)


async def report_interrupted_forever(
    deps: Deps, *, started_at: float, every: float = ACTION_STALE_SECONDS
) -> None:
    """At start, and then every so often: an action interrupted by a crash is reported
    by whichever process notices first (its row is claimed once). On SQLite only this
    process uses the database, so at start every action begun before this process was
    built (``started_at``, before it served anything) died with the one before it:
    reported at once, not a minute later."""
    stale_before = started_at if deps.store.single_process else None
    while True:
        try:
            await report_interrupted(deps, stale_before=stale_before)
        except Exception:  # the next round tries again
            log.exception("could not report interrupted actions")
        stale_before = None
        await asyncio.sleep(every)


async def _post_in_threads(
    deps: Deps, job_id: str, instance: str | None, record: Callable[..., Message], log_id: int
) -> list[str]:
    posted = []
    for watch in await deps.store.live_watches(job_id=job_id, instance_id=instance):
        if not watch.card_ts:
            continue
        try:
            message = record(lang=await deps.languages.of_channel(watch.channel_id))
            await deps.poster.post(
                watch.channel_id, message, marker={"action": log_id}, thread_ts=watch.card_ts
            )
            posted.append(watch.channel_id)
        except (ChannelUnavailable, SlackApiError) as exc:
            log.info("could not post action %s in %s: %s", log_id, watch.channel_id, exc)
    return posted
