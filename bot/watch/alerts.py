"""Failure alerts on watches: the rule a person typed, and when it fires.

Pure functions: no I/O, no clock. A rule is ``failed>5%`` (the failure rate: failed
among devices with an outcome) or ``failed>20`` (a number of devices). An alert fires
when a count crosses the threshold upwards, and may fire again only after the count has
fallen back to or below it (a recovery): a rate that hovers at the line pages nobody
twice in a row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..iot.models import TaskCounts

# A percentage over a handful of finished devices says little: 1 failure among the first
# 2 devices is 50 %. A percent rule waits for this many devices with an outcome.
MIN_FINISHED_FOR_RATE = 20

_RULE = re.compile(r"^fail(?:ed|ures?)?\s*>\s*(\d{1,7}(?:\.\d{1,3})?)\s*(%?)$", re.IGNORECASE)


@dataclass(frozen=True)
class AlertRule:
    threshold: float
    percent: bool

    @classmethod
    def parse(cls, text: str) -> AlertRule | None:
        """``failed>5%`` or ``failed>20``; None for anything else."""
        match = _RULE.match(text.strip())
        if not match:
            return None
        threshold = float(match[1])
        percent = bool(match[2])
        if percent and threshold >= 100:
            return None
        return cls(threshold, percent)

    @property
    def text(self) -> str:
        number = f"{self.threshold:g}"
        return f"failed>{number}%" if self.percent else f"failed>{number}"

    def above(self, counts: TaskCounts) -> bool | None:
        """Whether the counts are over the threshold; None while a rate cannot be judged
        yet (too few devices with an outcome)."""
        failed = counts.of("FAILED")
        if not self.percent:
            return failed > self.threshold
        if counts.finished < MIN_FINISHED_FOR_RATE:
            return None
        return 100.0 * failed / counts.finished > self.threshold


@dataclass(frozen=True)
class AlertStep:
    fire: bool  # post an alert now
    alerting: bool  # the state to remember
    recovered: bool = False  # it was alerting and is now back at or below the line


def step(rule: AlertRule, counts: TaskCounts, alerting: bool) -> AlertStep:
    """What to do with fresh counts, given whether the watch is alerting already."""
    above = rule.above(counts)
    if above is None:
        return AlertStep(fire=False, alerting=alerting)
    if above and not alerting:
        return AlertStep(fire=True, alerting=True)
    if not above and alerting:
        return AlertStep(fire=False, alerting=False, recovered=True)
    return AlertStep(fire=False, alerting=alerting)
