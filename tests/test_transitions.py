"""The pure diff from what a channel was told to what the API says now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.iot.models import OtaJob
from bot.watch.transitions import diff, parse_states, wanted

CREATED = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
START = CREATED + timedelta(minutes=30)
END = START + timedelta(hours=3, minutes=12)


def job(status: str | None, **fields) -> OtaJob:
    return OtaJob(job_status=status, utc_create=CREATED, **fields)


@pytest.mark.parametrize(
    ("told", "now", "expected"),
    [
        ("PLANNED", job("PLANNED"), []),
        (None, job("IN_PROGRESS"), []),
        ("IN_PROGRESS", job(None), []),
        (
            "PLANNED",
            job("IN_PROGRESS", utc_start_time=START),
            [("PLANNED", "IN_PROGRESS", START, timedelta(minutes=30))],
        ),
        (
            "IN_PROGRESS",
            job("COMPLETED", utc_start_time=START, utc_end_time=END),
            [("IN_PROGRESS", "COMPLETED", END, timedelta(hours=3, minutes=12))],
        ),
        (
            "IN_PROGRESS",
            job("CANCELED", utc_start_time=START, utc_end_time=END),
            [("IN_PROGRESS", "CANCELED", END, END - START)],
        ),
        (
            "PLANNED",
            job("COMPLETED", utc_start_time=START, utc_end_time=END),
            [
                ("PLANNED", "IN_PROGRESS", START, timedelta(minutes=30)),
                ("IN_PROGRESS", "COMPLETED", END, END - START),
            ],
        ),
        (
            "PLANNED",
            job("CANCELED", utc_modified=END),  # canceled before it ever started
            [("PLANNED", "CANCELED", END, None)],
        ),
        (
            "PLANNED",
            job(
                "IN_PROGRESS", utc_schedule_time=START, utc_start_time=START + timedelta(minutes=1)
            ),
            [("PLANNED", "IN_PROGRESS", START + timedelta(minutes=1), timedelta(minutes=1))],
        ),
    ],
)
def test_diff(told, now, expected) -> None:
    """Each case: what was told, what is now, and the replies that follow, in order."""
    got = [(t.from_status, t.to_status, t.at, t.took) for t in diff(told, now)]
    assert got == expected


def test_keys_and_finality() -> None:
    """A transition's key names both ends; only COMPLETED and CANCELED are final."""
    (t,) = diff("IN_PROGRESS", job("COMPLETED", utc_start_time=START, utc_end_time=END))
    assert t.key == "IN_PROGRESS>COMPLETED" and t.final and t.took_what == "ran"
    (t,) = diff("PLANNED", job("IN_PROGRESS", utc_start_time=START))
    assert not t.final and t.took_what == "waited"


def test_only_filter_and_state_words() -> None:
    """`only` words map to statuses; an unknown word comes back for the error message."""
    assert parse_states("completed,cancelled") == frozenset({"COMPLETED", "CANCELED"})
    assert parse_states("started") == frozenset({"IN_PROGRESS"})
    assert parse_states("completed,finished") == "finished"
    (t,) = diff("PLANNED", job("IN_PROGRESS", utc_start_time=START))
    assert wanted(t, frozenset()) and not wanted(t, frozenset({"COMPLETED"}))
