"""What a card says about its device results: the counts, why they are missing, or that
they are on their way (a message's state, not Alibaba Cloud's data)."""

from __future__ import annotations

from dataclasses import dataclass

from .iot.errors import IotError
from .iot.models import TaskCounts


@dataclass(frozen=True)
class Counts:
    counts: TaskCounts | None = None
    error: IotError | None = None
    loading: bool = False
    slow: bool = False  # not in within the one-message wait: the card went without them
