"""/otajob watch, unwatch, watches and the card's Watch button."""

from __future__ import annotations

import json
import time
import weakref
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from ..deps import Deps
from ..iot.errors import IotError
from ..job_ref import JobRef
from ..watch.poster import ChannelUnavailable
from ..watch.watcher import Outcome
from .grammar import ListWatches, UnwatchJob, WatchJob
from .replies import api_error_message, ephemeral, job_reply


@dataclass(frozen=True)
class Asker:
    """Who typed the command, and where."""

    channel_id: str
    user_id: str
    user_name: str
    team_id: str = ""


async def _tell(respond: AsyncRespond, deps: Deps, **context: Any) -> None:
    message = deps.renderer.render(
        "watch_reply", interval=deps.watcher.interval(), demo=deps.demo, **context
    )
    await ephemeral(respond)(message)


async def watch(deps: Deps, request: WatchJob, asker: Asker, respond: AsyncRespond) -> None:
    target = request.channel_id or asker.channel_id
    if await _refused(deps, request.job_id, target, asker, respond):
        return
    try:
        result = await deps.watcher.watch(
            job_id=request.job_id,
            instance_id=request.instance_id,
            channel_id=target,
            user_id=asker.user_id,
            user_name=asker.user_name,
            only=request.only,
            quiet=request.quiet,
            alert=request.alert,
            notify=request.notify,
            alert_off=request.alert_off,
        )
    except IotError as error:
        instance = deps.service.instance_for(request.instance_id)
        message = api_error_message(deps, error, request.job_id, instance)
        await ephemeral(respond)(message)
        return
    outcome, error = result.outcome, result.error
    if outcome == Outcome.FINISHED:  # nothing to watch: show the final card instead
        card = (await job_reply(deps, JobRef(request.job_id, request.instance_id))).message
        if target == asker.channel_id:
            await respond(response_type="in_channel", replace_original=False, **card.as_kwargs())
        else:
            try:
                marker = {"final_card": request.job_id}
                await deps.watcher.poster.post(target, card, marker=marker)
            except ChannelUnavailable as exc:
                outcome, error = Outcome.CHANNEL_UNAVAILABLE, exc.error
    await _tell(
        respond,
        deps,
        outcome=outcome.value,
        job_id=request.job_id,
        channel_id=target,
        watch=result.watch,
        error=error,
    )


async def unwatch(deps: Deps, request: UnwatchJob, asker: Asker, respond: AsyncRespond) -> None:
    target = request.channel_id or asker.channel_id
    if await _refused(deps, request.job_id, target, asker, respond):
        return
    ended = await deps.watcher.unwatch(
        job_id=request.job_id,
        instance_id=request.instance_id,
        channel_id=target,
        user_name=asker.user_name,
    )
    await _tell(
        respond,
        deps,
        outcome="unwatched" if ended else "not_watched",
        job_id=request.job_id,
        channel_id=target,
        watch=ended,
        error=None,
    )


async def list_watches(
    deps: Deps, request: ListWatches, asker: Asker, respond: AsyncRespond
) -> None:
    channel_id, user_id = asker.channel_id, asker.user_id
    store = deps.watcher.store
    watches = await store.live_watches(channel_id=None if request.everywhere else channel_id)
    if request.everywhere:  # only channels the asker is in
        client = deps.watcher.poster.client
        visible = {
            c
            for c in {w.channel_id for w in watches}
            if await is_member(client, c, user_id, cached=True)
        }
        watches = [w for w in watches if w.channel_id in visible or w.channel_id == channel_id]
    polls = await store.polls_for(watches)
    rows = []
    for w in watches:
        poll = polls.get((w.job_id, w.instance_id))
        data = json.loads(poll.job_json) if poll and poll.job_json else {}
        rows.append(
            {
                "watch": w,
                "status": (poll and poll.status) or w.told_status,
                "firmware": data.get("Name"),
            }
        )
    message = deps.renderer.render(
        "watches",
        rows=rows,
        everywhere=request.everywhere,
        interval=deps.watcher.interval(),
        demo=deps.demo,
    )
    await ephemeral(respond, replace=None)(message)


async def _refused(
    deps: Deps, job_id: str, target: str, asker: Asker, respond: AsyncRespond
) -> bool:
    """Watches live in channels, and a person may only change them in channels they are
    in. Says why when it refuses."""
    refusal = None
    if not target.startswith(("C", "G")):
        refusal = "not_a_channel"
    elif deps.admins.policy.refusal(None, None, target):  # OTAJOB_ALLOWED_CHANNELS
        refusal = "channel_not_allowed"
    elif target != asker.channel_id and not await _is_member(deps, target, asker.user_id):
        refusal = "not_a_member"
    if refusal:
        await _tell(
            respond,
            deps,
            outcome=refusal,
            job_id=job_id,
            channel_id=target,
            watch=None,
            error=None,
        )
    return refusal is not None


async def _is_member(deps: Deps, channel_id: str, user_id: str) -> bool:
    return await is_member(deps.watcher.poster.client, channel_id, user_id)


# Per app client (the runtime's own AsyncWebClient; Bolt gives each request a new one, so
# callers pass deps.watcher.poster.client): (channel, user) -> (when checked, member?).
# The Home tab and `watches all` ask about every watched channel each time; membership
# rarely changes within a minute. Changing a watch always asks Slack.
_membership: weakref.WeakKeyDictionary[AsyncWebClient, dict[tuple[str, str], tuple[float, bool]]]
_membership = weakref.WeakKeyDictionary()
MEMBERSHIP_SECONDS = 60.0


async def is_member(
    client: AsyncWebClient, channel_id: str, user_id: str, *, cached: bool = False
) -> bool:
    """Whether a person is in a channel; False when Slack will not say."""
    if not cached:
        return await _ask_membership(client, channel_id, user_id)
    known_here = _membership.setdefault(client, {})
    now = time.monotonic()
    known = known_here.get((channel_id, user_id))
    if known and now - known[0] < MEMBERSHIP_SECONDS:
        return known[1]
    if len(known_here) > 10_000:  # forget old answers rather than grow without end
        known_here.clear()
    member = await _ask_membership(client, channel_id, user_id)
    known_here[(channel_id, user_id)] = (now, member)
    return member


async def _ask_membership(client: AsyncWebClient, channel_id: str, user_id: str) -> bool:
    try:
        async for page in await client.conversations_members(channel=channel_id, limit=1000):
            if user_id in (page.get("members") or []):
                return True
    except SlackApiError:
        return False
    return False


ROUTES = {WatchJob: watch, UnwatchJob: unwatch, ListWatches: list_watches}
