"""The local workspace: who is in it, its channels, and the welcome note.

A small team's workspace, enough to try every command: you (an otajob admin), an on-call
colleague and their user group to name in alerts, a rollout channel and a team channel
with otajob in them, a channel without otajob (to see what a watch there says), and your
direct messages with otajob.
"""

from __future__ import annotations

from fakes import FakeSlack, Person

ME = Person("U0YOU00001", "you")
ONCALL = Person("U0AKI00001", "aki")
ONCALL_GROUP = ("S0ONCALL01", "firmware-oncall")
ROLLOUTS = ("C0ROLLOUT1", "ota-rollouts")
TEAM = ("C0FIRMWARE", "firmware-team")
QUIET = ("C0RANDOM01", "random")  # otajob is not a member here
SLACKBOT = "USLACKBOT"  # Slack's own user ID for Slackbot

WELCOME = (
    "Welcome to otajob's local chat. Everything here runs on this machine: otajob is the"
    " real app, this page speaks Slack's protocol to it.\n"
    "Try `/otajob {job_id}` for a batch's card, `/otajob watch {job_id}` to follow it here,"
    " `/otajob help` for every command, or `@otajob {job_id}` for a card in a thread."
    " The panel on the right moves the demo batches, so a watch's updates, alerts and the"
    " cancel dialog can be seen live."
)


# Your Slack language here is your terminal's (LC_ALL, LC_MESSAGES, LANG): what only you
# see follows it, as a real Slack follows your preferences.
SLACK_LOCALES = {"en": "en-US", "ja": "ja-JP", "zh_CN": "zh-CN"}


def seed(fake: FakeSlack, *, sample_job_id: str | None, language: str = "en") -> None:
    people = (ME.id, ONCALL.id)
    fake.directory.add_user(ME.id, ME.name, locale=SLACK_LOCALES.get(language, "en-US"))
    fake.directory.add_user(ONCALL.id, ONCALL.name)
    fake.directory.add_user(SLACKBOT, "Slackbot")
    fake.directory.add_usergroup(*ONCALL_GROUP, members=(ONCALL.id,))
    fake.add_channel(ROLLOUTS[0], ROLLOUTS[1], members=people)
    fake.add_channel(TEAM[0], TEAM[1], members=people)
    fake.add_channel(QUIET[0], QUIET[1], members=people, is_member=False)
    job_id = sample_job_id or "<JobId>"
    fake.add_message(ROLLOUTS[0], WELCOME.format(job_id=job_id), user=SLACKBOT)


def channel_list(fake: FakeSlack) -> list[dict]:
    """The sidebar: the channels you are in, then your DM with otajob."""
    listed = [
        {
            "id": ch["id"],
            "name": ch["name"],
            "is_private": ch["is_private"],
            "is_dm": False,
            "app_is_member": ch["is_member"],
        }
        for ch in fake.channels.values()
        if ME.id in ch["members"]
    ]
    listed.append(
        {
            "id": dm_of(ME.id),
            "name": "otajob",
            "is_private": True,
            "is_dm": True,
            "app_is_member": True,
        }
    )
    return listed


def dm_of(user_id: str) -> str:
    """The DM's ID, as the fake Slack names it ("D" + the user ID)."""
    return "D" + user_id


def conversation_of(channel: str) -> str:
    """Where something addressed to `channel` shows: a user ID means their DM."""
    return dm_of(channel) if channel[:1] in ("U", "W") else channel
