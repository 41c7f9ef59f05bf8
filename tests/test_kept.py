"""What the Slack surfaces keep between requests: the debounce and the one-at-a-time
guard, driven by an injected clock."""

from __future__ import annotations

from bot.slack.kept import Debounce, OneAtATime


def test_debounce_lets_a_key_go_once_per_period() -> None:
    now = [100.0]
    debounce = Debounce(30.0, clock=lambda: now[0])
    assert debounce.may("U1") and not debounce.may("U1")
    assert debounce.may("U2")  # each person has their own period
    now[0] += 29.0
    assert not debounce.may("U1")
    now[0] += 2.0
    assert debounce.may("U1")


def test_one_at_a_time_refuses_a_second_start_until_done() -> None:
    running = OneAtATime()
    assert running.start(("J1", None)) and not running.start(("J1", None))
    assert running.start(("J2", None))
    running.done(("J1", None))
    assert running.start(("J1", None))
