"""Write actions, off unless OTAJOB_ACTIONS lists them and only for OTAJOB_ADMINS:
cancel a rollout (a confirm dialog that says exactly what will stop) and re-upgrade the
failed devices (confirmed with their count).

The allow-list is checked when the button is clicked and again when the action runs:
a forged, replayed or stale payload gets a refusal in plain words, never the action.
Every action is written to the database (who, when, what, RequestIds) and posted in the
batch's thread: under each watched card of it, else in the channel it was taken from.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from ..iot.errors import IotError
from ..iot.models import OtaJob
from ..job_ref import JobRef
from ..render import Message, Renderer
from ..watch.poster import ChannelUnavailable
from .buttons import Click, asker_of, on_click
from .deps import Deps
from .replies import ephemeral, read_counts
from .triage import PageRef
from .watching import Asker

log = logging.getLogger("otajob.actions")
CANCEL_CALLBACK = "cancel_confirm"
IN_PROGRESS_BLOCK = "cancel_in_progress"
# Always canceled: tasks that have not started on the device.
PENDING_KINDS = frozenset({"queued", "notified", "scheduled", "unconfirmed"})
# A running action refreshes its row this often; one silent for ACTION_STALE_SECONDS
# belonged to a process that died, and is reported as interrupted.
ACTION_HEARTBEAT_SECONDS = 15.0
ACTION_STALE_SECONDS = 60.0


async def _refuse(deps: Deps, action: str, user_id: str) -> str | None:
    """Why this person may not take this action now (a refused.json.j2 reason), or None."""
    if not deps.admins.enabled(action):
        return "action_disabled"
    if not await deps.admins.is_admin(user_id):
        return "not_admin"
    return None


async def _say(respond: AsyncRespond, message: Message) -> None:
    await ephemeral(respond)(message)


# --- cancel ------------------------------------------------------------------------------


async def open_cancel_dialog(
    deps: Deps,
    client: AsyncWebClient,
    ref: JobRef,
    asker: Asker,
    trigger_id: str,
    say: Callable[[Message], Awaitable[None]],
) -> None:
    """Open the dialog at once (a trigger_id lasts three seconds), then fill in what will be
    canceled once the batch and its counts are read."""
    private = json.dumps(
        {"job": ref.job_id, "instance": ref.instance_id, "channel": asker.channel_id}
    )
    loading = deps.renderer.view("cancel_modal", loading=True, private=private, demo=deps.demo)
    try:
        opened = await client.views_open(trigger_id=trigger_id, view=loading)
    except SlackApiError as exc:  # e.g. expired_trigger_id: Slack took too long to get here
        log.info("cancel dialog not opened: %s", exc.response.get("error"))
        await say(deps.renderer.render("note", kind="dialog_failed", demo=deps.demo))
        return
    view_id = opened["view"]["id"]
    context: dict[str, Any] = {
        "loading": False,
        "private": private,
        "demo": deps.demo,
        "now": time.time(),
    }
    try:
        result = await deps.service.get_job(ref.job_id, ref.instance_id, fresh=True)
    except IotError as error:
        context.update(error=error, job=None, job_id=ref.job_id, counts=None)
    else:
        counts = await read_counts(deps, ref, fresh=True)
        context.update(error=None, job=result.job, job_id=ref.job_id, counts=counts.counts)
    try:
        await client.views_update(
            view_id=view_id, view=deps.renderer.view("cancel_modal", **context)
        )
    except SlackApiError as exc:  # closed meanwhile: nothing to fill in, nothing canceled
        log.info("cancel dialog not updated: %s", exc.response.get("error"))


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
        message = self.deps.renderer.render(
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
        await _tell_everyone(
            self.deps, self.job_id, self.instance, message, self.log_id, self.asker
        )


async def run_cancel(
    deps: Deps, client: AsyncWebClient, asker: Asker, private: dict[str, Any], in_progress: bool
) -> None:
    """The confirmed cancel: stop a dynamic batch's strategy, cancel its pending tasks
    (and the in-progress ones if ticked), record it, post it."""
    # The instance the dialog read and the watches were made in: the one named, else
    # IOT_INSTANCE_ID. The raw client adds no default of its own.
    job_id = str(private["job"])
    instance = deps.service.instance_for(private.get("instance"))
    kinds = PENDING_KINDS | ({"in_progress"} if in_progress else set())
    detail: dict[str, Any] = {"cancel": sorted(kinds), "done": [], "dynamic": False}
    detail["finished"] = False
    action = Action(deps, asker, "cancel", job_id, instance, detail)
    async with action.running():
        try:
            job = action.job = (await deps.service.get_job(job_id, instance, fresh=True)).job
        except IotError as exc:
            action.failed(exc, wrote=False)
            return
        detail["dynamic"] = job.selection_type == "DYNAMIC"
        detail["finished"] = job.is_finished
        # Confirmed in a dialog opened earlier: the batch may have finished meanwhile.
        if job.is_finished:
            return
        if detail["dynamic"]:
            action.request_ids.append(await deps.service.cancel_strategy(job_id, instance))
            detail["done"].append("strategy")
        action.request_ids.append(
            await deps.service.cancel_tasks(job_id, frozenset(kinds), instance)
        )
        detail["done"].append("tasks")


# --- re-upgrade ----------------------------------------------------------------------------


async def run_reupgrade(deps: Deps, client: AsyncWebClient, ref: PageRef, asker: Asker) -> None:
    """ReupgradeOTATask for every device failed now (read afresh), 10 per call."""
    instance = deps.service.instance_for(ref.instance_id)
    # capped: OTAJOB_FAILED_MAX cut the list, and the record says so.
    detail: dict[str, Any] = {"reupgraded": 0, "found": 0, "total": 0, "capped": False}
    action = Action(deps, asker, "reupgrade", ref.job_id, instance, detail)
    async with action.running():
        try:
            action.job = (await deps.service.get_job(ref.job_id, ref.instance_id)).job
            failures = await deps.service.failures(ref.job_id, ref.instance_id, fresh=True)
        except IotError as exc:
            action.failed(exc, wrote=False)
            return
        detail.update(found=len(failures.tasks), total=failures.total, capped=failures.truncated)
        task_ids = [t.task_id for t in failures.tasks if t.task_id]
        unexpected: BaseException | None = None
        for batch, result in await deps.service.reupgrade(ref.job_id, task_ids, ref.instance_id):
            if isinstance(result, IotError):
                action.failed(result)
            elif isinstance(result, BaseException):  # recorded first, then raised
                unexpected = unexpected or result
            else:
                detail["reupgraded"] += len(batch)
                action.request_ids.append(result or "")
        if unexpected is not None:
            raise unexpected


# --- the record ------------------------------------------------------------------------------


async def _tell_everyone(
    deps: Deps,
    job_id: str,
    instance: str | None,
    message: Message,
    log_id: int,
    asker: Asker,
) -> None:
    """Post the record in the batch's thread(s), else in the channel it was taken from, and
    tell the person who took it by DM when it was not posted where they clicked."""
    places = await _post_in_threads(deps, job_id, instance, message, log_id)
    if not places and asker.channel_id.startswith(("C", "G")):
        try:
            await deps.poster.post(asker.channel_id, message, marker={"action": log_id})
            places.append(asker.channel_id)
        except (ChannelUnavailable, SlackApiError) as exc:
            log.info("could not post action %s in %s: %s", log_id, asker.channel_id, exc)
    if asker.channel_id not in places:  # the person always learns how it went
        await deps.poster.direct_message(asker.user_id, message)


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
    message = deps.renderer.render(
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
    await _tell_everyone(deps, row["job_id"], instance, message, row["id"], asker)


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
    deps: Deps, job_id: str, instance: str | None, message: Message, log_id: int
) -> list[str]:
    posted = []
    for watch in await deps.store.live_watches(job_id=job_id, instance_id=instance):
        if not watch.card_ts:
            continue
        try:
            await deps.poster.post(
                watch.channel_id, message, marker={"action": log_id}, thread_ts=watch.card_ts
            )
            posted.append(watch.channel_id)
        except (ChannelUnavailable, SlackApiError) as exc:
            log.info("could not post action %s in %s: %s", log_id, watch.channel_id, exc)
    return posted


def register(app: AsyncApp, deps: Deps) -> None:

    async def refusal(respond: AsyncRespond, reason: str) -> None:
        await _say(respond, deps.renderer.render("refused", reason=reason, demo=deps.demo))

    @on_click(app, deps, "job_cancel", JobRef.from_value)
    async def cancel_clicked(ref: JobRef, click: Click) -> None:
        reason = await _refuse(deps, "cancel", click.asker.user_id)
        if reason:
            await refusal(click.respond, reason)
            return

        async def say(message: Message) -> None:
            await _say(click.respond, message)

        await open_cancel_dialog(deps, click.client, ref, click.asker, click.trigger_id, say)

    @app.view(CANCEL_CALLBACK)
    async def cancel_confirmed(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        asker = asker_of(body)
        try:
            private = json.loads(view.get("private_metadata") or "")
            ref = JobRef.from_value(
                json.dumps({"job": private["job"], "instance": private.get("instance")})
            )
        except (ValueError, KeyError, TypeError):
            ref, private = None, {}
        reason = await _refuse(deps, "cancel", asker.user_id)
        if reason or ref is None:
            # The dialog stays open and says why; nothing is canceled.
            await ack(
                response_action="errors",
                errors={IN_PROGRESS_BLOCK: _refusal_words(deps.renderer, reason)},
            )
            return
        await ack()  # closes the dialog; the outcome is posted in the thread and by DM
        values = (view.get("state") or {}).get("values") or {}
        ticked = (values.get(IN_PROGRESS_BLOCK) or {}).get("in_progress") or {}
        in_progress = any(
            o.get("value") == "in_progress" for o in ticked.get("selected_options") or []
        )
        channel = str(private.get("channel") or "")
        asker = replace(asker, channel_id=channel)
        await run_cancel(
            deps, client, asker, {"job": ref.job_id, "instance": ref.instance_id}, in_progress
        )

    @on_click(app, deps, "job_reupgrade", PageRef.from_value)
    async def reupgrade_clicked(ref: PageRef, click: Click) -> None:
        reason = await _refuse(deps, "reupgrade", click.asker.user_id)
        if reason:
            await refusal(click.respond, reason)
            return
        key = (ref.job_id, deps.service.instance_for(ref.instance_id))
        if not deps.kept.reupgrades.start(key):  # a second click, or admin: once is enough
            note = deps.renderer.render(
                "note", kind="reupgrade_running", job_id=ref.job_id, demo=deps.demo
            )
            await _say(click.respond, note)
            return
        try:
            note = deps.renderer.render(
                "note", kind="reupgrading", job_id=ref.job_id, demo=deps.demo
            )
            await _say(click.respond, note)
            await run_reupgrade(deps, click.client, ref, click.asker)
        finally:
            deps.kept.reupgrades.done(key)


def _refusal_words(renderer: Renderer, reason: str | None) -> str:
    """A modal shows input errors as plain text under the block."""
    return renderer.text("dialog_refusal", reason=reason or "stale").strip()
