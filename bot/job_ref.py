"""Which job a button is about: it travels in the button's value and must survive
stale or forged payloads."""

from __future__ import annotations

import json
from dataclasses import dataclass

from .iot.ids import INSTANCE_ID, JOB_ID, cleaned, problem


@dataclass(frozen=True)
class JobRef:
    """Which job a button is about; travels in the button's value."""

    job_id: str
    instance_id: str | None = None
    shared_by: str | None = None  # set on a card shared in a channel: Refresh keeps it
    watch_id: int | None = None  # set on a watched card: Refresh keeps its watch line
    public: bool = False  # a card everyone sees (a mention's answer): Refresh keeps it so

    def to_value(self) -> str:
        data = {"job": self.job_id, "instance": self.instance_id}
        if self.shared_by:
            data["shared_by"] = self.shared_by[:100]
        if self.watch_id is not None:
            data["watch"] = self.watch_id
        if self.public:
            data["public"] = 1
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_value(cls, value: str | None) -> JobRef | None:
        """None for anything that is not a value we wrote (stale or forged payloads)."""
        try:
            data = json.loads(value or "")
            job_id = cleaned(str(data["job"]))
            instance = data.get("instance")
            if instance is not None:
                instance = cleaned(str(instance))
                if problem(instance, INSTANCE_ID):
                    return None
            shared_by = data.get("shared_by")
            watch_id = data.get("watch")
            if watch_id is not None and not isinstance(watch_id, int):
                return None
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        if problem(job_id, JOB_ID):
            return None
        shared = str(shared_by)[:100] if shared_by else None
        return cls(job_id, instance, shared, watch_id, public=data.get("public") == 1)
