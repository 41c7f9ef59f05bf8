"""Exactly-once posts: record the intent, find an earlier post after a crash, post, record."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..db import Store, Watch, WatchChange
from ..render import Message
from .poster import SlackPoster


class Delivery:
    def __init__(self, store: Store, poster: SlackPoster, *, clock: Callable[[], float]) -> None:
        self.store = store
        self.poster = poster
        self._clock = clock

    async def deliver(
        self,
        watch: Watch,
        kind: str,
        key: str,
        message: Message,
        *,
        thread_ts: str | None,
        broadcast: bool = False,
        told_status: str | None = None,
        watch_values: dict[str, Any] | None = None,
    ) -> str:
        """Post once: record the intent, look for an earlier attempt, post, record.
        ``watch_values`` are stored on the watch together with the post's record."""
        now = self._clock()
        values: dict[str, Any] = dict(watch_values or {})
        if told_status is not None:
            values["told_status"] = told_status
        entry = await self.store.begin_post(watch.id, kind, key, now)
        if entry.state == "posted" and entry.ts:
            # e.g. a status that went back and forth; a card already posted shows what it
            # showed then, not what this call would have posted.
            values.pop("card_status", None)
            if values:
                await self.store.change_watch(watch.id, WatchChange(**values))
            return entry.ts
        marker = {"watch": watch.id, "kind": kind, "key": key}
        ts = None
        if not entry.fresh:  # an earlier attempt may have reached Slack before a crash
            ts = await self.poster.find(
                watch.channel_id, marker, thread_ts=thread_ts, since=entry.created_at
            )
        if ts is None:
            ts = await self.poster.post(
                watch.channel_id, message, marker=marker, thread_ts=thread_ts, broadcast=broadcast
            )
        if kind == "card":
            values["card_ts"] = ts
        await self.store.finish_post(entry.id, ts, self._clock(), watch_id=watch.id, **values)
        return ts
