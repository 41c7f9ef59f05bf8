"""Write actions, off unless OTAJOB_ACTIONS lists them and only for OTAJOB_ADMINS:
cancel a rollout (a confirm dialog that says exactly what will stop) and re-upgrade the
failed devices (confirmed with their count).

The allow-list is checked when the button is clicked and again when the action runs:
a forged, replayed or stale payload gets a refusal in plain words, never the action.
Every action is recorded (bot/slack/action_record.py) before its first write and posted
in the batch's thread: under each watched card of it, else in the channel it was taken from.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from ..iot.errors import IotError
from ..job_ref import JobRef
from ..render import Message, Renderer
from .access import dialog_language
from .action_record import Action
from .asker import Asker
from .buttons import Click, asker_of, on_click
from .deps import Deps
from .replies import ephemeral, read_counts
from .triage import PageRef

log = logging.getLogger("otajob.actions")
CANCEL_CALLBACK = "cancel_confirm"
IN_PROGRESS_BLOCK = "cancel_in_progress"
# Always canceled: tasks that have not started on the device.
PENDING_KINDS = frozenset({"queued", "notified", "scheduled", "unconfirmed"})


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
    """Open the dialog at once (a trigger_id lasts three seconds), in the language known
    for the person (else the workspace's), then fill in what will be canceled once the
    batch and its counts are read, in their language looked up meanwhile."""

    def private_of(lang: str) -> str:
        # The dialog's language goes with it: a refusal on submission is written at the
        # ack, in the language the dialog speaks, with no lookup.
        where = {"job": ref.job_id, "instance": ref.instance_id, "channel": asker.channel_id}
        return json.dumps(where | {"lang": lang})

    lang = asker.lang
    loading = deps.renderer.view(
        "cancel_modal", lang=lang, loading=True, private=private_of(lang), demo=deps.demo
    )
    try:
        opened = await client.views_open(trigger_id=trigger_id, view=loading)
    except SlackApiError as exc:  # e.g. expired_trigger_id: Slack took too long to get here
        log.info("cancel dialog not opened: %s", exc.response.get("error"))
        await say(deps.renderer.render("note", lang=lang, kind="dialog_failed", demo=deps.demo))
        return
    view_id = opened["view"]["id"]
    lang = (await deps.languages.asker(asker)).lang
    context: dict[str, Any] = {
        "loading": False,
        "private": private_of(lang),
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
            view_id=view_id, view=deps.renderer.view("cancel_modal", lang=lang, **context)
        )
    except SlackApiError as exc:  # closed meanwhile: nothing to fill in, nothing canceled
        log.info("cancel dialog not updated: %s", exc.response.get("error"))


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


def register(app: AsyncApp, deps: Deps) -> None:

    async def refusal(respond: AsyncRespond, reason: str, lang: str) -> None:
        message = deps.renderer.render("refused", lang=lang, reason=reason, demo=deps.demo)
        await _say(respond, message)

    # The dialog must open within its trigger's three seconds: the language lookup waits.
    @on_click(app, deps, "job_cancel", JobRef.from_value, look_up_language=False)
    async def cancel_clicked(ref: JobRef, click: Click) -> None:
        reason = await _refuse(deps, "cancel", click.asker.user_id)
        if reason:
            await refusal(click.respond, reason, click.asker.lang)
            return

        async def say(message: Message) -> None:
            await _say(click.respond, message)

        await open_cancel_dialog(deps, click.client, ref, click.asker, click.trigger_id, say)

    @app.view(CANCEL_CALLBACK)
    @deps.answering.after_ack
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
        lang = dialog_language(body) or deps.languages.default
        reason = await _refuse(deps, "cancel", asker.user_id)
        if reason or ref is None:
            # The dialog stays open and says why; nothing is canceled.
            await ack(
                response_action="errors",
                errors={IN_PROGRESS_BLOCK: _refusal_words(deps.renderer, reason, lang)},
            )
            return
        await ack()  # closes the dialog; the outcome is posted in the thread and by DM
        asker = replace(asker, lang=lang)
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
            await refusal(click.respond, reason, click.asker.lang)
            return
        key = (ref.job_id, deps.service.instance_for(ref.instance_id))
        # A second click, or a second admin, on any replica: once is enough.
        if not await deps.kept.reupgrades.start(key):
            note = deps.renderer.render(
                "note",
                lang=click.asker.lang,
                kind="reupgrade_running",
                job_id=ref.job_id,
                demo=deps.demo,
            )
            await _say(click.respond, note)
            return
        try:
            note = deps.renderer.render(
                "note", lang=click.asker.lang, kind="reupgrading", job_id=ref.job_id, demo=deps.demo
            )
            await _say(click.respond, note)
            await run_reupgrade(deps, click.client, ref, click.asker)
        finally:
            await deps.kept.reupgrades.done(key)


def _refusal_words(renderer: Renderer, reason: str | None, lang: str) -> str:
    """A modal shows input errors as plain text under the block."""
    return renderer.text("dialog_refusal", lang=lang, reason=reason or "stale").strip()
