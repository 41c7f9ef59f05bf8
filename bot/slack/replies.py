"""Turn a job lookup into a message: the card, or Alibaba Cloud's refusal in plain words.

IoT errors are expected answers, not crashes: they become messages here. Anything else
propagates to the error funnel (bot/slack/errors.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..deps import Deps
from ..iot.errors import IotError, error_kind
from ..render import Message
from .grammar import BadInput, check_instance_id, check_job_id


@dataclass(frozen=True)
class JobRef:
    """Which job a button is about; travels in the button's value."""

    job_id: str
    instance_id: str | None = None

    def to_value(self) -> str:
        return json.dumps({"job": self.job_id, "instance": self.instance_id}, separators=(",", ":"))

    @classmethod
    def from_value(cls, value: str | None) -> JobRef | None:
        """None for anything that is not a value we wrote (stale or forged payloads)."""
        try:
            data = json.loads(value or "")
            job_id = check_job_id(str(data["job"]))
            instance = data.get("instance")
            if instance is not None:
                instance = check_instance_id(str(instance))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        if isinstance(job_id, BadInput) or isinstance(instance, BadInput):
            return None
        return cls(job_id, instance)


async def job_message(
    deps: Deps,
    ref: JobRef,
    *,
    fresh: bool = False,
    shared_by: str | None = None,
    buttons: tuple[str, ...] = ("refresh", "share"),
) -> Message:
    instance = deps.service.instance_for(ref.instance_id)
    try:
        result = await deps.service.get_job(ref.job_id, ref.instance_id, fresh=fresh)
    except IotError as error:
        return deps.renderer.render(
            "api_error",
            error=error,
            kind=error_kind(error),
            job_id=ref.job_id,
            instance_id=instance,
            demo=deps.demo,
        )
    return deps.renderer.render(
        "job",
        job=result.job,
        job_id=ref.job_id,
        request_id=result.request_id,
        checked_at=result.fetched_at,
        instance_id=instance,
        demo=deps.demo,
        shared_by=shared_by,
        buttons=buttons,
        button_value=ref.to_value(),
    )
