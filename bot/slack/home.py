"""otajob's Home tab: the batches watched in channels the person is in, published at once
from what the watchers last read, then again after re-reading the newest."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from ..db import Watch
from ..iot.errors import IotError
from ..iot.models import OtaJob, TaskCounts
from ..iot.quota import Priority
from ..job_ref import JobRef
from .deps import Deps
from .kept import Debounce
from .mention import first_delivery
from .watching import channels_of

log = logging.getLogger("otajob.events")
HOME_ROWS = 30  # rows on the Home tab (each a block or two, within the 100-block limit)
HOME_REFRESH = 10  # jobs re-read from Alibaba Cloud when the tab opens
# Opening the tab again within 30 s shows what was read and calls nothing (Refresh: every
# 10 s at most): deps.kept.home_opened / home_refreshed.


async def publish_home(
    deps: Deps,
    client: AsyncWebClient,
    user_id: str,
    *,
    refresh: bool,
    fresh: bool = False,
    debounce: Debounce | None = None,
) -> None:
    """The Home tab: jobs watched in channels this person is in. Published at once from
    what the watchers last read, then, with ``refresh``, again after reading the newest
    of them afresh (``fresh``: past the service's few-seconds cache, for the button)."""
    # Bolt hands each request a new client; the app's own one keeps the caches warm.
    rows, hidden, unchecked = await _home_rows(deps, user_id)
    refresh = refresh and bool(rows) and (debounce is None or await debounce.may(user_id))
    await _publish(deps, client, user_id, rows, (hidden, unchecked), refreshing=refresh)
    if not refresh:
        return
    await asyncio.gather(*(_refresh_row(deps, row, fresh) for row in rows[:HOME_REFRESH]))
    rows.sort(key=_row_order)  # a batch may have started or finished meanwhile
    await _publish(deps, client, user_id, rows, (hidden, unchecked), refreshing=False)


async def _home_rows(deps: Deps, user_id: str) -> tuple[list[dict[str, Any]], int, int]:
    """The rows to show (at most HOME_ROWS), how many more there are, and in how many
    channels membership could not be checked (their watches are left out)."""
    watches = await deps.store.live_watches()
    visible, unchecked = await channels_of(deps, {w.channel_id for w in watches}, user_id)
    watches = [w for w in watches if w.channel_id in visible]
    polls = await deps.store.polls_for(watches)
    rows = []
    for w in watches:
        poll = polls.get((w.job_id, w.instance_id))
        data = json.loads(poll.job_json) if poll and poll.job_json else {}
        counts = json.loads(poll.counts_json) if poll and poll.counts_json else None
        rows.append(
            {
                "watch": w,
                "job": OtaJob.parse(data) if data else None,
                "counts": TaskCounts(counts=counts) if counts else None,
                "counted_at": poll.counted_at if poll else None,
                "link": None,
            }
        )
    # Running batches first, then the most recently changed.
    rows.sort(key=_row_order)
    hidden = max(len(rows) - HOME_ROWS, 0)
    rows = rows[:HOME_ROWS]
    links = await asyncio.gather(*(_permalink(deps, r["watch"]) for r in rows))
    for row, link in zip(rows, links, strict=True):
        row["link"] = link
    return rows, hidden, len(unchecked)


def _row_order(row: dict[str, Any]) -> tuple[int, float]:
    job: OtaJob | None = row["job"]
    status = job.job_status if job else row["watch"].told_status
    rank = {"IN_PROGRESS": 0, "PLANNED": 1}.get(status or "", 2)
    modified = job.utc_modified.timestamp() if job and job.utc_modified else 0.0
    return rank, -modified


async def _permalink(deps: Deps, watch: Watch) -> str | None:
    """The watched card's link (they never change: kept in deps.kept.card_links)."""
    if not watch.card_ts:
        return None
    key = (watch.channel_id, watch.card_ts)
    links = deps.kept.card_links
    if key not in links:
        try:
            response = await deps.client.chat_getPermalink(
                channel=watch.channel_id, message_ts=watch.card_ts
            )
            links[key] = str(response["permalink"])
        except SlackApiError:
            return None
    return links[key]


async def _refresh_row(deps: Deps, row: dict[str, Any], fresh: bool = False) -> None:
    """Fresh status and counts for one row, at background priority: the Home tab must not
    hold up someone's /otajob (the watchers' share of the quota bounds it)."""
    watch: Watch = row["watch"]
    try:
        result = await deps.service.get_job(
            watch.job_id, watch.instance_id, fresh=fresh, priority=Priority.BACKGROUND
        )
        row["job"] = result.job
    except IotError as exc:
        row["error"] = exc
        return
    ref = JobRef(watch.job_id, watch.instance_id)
    try:
        counts = await deps.service.count_tasks(
            ref.job_id, ref.instance_id, fresh=fresh, priority=Priority.BACKGROUND
        )
    except IotError as exc:
        row["error"] = exc
        return
    row["counts"], row["counted_at"] = counts, time.time()
    await deps.store.record_counts(
        watch.job_id, watch.instance_id, json.dumps(counts.counts), row["counted_at"]
    )


async def _publish(
    deps: Deps,
    client: AsyncWebClient,
    user_id: str,
    rows: list[dict[str, Any]],
    left_out: tuple[int, int],
    *,
    refreshing: bool,
) -> None:
    """``left_out``: (rows past the limit, channels whose membership was not answered)."""
    hidden, unchecked = left_out
    lang = await deps.languages.of_person(user_id)
    view = deps.renderer.view(
        "home",
        lang=lang,
        rows=rows,
        hidden=hidden,
        unchecked=unchecked,
        refreshing=refreshing,
        now=time.time(),
        demo=deps.demo,
    )
    await client.views_publish(user_id=user_id, view=view)


def register(app: AsyncApp, deps: Deps) -> None:
    @app.event("app_home_opened")
    @deps.answering.after_ack
    async def home_opened(
        body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient
    ) -> None:
        if event.get("tab") == "home" and await first_delivery(deps, body):
            user_id = str(event.get("user"))
            await publish_home(deps, client, user_id, refresh=True, debounce=deps.kept.home_opened)

    @app.action("home_refresh")
    @deps.answering.after_ack
    async def home_refresh(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        user_id = str((body.get("user") or {}).get("id"))
        await publish_home(
            deps, client, user_id, refresh=True, fresh=True, debounce=deps.kept.home_refreshed
        )

    @app.action("home_open")
    @deps.answering.after_ack
    async def home_open(ack: AsyncAck) -> None:
        await ack()  # a link button: Slack opens the card; nothing to do here
