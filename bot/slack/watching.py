"""/otajob watch, unwatch, watches and the card's Watch button."""

from __future__ import annotations

import json
import logging
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache
from slack_bolt.async_app import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from ..bounded import gather_bounded
from ..deps import Deps
from ..iot.errors import IotError
from ..job_ref import JobRef
from ..watch.poster import ChannelUnavailable
from ..watch.watcher import Outcome
from .grammar import ListWatches, UnwatchJob, WatchJob
from .replies import api_error_message, ephemeral, job_reply

log = logging.getLogger("otajob.watching")
# conversations.members answers that mean "not a channel this person and the app share".
NOT_A_MEMBER_ANSWERS = frozenset({"channel_not_found", "not_in_channel", "is_archived"})


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
    unchecked: set[str] = set()
    if request.everywhere:  # only channels the asker is in
        others = {w.channel_id for w in watches} - {channel_id}
        visible, unchecked = await channels_of(deps.watcher.poster.client, others, user_id)
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
    message = deps.renderer.render_fitting(
        "watches",
        rows,
        everywhere=request.everywhere,
        unchecked=len(unchecked),
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
    elif not deps.admins.policy.channel_allowed(target):  # OTAJOB_ALLOWED_CHANNELS
        refusal = "channel_not_allowed"
    elif target != asker.channel_id:
        member = await _is_member(deps, target, asker.user_id)
        refusal = None if member else "not_a_member" if member is False else "membership_unknown"
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


async def _is_member(deps: Deps, channel_id: str, user_id: str) -> bool | None:
    return await is_member(deps.watcher.poster.client, channel_id, user_id)


# Per app client (the runtime's own AsyncWebClient; Bolt gives each request a new one, so
# callers pass deps.watcher.poster.client): (channel, user) -> member?, for a minute.
# The Home tab and `watches all` ask about every watched channel each time; membership
# rarely changes within a minute. Changing a watch always asks Slack. Only answers are
# kept: a check that failed (rate limited past the retries, Slack down) is asked again.
MEMBERSHIP_SECONDS = 60.0
MEMBERSHIP_ENTRIES = 10_000
MEMBERSHIP_CHECKS = 8  # conversations.members calls in flight for one listing
_membership: weakref.WeakKeyDictionary[AsyncWebClient, TTLCache[tuple[str, str], bool]]
_membership = weakref.WeakKeyDictionary()


async def is_member(
    client: AsyncWebClient, channel_id: str, user_id: str, *, cached: bool = False
) -> bool | None:
    """Whether a person is in a channel; None when Slack did not say (an error)."""
    if not cached:
        return await _ask_membership(client, channel_id, user_id)
    known = _membership.get(client)
    if known is None:
        known = _membership[client] = TTLCache(MEMBERSHIP_ENTRIES, MEMBERSHIP_SECONDS)
    if (channel_id, user_id) in known:
        return known[(channel_id, user_id)]
    member = await _ask_membership(client, channel_id, user_id)
    if member is not None:
        known[(channel_id, user_id)] = member
    return member


async def channels_of(
    client: AsyncWebClient, channel_ids: Iterable[str], user_id: str
) -> tuple[set[str], set[str]]:
    """(the channels the person is in, the channels that could not be checked), asking
    a few at a time."""
    channels = sorted(set(channel_ids))
    answers = await gather_bounded(
        (lambda c=c: is_member(client, c, user_id, cached=True) for c in channels),
        MEMBERSHIP_CHECKS,
    )
    member = {c for c, ok in zip(channels, answers, strict=True) if ok}
    unknown = {c for c, ok in zip(channels, answers, strict=True) if ok is None}
    return member, unknown


async def _ask_membership(client: AsyncWebClient, channel_id: str, user_id: str) -> bool | None:
    try:
        async for page in await client.conversations_members(channel=channel_id, limit=1000):
            if user_id in (page.get("members") or []):
                return True
    except SlackApiError as exc:
        if exc.response.get("error") in NOT_A_MEMBER_ANSWERS:
            return False  # Slack's answer: the channel is gone or closed to the app
        log.warning("cannot check membership of %s: %s", channel_id, exc.response.get("error"))
        return None
    except Exception as exc:  # no answer at all
        log.warning("cannot reach Slack to check %s: %s", channel_id, type(exc).__name__)
        return None
    return False


ROUTES = {WatchJob: watch, UnwatchJob: unwatch, ListWatches: list_watches}
