"""On-call triage: failed devices (by reason, paged, as CSV) and lookups around a batch
(a device's batches, a firmware's batches), each row opening the job card."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from slack_bolt.async_app import AsyncApp, AsyncRespond

from .. import failures as failure_pages
from ..iot.errors import IotError
from ..iot.models import OtaJob
from ..iot.service import Failures
from ..job_ref import JobRef
from ..render import Message
from .asker import Asker
from .buttons import Click, on_click
from .deps import Deps
from .grammar import DeviceJobs, FailedDevices, FirmwareJobs
from .replies import answer_with_counts, api_error_message, ephemeral

# A failure listing that takes longer than this gets a "reading…" message first.
INTERIM_AFTER_SECONDS = 1.0
# How a message relates to what Slack can replace later through the response_url:
# "command": a new message that follow-ups replace; "in_place": the message holding the
# button is replaced; "new": a new message from a button, which nothing can replace.
Mode = Literal["command", "in_place", "new"]


@dataclass(frozen=True)
class PageRef:
    """A failure listing's page, carried in its buttons' values."""

    job_id: str
    instance_id: str | None
    page: int

    def to_value(self) -> str:
        data = {"job": self.job_id, "instance": self.instance_id, "page": self.page}
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_value(cls, value: str | None) -> PageRef | None:
        """None for anything we did not write (stale or forged payloads)."""
        ref = JobRef.from_value(value)
        try:
            page = int(json.loads(value or "")["page"])
        except (ValueError, KeyError, TypeError):
            return None
        if ref is None or not 1 <= page <= 100_000:
            return None
        return cls(ref.job_id, ref.instance_id, page)


async def _job_or_none(deps: Deps, job_id: str, instance_id: str | None) -> OtaJob | None:
    """The batch, for the listing's title; the listing stands without it."""
    try:
        return (await deps.service.get_job(job_id, instance_id)).job
    except IotError:
        return None


async def failed_devices(
    deps: Deps,
    request: FailedDevices,
    asker: Asker,
    respond: AsyncRespond,
    *,
    page: int = 1,
    fresh: bool = False,
    mode: Mode = "command",
) -> None:
    """Reasons and one page of devices. A long read shows "reading…" first and is then
    replaced, where the message can be replaced later (see Mode); paging through a
    listing reuses it for a minute."""
    instance = deps.service.instance_for(request.instance_id)
    reading = asyncio.ensure_future(
        deps.service.failures(request.job_id, request.instance_id, fresh=fresh)
    )
    job_reading = asyncio.ensure_future(_job_or_none(deps, request.job_id, request.instance_id))
    interim = False
    if mode != "new":
        done, _ = await asyncio.wait({reading}, timeout=INTERIM_AFTER_SECONDS)
        interim = not done
    if interim:
        note = deps.renderer.render(
            "note", lang=asker.lang, kind="reading_failed", job_id=request.job_id, demo=deps.demo
        )
        await ephemeral(respond, replace=mode == "in_place")(note)
    send = ephemeral(respond, replace=mode == "in_place" or interim)
    try:
        failures = await reading
    except IotError as error:
        job_reading.cancel()
        await send(api_error_message(deps, error, request.job_id, instance, lang=asker.lang))
        return
    job = await job_reading
    can_reupgrade = bool(failures.tasks) and await deps.admins.may("reupgrade", asker.user_id)
    await send(
        render_failures(
            deps, request.job_id, instance, job, failures, page, can_reupgrade, lang=asker.lang
        )
    )


def render_failures(
    deps: Deps,
    job_id: str,
    instance: str | None,
    job: OtaJob | None,
    failures: Failures,
    page: int,
    can_reupgrade: bool,
    *,
    lang: str,
) -> Message:
    return deps.renderer.render(
        "failed",
        lang=lang,
        job=job,
        job_id=job_id,
        instance_id=instance,
        failures=failures,
        reasons=failures.reasons(),
        page=failure_pages.page_of(failures.tasks, page),
        top_reasons=failure_pages.TOP_REASONS,
        can_reupgrade=can_reupgrade and job is not None,
        nav_value=lambda n: PageRef(job_id, instance, n).to_value(),
        demo=deps.demo,
    )


async def upload_csv(deps: Deps, ref: PageRef, asker: Asker, respond: AsyncRespond) -> None:
    """The whole listing as a CSV file in the conversation (or the person's DM)."""
    try:
        failures = await deps.service.failures(ref.job_id, ref.instance_id)
    except IotError as error:
        instance = deps.service.instance_for(ref.instance_id)
        message = api_error_message(deps, error, ref.job_id, instance, lang=asker.lang)
        await ephemeral(respond)(message)
        return
    n = len(failures.tasks)
    # Shared in the channel, its words (header row, title, comment) are in the channel's
    # language; sent by DM, in the asker's.
    channel_lang = await deps.languages.of_channel(asker.channel_id)

    def file(dm: bool) -> dict[str, Any]:
        lang = asker.lang if dm else channel_lang
        words = dict(lang=lang, n=n, job_id=ref.job_id, who=asker.user_name, demo=False)
        header = deps.renderer.text("csv_header", lang=lang).split("\n")
        return {
            "content": failure_pages.to_csv(failures.tasks, header),
            "filename": f"otajob-{ref.job_id}-failed.csv",
            "title": deps.renderer.render("note", kind="csv_title", **words).text,
            # A name, not a mention: asking for a file must not ping anyone.
            "initial_comment": deps.renderer.render("note", kind="csv_comment", **words).text,
        }

    where = await deps.poster.upload(asker.channel_id, asker.user_id, file)
    kind = "csv_here" if where == asker.channel_id else "csv_in_dm" if where else "csv_nowhere"
    note = deps.renderer.render("note", lang=asker.lang, kind=kind, n=n, demo=deps.demo)
    await ephemeral(respond)(note)


async def firmware_jobs(
    deps: Deps, request: FirmwareJobs, asker: Asker, respond: AsyncRespond
) -> None:
    instance = deps.service.instance_for(request.instance_id)
    try:
        page = await deps.service.jobs_by_firmware(request.firmware_id, request.instance_id)
    except IotError as error:
        message = api_error_message(
            deps, error, request.firmware_id, instance, "firmware", lang=asker.lang
        )
        await ephemeral(respond)(message)
        return
    message = _job_list(
        deps,
        asker.lang,
        page.items,
        page.total,
        [page.request_id or ""],
        instance,
        firmware_id=request.firmware_id,
        searched=None,
    )
    await ephemeral(respond)(message)


async def device_jobs(deps: Deps, request: DeviceJobs, asker: Asker, respond: AsyncRespond) -> None:
    instance = deps.service.instance_for(request.instance_id)
    try:
        found = await deps.service.jobs_by_device(
            request.product_key, request.device_name, request.firmware_id, request.instance_id
        )
    except IotError as error:
        subject = f"{request.product_key}/{request.device_name}"
        message = api_error_message(deps, error, subject, instance, "device", lang=asker.lang)
        await ephemeral(respond)(message)
        return
    # Without a FirmwareId the list comes from the newest packages: the list says so.
    searched = found if request.firmware_id is None else None
    message = _job_list(
        deps,
        asker.lang,
        found.jobs,
        len(found.jobs),
        found.request_ids,
        instance,
        product_key=request.product_key,
        device_name=request.device_name,
        searched=searched,
    )
    await ephemeral(respond)(message)


def _job_list(
    deps: Deps,
    lang: str,
    jobs: list[Any],
    total: int,
    request_ids: list[str],
    instance: str | None,
    *,
    searched: Any,
    **subject: str,
) -> Message:
    """``searched``: the device lookup across the newest packages (DeviceJobs without a
    FirmwareId), said under the list; None otherwise."""
    defaults = {"product_key": "", "device_name": "", "firmware_id": ""}
    # At most 20 shown, fewer if that many would pass Slack's message size.
    return deps.renderer.render_fitting(
        "job_list",
        jobs[:20],
        lang=lang,
        jobs=jobs,
        total=total,
        request_ids=[r for r in request_ids if r],
        instance_id=instance,
        searched=searched,
        open_value=lambda job_id: JobRef(job_id, instance).to_value(),
        demo=deps.demo,
        **(defaults | subject),
    )


def register(app: AsyncApp, deps: Deps) -> None:
    @on_click(app, deps, "job_failed", JobRef.from_value)
    async def failed_button(ref: JobRef, click: Click) -> None:
        request = FailedDevices(ref.job_id, ref.instance_id)
        await failed_devices(deps, request, click.asker, click.respond, fresh=True, mode="new")

    # Previous and Next share a block, so they need their own action_ids (Slack refuses
    # duplicates); "failed_page" is what listings posted by earlier versions carry.
    @on_click(app, deps, re.compile(r"^failed_page(_prev|_next)?$"), PageRef.from_value)
    async def failed_page(ref: PageRef, click: Click) -> None:
        request = FailedDevices(ref.job_id, ref.instance_id)
        await failed_devices(
            deps, request, click.asker, click.respond, page=ref.page, mode="in_place"
        )

    @on_click(app, deps, "failed_csv", PageRef.from_value)
    async def failed_csv(ref: PageRef, click: Click) -> None:
        await upload_csv(deps, ref, click.asker, click.respond)

    @on_click(app, deps, "job_open", JobRef.from_value)
    async def open_card(ref: JobRef, click: Click) -> None:
        admin = await deps.admins.is_admin(click.asker.user_id)
        await answer_with_counts(
            deps, ref, ephemeral(click.respond), None, lang=click.asker.lang, admin=admin
        )


ROUTES = {
    FailedDevices: failed_devices,
    FirmwareJobs: firmware_jobs,
    DeviceJobs: device_jobs,
}
