"""The action log repository: the audit of write actions, written before each one runs."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import insert, select, update

from .engine import Repository
from .schema import action_log


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


class ActionLogRepository(Repository):
    async def start_action(
        self,
        *,
        at: float,
        team_id: str | None,
        user_id: str,
        user_name: str,
        action: str,
        job_id: str,
        instance_id: str | None,
        channel_id: str | None,
        detail: dict[str, Any],
    ) -> int:
        """Record an action before its first write (outcome ``started``): a crash while it
        runs leaves this row, and :meth:`claim_interrupted` finds it."""
        values = {
            "at": at,
            "team_id": team_id,
            "user_id": user_id,
            "user_name": user_name[:100],
            "action": action,
            "job_id": job_id,
            "instance_id": instance_id or "",
            "channel_id": channel_id,
            "detail": _json(detail),
            "request_ids": "",
            "outcome": "started",
            "alive_at": at,
        }
        async with self.engine.begin() as conn:
            result = await conn.execute(insert(action_log).values(**values))
        return result.inserted_primary_key[0]

    async def action_alive(self, log_id: int, now: float) -> None:
        """The action is still running (its heartbeat)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(action_log)
                .where(action_log.c.id == log_id, action_log.c.outcome == "started")
                .values(alive_at=now)
            )

    async def finish_action(
        self,
        log_id: int,
        *,
        detail: dict[str, Any],
        request_ids: list[str],
        outcome: str,
        error: str | None = None,
    ) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(action_log)
                .where(action_log.c.id == log_id)
                .values(
                    detail=_json(detail),
                    request_ids=",".join(request_ids),
                    outcome=outcome,
                    error=error,
                )
            )

    async def claim_interrupted(self, stale_before: float) -> list[dict[str, Any]]:
        """Actions still ``started`` whose heartbeat stopped before ``stale_before``: the
        process running them died. Each is marked ``interrupted`` and returned once, to
        whichever process claims it first (one UPDATE … RETURNING: replicas claiming
        together neither share a row nor lock each other out)."""
        claim = (
            update(action_log)
            .where(action_log.c.outcome == "started", action_log.c.alive_at < stale_before)
            .values(outcome="interrupted")
            .returning(*action_log.c)
        )
        async with self.engine.begin() as conn:
            rows = (await conn.execute(claim)).all()
        return sorted((dict(r._mapping) for r in rows), key=lambda r: r["id"])

    async def unclaim_interrupted(self, log_id: int) -> None:
        """Telling about an interrupted action failed: leave it for the next round."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(action_log)
                .where(action_log.c.id == log_id, action_log.c.outcome == "interrupted")
                .values(outcome="started")
            )

    async def actions_for(self, job_id: str) -> list[dict[str, Any]]:
        """The action log of a job, oldest first."""
        query = select(action_log).where(action_log.c.job_id == job_id).order_by(action_log.c.id)
        async with self.engine.connect() as conn:
            return [dict(r._mapping) for r in (await conn.execute(query)).all()]
