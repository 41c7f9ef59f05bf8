"""What changed between what a channel was last told and what the API says now.

Pure functions: no I/O, no clock. A batch moves PLANNED -> IN_PROGRESS -> COMPLETED or
CANCELED. Polls can miss a step (a batch that starts and finishes between two polls, or
while the app was down); the job's own timestamps say when the missed step happened, so
it is reported rather than silently skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..iot.models import FINISHED_STATUSES, OtaJob

IN_PROGRESS = "IN_PROGRESS"
PLANNED = "PLANNED"

# Words people may type after `only`, to the status they mean.
STATE_WORDS = {
    "planned": PLANNED,
    "scheduled": PLANNED,
    "started": IN_PROGRESS,
    "in_progress": IN_PROGRESS,
    "in-progress": IN_PROGRESS,
    "inprogress": IN_PROGRESS,
    "running": IN_PROGRESS,
    "completed": "COMPLETED",
    "complete": "COMPLETED",
    "done": "COMPLETED",
    "canceled": "CANCELED",
    "cancelled": "CANCELED",
}


@dataclass(frozen=True)
class Transition:
    from_status: str
    to_status: str
    at: datetime | None  # when it happened, by the job's own timestamps
    took: timedelta | None  # how long the batch spent before this step (see `took_what`)

    @property
    def key(self) -> str:
        """Identifies the transition for exactly-once posting."""
        return f"{self.from_status}>{self.to_status}"

    @property
    def final(self) -> bool:
        return self.to_status in FINISHED_STATUSES

    @property
    def took_what(self) -> str:
        """``waited`` (before starting) or ``ran`` (from start to end)."""
        return "ran" if self.final else "waited"


def _between(start: datetime | None, end: datetime | None) -> timedelta | None:
    if start is None or end is None or end < start:
        return None
    return end - start


def _step(from_status: str, to_status: str, job: OtaJob) -> Transition:
    if to_status == IN_PROGRESS:
        at = job.utc_start_time or job.utc_modified
        took = _between(job.utc_schedule_time or job.utc_create, at)
    elif to_status in FINISHED_STATUSES:
        at = job.utc_end_time or job.utc_modified
        took = _between(job.utc_start_time, at)
    else:
        at, took = job.utc_modified, None
    return Transition(from_status, to_status, at, took)


def from_key(key: str, job: OtaJob) -> Transition:
    """The transition a key names (``Transition.key``), timed by the job's timestamps."""
    from_status, _, to_status = key.partition(">")
    return _step(from_status, to_status, job)


def diff(told: str | None, job: OtaJob) -> list[Transition]:
    """The transitions to report, oldest first, to bring ``told`` up to ``job``."""
    now = job.job_status
    if not now or told is None or told == now:
        return []
    if told == PLANNED and now in FINISHED_STATUSES and job.utc_start_time is not None:
        # Started and finished between two polls: report both steps.
        return [_step(PLANNED, IN_PROGRESS, job), _step(IN_PROGRESS, now, job)]
    return [_step(told, now, job)]


def wanted(transition: Transition, only: frozenset[str]) -> bool:
    """An empty ``only`` means every transition is posted."""
    return not only or transition.to_status in only


def parse_states(text: str) -> frozenset[str] | str:
    """``completed,canceled`` -> statuses; a word we do not know is returned as is."""
    statuses = set()
    for word in filter(None, (w.strip().lower() for w in text.split(","))):
        if word not in STATE_WORDS:
            return word
        statuses.add(STATE_WORDS[word])
    return frozenset(statuses)
