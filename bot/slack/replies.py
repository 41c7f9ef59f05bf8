"""Turn a job lookup into a message: the card, or Alibaba Cloud's refusal in plain words.

IoT errors are expected answers, not crashes: they become messages here. Anything else
propagates to the error funnel (bot/slack/errors.py).

A card is answered as soon as QueryOTAJob returns; device counts cost seven more calls,
so they follow by replacing the message (``Reply.with_counts``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from slack_bolt.async_app import AsyncRespond

from ..card_counts import Counts
from ..db import ENDED
from ..iot.errors import IotError, error_kind
from ..iot.models import JobResult
from ..job_ref import JobRef
from ..render import Message, job_card
from .deps import Deps
from .grammar import BadInput, Parsed, ShowHelp

LOADING = Counts(loading=True)


@dataclass(frozen=True)
class Reply:
    message: Message
    ok: bool  # False: Alibaba Cloud said no; only the person who asked should see that
    result: JobResult | None = None
    render: Callable[[Counts], Message] | None = None  # the same card with other counts

    def with_counts(self, counts: Counts) -> Message:
        return self.render(counts) if self.render else self.message


async def job_reply(
    deps: Deps,
    ref: JobRef,
    *,
    lang: str,
    refusal_lang: str | None = None,
    fresh: bool = False,
    admin: bool = False,
) -> Reply:
    """The card for ``ref`` (a shared card keeps its "Shared by" line and loses Share),
    in ``lang``; Alibaba Cloud's refusal, which only the asker sees, in ``refusal_lang``
    (default ``lang``). ``admin``: the card is shown only to this person and they may
    take write actions. The message says the device counts are on their way;
    ``with_counts`` fills them in."""
    instance = deps.service.instance_for(ref.instance_id)
    try:
        result = await deps.service.get_job(ref.job_id, ref.instance_id, fresh=fresh)
    except IotError as error:
        message = api_error_message(deps, error, ref.job_id, instance, lang=refusal_lang or lang)
        return Reply(message, ok=False)
    if ref.watch_id is not None:  # a watched card keeps its watch line when refreshed
        watch = await deps.store.get_watch(ref.watch_id)
        if watch is not None and watch.job_id == ref.job_id:

            def watched(c: Counts) -> Message:
                return deps.watcher.card(
                    watch, result, lang=lang, ended=watch.state == ENDED, counts=c
                )

            return Reply(watched(LOADING), ok=True, result=result, render=watched)

    # A card everyone sees (shared, or answering a mention) offers no Share and never the
    # write actions; a person's own card offers both.
    public = ref.public or bool(ref.shared_by)
    buttons = ["refresh", "failed", "watch"] if public else ["refresh", "share", "failed", "watch"]
    if admin and not public and not result.job.is_finished and deps.admins.enabled("cancel"):
        buttons.append("cancel")

    def card(c: Counts) -> Message:
        return job_card(
            deps.renderer,
            result,
            lang=lang,
            ref=ref,
            instance_id=instance,
            demo=deps.demo,
            buttons=buttons,
            counts=c,
        )

    return Reply(card(LOADING), ok=True, result=result, render=card)


async def read_counts(deps: Deps, ref: JobRef, *, fresh: bool = False) -> Counts:
    """Device counts for a card, or the reason they are missing."""
    try:
        return Counts(await deps.service.count_tasks(ref.job_id, ref.instance_id, fresh=fresh))
    except IotError as error:
        return Counts(error=error)


async def answer_with_counts(
    deps: Deps,
    ref: JobRef,
    send: Callable[[Message], Awaitable[object]],
    replace: Callable[[Message], Awaitable[object]] | None,
    *,
    lang: str,
    refusal_lang: str | None = None,
    fresh: bool = False,
    admin: bool = False,
    refused: Callable[[Message], Awaitable[object]] | None = None,
) -> Reply:
    """Send the card as soon as the job is read, then ``replace`` it once the counts are
    in. Alibaba Cloud's refusal goes to ``refused`` (default: ``send``). Without
    ``replace`` (a new message from a button: its response_url can only replace the
    message holding the button) the card waits for the counts, a little.

    Counts are asked for only after the job answered: they never delay the card in the
    quota's queue, and a mistyped JobId costs one call, not eight."""
    reply = await job_reply(
        deps, ref, lang=lang, refusal_lang=refusal_lang, fresh=fresh, admin=admin
    )
    if not reply.ok:
        await (refused or send)(reply.message)
        return reply
    if replace is None:
        await send(reply.with_counts(await counts_within(deps, ref, fresh=fresh)))
        return reply
    counting = asyncio.ensure_future(read_counts(deps, ref, fresh=fresh))
    await asyncio.sleep(0)  # counts in the cache come back at once: one message, no flicker
    if counting.done():
        await send(reply.with_counts(counting.result()))
        return reply
    await send(reply.message)
    await replace(reply.with_counts(await counting))
    return reply


# How long a card that cannot be replaced later waits for its device counts.
ONE_MESSAGE_WAIT = 4.0


async def counts_within(
    deps: Deps, ref: JobRef, *, fresh: bool = False, timeout: float = ONE_MESSAGE_WAIT
) -> Counts:
    """The counts if they come within ``timeout``; else a card says they were slow (the
    read goes on and fills the cache for the next Refresh)."""
    counting = asyncio.ensure_future(read_counts(deps, ref, fresh=fresh))
    done, _ = await asyncio.wait({counting}, timeout=timeout)
    return counting.result() if done else Counts(slow=True)


def ephemeral(
    respond: AsyncRespond, *, replace: bool | None = False
) -> Callable[[Message], Awaitable[None]]:
    """A sender of messages only the asker sees. ``replace``: the message holding the
    button (or the command's earlier answer) is replaced; None leaves Slack's default."""

    async def send(message: Message) -> None:
        extra = {} if replace is None else {"replace_original": replace}
        await respond(response_type="ephemeral", **extra, **message.as_kwargs())

    return send


def api_error_message(
    deps: Deps,
    error: IotError,
    job_id: str,
    instance: str | None,
    subject: str = "batch",
    *,
    lang: str,
) -> Message:
    """Alibaba Cloud's refusal about a batch (``job_id`` is its JobId), or about a
    ``subject`` "firmware" or "device" (``job_id`` then names that)."""
    return deps.renderer.render(
        "api_error",
        lang=lang,
        error=error,
        kind=error_kind(error),
        job_id=job_id,
        instance_id=instance,
        subject=subject,
        demo=deps.demo,
    )


def help_or_refusal(deps: Deps, parsed: Parsed, lang: str) -> Message | None:
    """The usage or what was wrong with the command (no I/O), or None for a request."""
    if isinstance(parsed, ShowHelp):
        return deps.renderer.render(
            "usage", lang=lang, default_instance=deps.service.default_instance_id, demo=deps.demo
        )
    if isinstance(parsed, BadInput):
        return deps.renderer.render(
            "bad_input", lang=lang, reason=parsed.reason, value=parsed.value, demo=deps.demo
        )
    return None
