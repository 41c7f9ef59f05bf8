"""Who and what a person can pick from Slack's autocomplete, for the fake Slack.

When someone types ``@oncall`` or ``#ops`` in the message box, Slack offers the matching
person, user group or channel; picked, it is sent to the app as an ID token (``<@U…>``,
``<!subteam^S…>``, ``<#C…>``). The request builder (fakes/inbound.py) looks names up
here: people by their handle, user groups by their handle, channels by name (from the
fake's own channel model, ``FakeSlack.channels``). A name Slack does not know stays plain
text, as it does in Slack.

Every FakeSlack has one, as ``fake.directory``, knowing the bot (``@otajob``) and the
person the builder acts as by default (``U123``, ``@alice``). A user group added here is
also what ``usergroups.users.list`` answers (``FakeSlack.usergroups``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fakes.slack import FakeSlack

DEFAULT_USER_ID, DEFAULT_USER_NAME = "U123", "alice"
BOT_NAME = "otajob"  # the bot's handle; FakeSlack's auth.test answers "user": "otajob"


@dataclass(frozen=True)
class Person:
    id: str  # "U…" (or "W…" in an Enterprise Grid org)
    name: str  # the handle typed after "@" (Slack's `name` / `username`)
    # Their workspace when it is not the one the request comes from: a Slack Connect
    # member of another org. None: a member of the workspace that sends the request.
    team_id: str | None = None
    enterprise_id: str | None = None
    # The language they chose in Slack's preferences, as users.info reports it with
    # include_locale=true (an IETF tag: en-US, ja-JP, zh-CN, zh-TW, fr-FR, ...).
    locale: str = "en-US"


@dataclass(frozen=True)
class UserGroup:
    id: str  # "S…"
    handle: str  # typed after "@", without it


class Directory:
    def __init__(self, fake: FakeSlack) -> None:
        self._fake = fake
        self._people: dict[str, Person] = {}  # by ID
        self._groups: dict[str, UserGroup] = {}  # by ID
        self.add_user(fake.bot_user_id, BOT_NAME)
        self.add_user(DEFAULT_USER_ID, DEFAULT_USER_NAME)

    # ---- people ----------------------------------------------------------------------------
    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        team_id: str | None = None,
        enterprise_id: str | None = None,
        locale: str = "en-US",
    ) -> Person:
        """Register (or replace) a person; give `team_id` for a member of another org,
        `locale` for the language they use Slack in."""
        person = Person(user_id, name, team_id, enterprise_id, locale)
        self._people[user_id] = person
        return person

    def user(self, name: str) -> Person | None:
        """The person whose handle is `name` (without "@"), if any."""
        return next((p for p in self._people.values() if p.name == name), None)

    def person(self, user_id: str) -> Person:
        """The person with this ID; one not registered is a member of the workspace,
        named after their ID."""
        return self._people.get(user_id) or Person(user_id, f"user-{user_id.lower()}")

    def people(self) -> list[Person]:
        """Everyone registered, in the order they were added."""
        return list(self._people.values())

    # ---- user groups -----------------------------------------------------------------------
    def add_usergroup(self, group_id: str, handle: str, members: tuple[str, ...] = ()) -> UserGroup:
        """Register a user group by its handle; its members become what the fake's
        ``usergroups.users.list`` answers for it."""
        group = UserGroup(group_id, handle.removeprefix("@"))
        self._groups[group_id] = group
        self._fake.usergroups[group_id] = list(members)
        return group

    def usergroups(self) -> list[UserGroup]:
        return list(self._groups.values())

    def usergroup(self, handle: str) -> UserGroup | None:
        return next((g for g in self._groups.values() if g.handle == handle), None)

    # ---- channels (the fake's channel model) -----------------------------------------------
    def channel(self, name: str) -> dict | None:
        """The channel called `name` (without "#") in the fake's model, if exactly one is."""
        found = [c for c in self._fake.channels.values() if c.get("name") == name]
        return found[0] if len(found) == 1 else None
