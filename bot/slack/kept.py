"""What the Slack surfaces keep between requests, each an object with one owner.

Handed in through ``Deps.kept``, never a module global. What must hold across a
deployment's replicas (the Home tab's debounce, one re-upgrade of a batch at a time) is
backed by the database; what is only a cost saving (membership, card links) is kept per
replica.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

from cachetools import LRUCache, TTLCache

from ..db.leases import LeaseRepository

# "Channels you are in" changes rarely within a minute; one users.conversations read
# answers for every watched channel (see watching.channels_of).
MEMBERSHIP_SECONDS = 60.0
MEMBERSHIP_PEOPLE = 10_000
# A card's link never changes; the most recently used are kept, so ended watches fall out.
CARD_LINKS_KEPT = 2_000


class Debounce:
    """At most once per ``every`` seconds for each key (a person's Home tab re-reads),
    across every replica: a lease in the database (bot/db/leases.py)."""

    def __init__(self, leases: LeaseRepository, name: str, every: float) -> None:
        self._leases = leases
        self._name = name
        self.every = every

    async def may(self, key: Hashable) -> bool:
        """True (and remembered) when ``key`` did not go within the last ``every`` s."""
        return await self._leases.take_lease(f"{self._name}:{key}", self.every)


class OneAtATime:
    """Work under way (a re-upgrade of one batch), on any replica: a second start is
    refused. A replica that dies mid-way leaves its claim to expire after ``most``."""

    def __init__(self, leases: LeaseRepository, name: str, most: float) -> None:
        self._leases = leases
        self._name = name
        self._most = most

    async def start(self, key: Hashable) -> bool:
        return await self._leases.take_lease(self._lease(key), self._most)

    async def done(self, key: Hashable) -> None:
        await self._leases.drop_lease(self._lease(key))

    def _lease(self, key: Hashable) -> str:
        return f"{self._name}:{key}"


# A re-upgrade reads up to OTAJOB_FAILED_MAX failures and re-upgrades them ten a call,
# at the watchers' pace at worst: its claim outlasts any real run.
REUPGRADE_MOST_SECONDS = 1800.0


@dataclass
class Kept:
    leases: LeaseRepository
    # user -> the channels they are in (public ones, and private ones shared with the app)
    channels: TTLCache[str, frozenset[str]] = field(
        default_factory=lambda: TTLCache(MEMBERSHIP_PEOPLE, MEMBERSHIP_SECONDS)
    )
    # (channel, ts) -> a watched card's permalink
    card_links: LRUCache[tuple[str, str], str] = field(
        default_factory=lambda: LRUCache(CARD_LINKS_KEPT)
    )
    # Shared by every replica (leases in the database):
    home_opened: Debounce = field(init=False)
    home_refreshed: Debounce = field(init=False)
    reupgrades: OneAtATime = field(init=False)

    def __post_init__(self) -> None:
        self.home_opened = Debounce(self.leases, "home_opened", 30.0)
        self.home_refreshed = Debounce(self.leases, "home_refreshed", 10.0)
        self.reupgrades = OneAtATime(self.leases, "reupgrade", REUPGRADE_MOST_SECONDS)
