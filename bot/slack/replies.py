"""Turn a job lookup into a message: the card, or Alibaba Cloud's refusal in plain words.

IoT errors are expected answers, not crashes: they become messages here. Anything else
propagates to the error funnel (bot/slack/errors.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..deps import Deps
from ..iot.errors import IotError, error_kind
from ..job_ref import JobRef
from ..render import Message
from ..watch.store import ENDED


@dataclass(frozen=True)
class Reply:
    message: Message
    ok: bool  # False: Alibaba Cloud said no; only the person who asked should see that


async def job_reply(deps: Deps, ref: JobRef, *, fresh: bool = False) -> Reply:
    """The card for ``ref`` (a shared card keeps its "Shared by" line and loses Share)."""
    instance = deps.service.instance_for(ref.instance_id)
    try:
        result = await deps.service.get_job(ref.job_id, ref.instance_id, fresh=fresh)
    except IotError as error:
        return Reply(api_error_message(deps, error, ref.job_id, instance), ok=False)
    if ref.watch_id is not None:  # a watched card keeps its watch line when refreshed
        watch = await deps.watcher.store.get_watch(ref.watch_id)
        if watch is not None and watch.job_id == ref.job_id:
            return Reply(deps.watcher.card(watch, result, ended=watch.state == ENDED), ok=True)
    card = deps.renderer.render(
        "job",
        job=result.job,
        job_id=ref.job_id,
        request_id=result.request_id,
        checked_at=result.fetched_at,
        instance_id=instance,
        demo=deps.demo,
        shared_by=ref.shared_by,
        buttons=("refresh", "watch") if ref.shared_by else ("refresh", "share", "watch"),
        button_value=ref.to_value(),
    )
    return Reply(card, ok=True)


def api_error_message(deps: Deps, error: IotError, job_id: str, instance: str | None) -> Message:
    return deps.renderer.render(
        "api_error",
        error=error,
        kind=error_kind(error),
        job_id=job_id,
        instance_id=instance,
        demo=deps.demo,
    )
