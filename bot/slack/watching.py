"""/otajob watch, unwatch, watches and the card's Watch button."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from slack_bolt.async_app import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from ..iot.errors import IotError
from ..job_ref import JobRef
from ..languages import NAMES
from ..watch.poster import ChannelUnavailable
from ..watch.watcher import Outcome
from .asker import Asker
from .deps import Deps
from .grammar import ListWatches, UnwatchJob, WatchJob
from .replies import api_error_message, ephemeral, job_reply

log = logging.getLogger("otajob.watching")
# conversations.members answers that mean "not a channel this person and the app share".
NOT_A_MEMBER_ANSWERS = frozenset({"channel_not_found", "not_in_channel", "is_archived"})


async def _tell(respond: AsyncRespond, deps: Deps, lang: str, **context: Any) -> None:
    message = deps.renderer.render(
        "watch_reply",
        lang=lang,
        interval=deps.watcher.interval(),
        live=deps.watcher.live.connected(),
        demo=deps.demo,
        **context,
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
            user_language=asker.lang,
        )
    except IotError as error:
        instance = deps.service.instance_for(request.instance_id)
        message = api_error_message(deps, error, request.job_id, instance, lang=asker.lang)
        await ephemeral(respond)(message)
        return
    outcome, error = result.outcome, result.error
    if outcome == Outcome.FINISHED:  # nothing to watch: show the final card instead
        lang = await deps.languages.of_channel(target)  # posted for everyone there
        ref = JobRef(request.job_id, request.instance_id)
        reply = await job_reply(deps, ref, lang=lang, refusal_lang=asker.lang)
        card = reply.message
        if not reply.ok:  # Alibaba Cloud's refusal is the asker's alone, never the channel's
            await ephemeral(respond)(card)
            return
        if target == asker.channel_id:
            await respond(response_type="in_channel", replace_original=False, **card.as_kwargs())
        else:
            try:
                marker = {"final_card": request.job_id}
                await deps.poster.post(target, card, marker=marker)
            except ChannelUnavailable as exc:
                outcome, error = Outcome.CHANNEL_UNAVAILABLE, exc.error
    await _tell(
        respond,
        deps,
        asker.lang,
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
        asker.lang,
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
    store = deps.store
    watches = await store.live_watches(channel_id=None if request.everywhere else channel_id)
    unchecked: set[str] = set()
    if request.everywhere:  # only channels the asker is in
        others = {w.channel_id for w in watches} - {channel_id}
        visible, unchecked = await channels_of(deps, others, user_id)
        watches = [w for w in watches if w.channel_id in visible or w.channel_id == channel_id]
    polls = await store.polls_for(watches)
    languages = await store.channel_languages(w.channel_id for w in watches)
    default = deps.languages.default
    rows = []
    for w in watches:
        poll = polls.get((w.job_id, w.instance_id))
        data = json.loads(poll.job_json) if poll and poll.job_json else {}
        rows.append(
            {
                "watch": w,
                "status": (poll and poll.status) or w.told_status,
                "firmware": data.get("Name"),
                "language": NAMES.get(languages.get(w.channel_id, default), ""),
            }
        )
    here = await deps.languages.of_channel(channel_id)
    message = deps.renderer.render_fitting(
        "watches",
        rows,
        lang=asker.lang,
        language=NAMES.get(here, ""),
        everywhere=request.everywhere,
        unchecked=len(unchecked),
        interval=deps.watcher.interval(),
        live=deps.watcher.live.connected(),
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
            asker.lang,
            outcome=refusal,
            job_id=job_id,
            channel_id=target,
            watch=None,
            error=None,
        )
    return refusal is not None


async def _is_member(deps: Deps, channel_id: str, user_id: str) -> bool | None:
    return await is_member(deps.client, channel_id, user_id)


async def is_member(client: AsyncWebClient, channel_id: str, user_id: str) -> bool | None:
    """Whether a person is in one channel, asked afresh (changing a watch); None when
    Slack did not say (an error)."""
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


# The Home tab and `watches all` ask about every watched channel each time. One
# users.conversations call (Tier 3, up to 999 channels a page) answers for all of them,
# where conversations.members would cost a call per channel (Tier 4: 2,000 watched
# channels would take Slack's limits 20 minutes). Kept a minute in deps.kept.channels;
# only answers are kept: a read that failed is asked again next time.
CHANNELS_PAGE = 999  # users.conversations' largest page


async def channels_of(
    deps: Deps, channel_ids: Iterable[str], user_id: str
) -> tuple[set[str], set[str]]:
    """(which of ``channel_ids`` the person is in, which could not be checked): the
    public channels they are in and the private ones they share with the app."""
    wanted = set(channel_ids)
    if not wanted:
        return set(), set()
    theirs = deps.kept.channels.get(user_id)
    if theirs is None:
        theirs = await _read_channels(deps.client, user_id)
        if theirs is None:
            return set(), wanted
        deps.kept.channels[user_id] = theirs
    return wanted & theirs, set()


async def _read_channels(client: AsyncWebClient, user_id: str) -> frozenset[str] | None:
    found: set[str] = set()
    try:
        pages = await client.users_conversations(
            user=user_id,
            types="public_channel,private_channel",
            exclude_archived=True,
            limit=CHANNELS_PAGE,
        )
        async for page in pages:
            found.update(str(c.get("id")) for c in page.get("channels") or [])
    except SlackApiError as exc:
        log.warning("cannot read %s's channels: %s", user_id, exc.response.get("error"))
        return None
    except Exception as exc:  # no answer at all
        log.warning("cannot reach Slack for %s's channels: %s", user_id, type(exc).__name__)
        return None
    return frozenset(found)


ROUTES = {WatchJob: watch, UnwatchJob: unwatch, ListWatches: list_watches}
