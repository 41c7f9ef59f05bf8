"""What the Slack surfaces keep between requests, each an object with one owner.

Handed in through ``Deps.kept``, never a module global: a deployment of several
replicas can give each of these a shared backing (the database) in one place.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from cachetools import LRUCache, TTLCache

# "Channels you are in" changes rarely within a minute; one users.conversations read
# answers for every watched channel (see watching.channels_of).
MEMBERSHIP_SECONDS = 60.0
MEMBERSHIP_PEOPLE = 10_000
# A card's link never changes; the most recently used are kept, so ended watches fall out.
CARD_LINKS_KEPT = 2_000


class Debounce:
    """At most once per ``every`` seconds for each key (a person's Home tab re-reads)."""

    def __init__(
        self, every: float, *, size: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.every = every
        self._clock = clock
        self._last: TTLCache[Hashable, float] = TTLCache(size, every, timer=clock)

    def may(self, key: Hashable) -> bool:
        """True (and remembered) when ``key`` did not go within the last ``every`` s."""
        if key in self._last:
            return False
        self._last[key] = self._clock()
        return True


class OneAtATime:
    """Keys of work under way (a re-upgrade of one batch): a second start is refused."""

    def __init__(self) -> None:
        self._running: set[Hashable] = set()

    def start(self, key: Hashable) -> bool:
        if key in self._running:
            return False
        self._running.add(key)
        return True

    def done(self, key: Hashable) -> None:
        self._running.discard(key)


@dataclass
class Kept:
    # user -> the channels they are in (public ones, and private ones shared with the app)
    channels: TTLCache[str, frozenset[str]] = field(
        default_factory=lambda: TTLCache(MEMBERSHIP_PEOPLE, MEMBERSHIP_SECONDS)
    )
    # (channel, ts) -> a watched card's permalink
    card_links: LRUCache[tuple[str, str], str] = field(
        default_factory=lambda: LRUCache(CARD_LINKS_KEPT)
    )
    home_opened: Debounce = field(default_factory=lambda: Debounce(30.0))
    home_refreshed: Debounce = field(default_factory=lambda: Debounce(10.0))
    reupgrades: OneAtATime = field(default_factory=OneAtATime)
