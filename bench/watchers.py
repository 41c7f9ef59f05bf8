"""Watchers under load: 1,000 active watches against the IoT emulator at IOT_QPS=10.

The watches go straight into the store (1,000 ``/otajob watch`` commands would each cost
a person-priority QueryOTAJob: 100 s of quota); the real poll loop (``runtime.start()``)
then runs against the emulator, the fake Slack and a SQLite file of its own. Two runs:

A. Cold start, RUN_A_SECONDS: every poll due at once (as after a restart with 1,000
   watches). Busiest 1-second window of upstream calls vs the watchers' share
   (IOT_QPS x WATCH_QPS_SHARE = 5/s), throttled answers, polls per second, the interval
   ``Watcher.interval()`` reports, a person's query (person priority) while the watchers
   saturate their share, jobs completing mid-run, RSS with 1,000 watches vs none, CPU
   per poll, and how long ``runtime.aclose()`` takes with the backlog.
B. Steady state, RUN_B_SECONDS, a fresh stack: the polls spread over one interval, as
   they are once every job has been polled. Jobs complete and their poll is made due at
   once (their turn has come): the time to the final reply in the channel.

``python -m bench.run`` runs this after its own measurements; ``python -m bench.watchers``
runs it alone. Not a test: it asserts nothing about timing, but says what it missed.
"""

from __future__ import annotations

import os

# Alibaba's default credential chain may ask the ECS metadata service; never from here.
os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"

import asyncio
import dataclasses
import functools
import gc
import logging
import random
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, select, update

from bench.harness import Stack, Table, machine, max_in_window, stack
from bot.db import polls
from bot.emulator.server import Call
from bot.iot.models import JobResult, OtaJob

WATCHES = 1000
QPS = 10
SHARE = 0.5  # WATCH_QPS_SHARE's default
BUDGET = max(1, int(QPS * SHARE))  # calls per second, as bot/runtime.py computes it
POLL_SECONDS = 60
API_LATENCY = 0.05  # the emulator's answer time: what a person's query should cost
CHANNELS = 100  # the watches that never transition are spread over this many channels
TRANSITIONS = 5
TRANSITION_JOBS = range(0, WATCHES, WATCHES // TRANSITIONS)  # 0, 200, 400, 600, 800
FAKE_CARD_TS = "1600000000.000001"  # card_ts of watches that never transition (no posts)
SETUP_TIMEOUT = 30.0  # inserting the watches may not take longer than this
STOP_TIMEOUT = 30.0  # nor may closing a stack (the watcher's own bound is 10 s)

RUN_A_SECONDS = 40.0
A_TRANSITIONS_AT = (10.0, 12.0, 14.0, 16.0, 18.0)  # seconds into run A
PERSON_AT = (15.0, 25.0, 35.0)  # a person's /otajob query at these points of run A
RUN_B_SECONDS = 25.0
B_TRANSITIONS_AT = (2.0, 3.0, 4.0, 5.0, 6.0)


def job_id(i: int) -> str:
    return f"BenchWatch{i:06d}"


def channel_of(i: int) -> str:
    return f"CT{i:06d}" if i in TRANSITION_JOBS else f"CW{i % CHANNELS:04d}"


def rss_mib() -> float:
    """VmRSS of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024  # kB
    return float("nan")


# --- the stack ----------------------------------------------------------------------------


@asynccontextmanager
async def watch_stack(database: Path) -> AsyncIterator[Stack]:
    """harness.stack with the watcher's settings and a database file of its own."""
    settings = {
        "IOT_QPS": str(QPS),
        "WATCH_QPS_SHARE": str(SHARE),
        "WATCH_POLL_SECONDS": str(POLL_SECONDS),
        "DATABASE_URL": f"sqlite:///{database}",
    }
    async with stack(latency=API_LATENCY, qps=QPS, auto_jobs=True, settings=settings) as s:
        yield s


def mint_jobs(s: Stack) -> None:
    """The watched jobs, IN_PROGRESS, minted by the emulator's auto_jobs as a query would."""
    for i in range(WATCHES):
        s.emulator.find_job(job_id(i), None)


async def insert_watches(
    s: Stack,
    changing: Collection[int] = TRANSITION_JOBS,
    channel: Callable[[int], str] = channel_of,
) -> None:
    """WATCHES watches of IN_PROGRESS jobs, each poll due now. The jobs that will change
    (``changing``) get a real card in the fake Slack, posted by the watcher's own helper;
    the others a card_ts only (they never change, so nothing is ever posted for them)."""
    store, watcher = s.runtime.store, s.runtime.deps.watcher
    now = time.time()
    for i in range(WATCHES):
        watch, created = await store.add_watch(
            job_id=job_id(i),
            instance_id=None,
            channel_id=channel(i),
            created_by="UBENCH",
            created_by_name="bench",
            told_status="IN_PROGRESS",
            only=frozenset(),
            quiet=False,
            now=now,  # add_watch makes the job's poll due at ``now``
            expires_at=now + 14 * 86400,
        )
        assert created, job_id(i)
        if i in changing:
            data = s.emulator.jobs[job_id(i)]
            await watcher._post_card(watch, JobResult(job=OtaJob.parse(data), raw=data))
        else:
            await store.set_watch(watch.id, card_ts=FAKE_CARD_TS)


async def spread_polls(s: Stack, interval: float) -> None:
    """Steady state: each job's next poll somewhere in the coming interval."""
    rng = random.Random(7)
    now = time.time()
    rows = [{"b_job": job_id(i), "b_at": now + rng.uniform(0, interval)} for i in range(WATCHES)]
    statement = (
        update(polls)
        .where(polls.c.job_id == bindparam("b_job"), polls.c.instance_id == "")
        .values(next_poll_at=bindparam("b_at"))
    )
    async with s.runtime.store.engine.begin() as conn:
        await conn.execute(statement, rows)


# --- during a run -------------------------------------------------------------------------


async def complete_and_wait(s: Stack, i: int, delay: float, deadline: float) -> float | None:
    """``delay`` s into the run the job completes and its poll is made due now (its turn
    has come); returns the seconds until the final reply is broadcast in its channel, or
    None if it is not there by ``deadline`` (time.perf_counter)."""
    await asyncio.sleep(delay)
    job, channel, store = job_id(i), channel_of(i), s.runtime.store
    started = time.perf_counter()
    s.emulator.set_status(job, "COMPLETED")
    poll = await store.get_poll(job, None)
    assert poll is not None
    now = time.time()
    await store.record_poll(
        job, None, next_poll_at=now, now=now, status=poll.status, job_json=poll.job_json
    )
    s.runtime.deps.watcher._wake.set()  # as watch() does after a change; else ≤ 1 s later
    while time.perf_counter() < deadline:
        if any(m.get("reply_broadcast") for m in s.slack.messages(channel)):
            return time.perf_counter() - started
        await asyncio.sleep(0.05)
    return None


async def person_query(s: Stack, delay: float, n: int) -> float:
    """A person's ``/otajob <JobId>`` read: a JobId nobody watches, fresh, person priority."""
    await asyncio.sleep(delay)
    started = time.perf_counter()
    await asyncio.wait_for(s.runtime.deps.service.get_job(f"BenchPerson{n:04d}", fresh=True), 15)
    return time.perf_counter() - started


async def sample_overdue(s: Stack, until: float, out: list[int]) -> None:
    """Each second: polls due and not yet started (claimed), the watcher's backlog. A plain
    count on the indexed column (store.due_polls would cost ~50 ms of CPU each time)."""
    query = select(func.count()).select_from(polls).where(polls.c.next_poll_at <= bindparam("t"))
    while time.perf_counter() < until:
        async with s.runtime.store.engine.connect() as conn:
            out.append((await conn.execute(query, {"t": time.time()})).scalar() or 0)
        await asyncio.sleep(min(1.0, max(until - time.perf_counter(), 0.0)))


@dataclass
class RunStats:
    wall_s: float
    cpu_s: float
    calls: list[Call]


async def run_loop(
    s: Stack, seconds: float, during: list[Awaitable[Any]]
) -> tuple[RunStats, list[Any]]:
    """Start the poll loop, run ``during`` beside it, and stop measuring after ``seconds``."""
    calls_before = len(s.emulator.calls)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    s.runtime.start()
    results = await asyncio.wait_for(asyncio.gather(*during), seconds + 5)
    remaining = wall0 + seconds - time.perf_counter()
    if remaining > 0:
        await asyncio.sleep(remaining)
    stats = RunStats(
        wall_s=time.perf_counter() - wall0,
        cpu_s=time.process_time() - cpu0,
        calls=s.emulator.calls[calls_before:],
    )
    return stats, results


def call_stats(stats: RunStats) -> dict[str, Any]:
    watched = [c for c in stats.calls if c.params.get("JobId", "").startswith("BenchWatch")]
    polls_done = sum(1 for c in watched if c.action == "QueryOTAJob")
    return {
        "wall_s": stats.wall_s,
        "cpu_s": stats.cpu_s,
        "polls": polls_done,
        "counts_calls": sum(1 for c in watched if c.action == "ListOTATaskByJob"),
        "max_watchers": max_in_window([c.at for c in watched]),
        "max_all": max_in_window([c.at for c in stats.calls]),
        "throttled": sum(1 for c in stats.calls if c.code == "Throttling.User"),
    }


# --- the two runs -------------------------------------------------------------------------


async def run_a(database: Path) -> dict[str, Any]:
    async with watch_stack(database) as s:
        mint_jobs(s)  # the emulator's jobs (its "cloud") exist before the baseline
        gc.collect()
        rss_before = rss_mib()
        started = time.perf_counter()
        await asyncio.wait_for(insert_watches(s), SETUP_TIMEOUT)
        insert_s = time.perf_counter() - started
        assert (await s.runtime.store.budget_counts())[0] == WATCHES
        end = time.perf_counter() + RUN_A_SECONDS
        overdue: list[int] = []
        stats, (transitions, person, _) = await run_loop(
            s,
            RUN_A_SECONDS,
            [
                asyncio.gather(
                    *(
                        complete_and_wait(s, i, at, end)
                        for i, at in zip(TRANSITION_JOBS, A_TRANSITIONS_AT, strict=True)
                    )
                ),
                asyncio.gather(*(person_query(s, at, n) for n, at in enumerate(PERSON_AT))),
                sample_overdue(s, end, overdue),
            ],
        )
        interval = s.runtime.deps.watcher.interval()
        gc.collect()
        rss_after = rss_mib()
    return {
        **call_stats(stats),
        "insert_s": insert_s,
        "interval": interval,
        "transitions": transitions,
        "person": person,
        "overdue_max": max(overdue),
        "overdue_end": overdue[-1],
        "overdue_at_transitions": [
            overdue[min(int(at), len(overdue) - 1)] for at in A_TRANSITIONS_AT
        ],
        "rss_before": rss_before,
        "rss_after": rss_after,
        "stop_s": s.stop_s,
    }


async def run_b(database: Path, interval: float) -> dict[str, Any]:
    """``interval``: what the watcher reported in run A (before its first tick here it
    has not counted the watched jobs yet)."""
    async with watch_stack(database) as s:
        mint_jobs(s)
        await asyncio.wait_for(insert_watches(s), SETUP_TIMEOUT)
        await spread_polls(s, interval)
        end = time.perf_counter() + RUN_B_SECONDS
        overdue: list[int] = []
        stats, (transitions, _) = await run_loop(
            s,
            RUN_B_SECONDS,
            [
                asyncio.gather(
                    *(
                        complete_and_wait(s, i, at, end)
                        for i, at in zip(TRANSITION_JOBS, B_TRANSITIONS_AT, strict=True)
                    )
                ),
                sample_overdue(s, end, overdue),
            ],
        )
        # Run A measures shutdown; here it would only add up to 10 s of waiting.
        watcher = s.runtime.deps.watcher
        watcher.settings = dataclasses.replace(watcher.settings, shutdown_seconds=1.0)
    return {
        **call_stats(stats),
        "transitions": transitions,
        "overdue_max": max(overdue),
    }


def run_isolated(
    measure: Callable[[Path], Awaitable[dict[str, Any]]], leftovers: list[str]
) -> dict[str, Any]:
    """One run in its own event loop (asyncio.run cancels whatever the stack left behind)
    and its own database file. Errors of tasks nobody awaited are counted, not printed."""

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        leftovers.append(type(error).__name__ if error else str(context.get("message")))

    async def main(database: Path) -> dict[str, Any]:
        asyncio.get_running_loop().set_exception_handler(handler)
        return await measure(database)

    with tempfile.TemporaryDirectory(prefix="otajob-bench-") as tmp:
        result = asyncio.run(main(Path(tmp) / "watches.db"))
    gc.collect()  # tasks left behind report their errors when collected
    return result


# --- the table ----------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def latencies(samples: list[float | None], run: float, at: tuple[float, ...]) -> str:
    done = [x for x in samples if x is not None]
    if not done:
        return f"0/{len(samples)} posted (waited {run - max(at):.0f}–{run - min(at):.0f} s)"
    text = f"median {statistics.median(done):.2f} s · max {max(done):.2f} s"
    return text + f" ({len(done)}/{len(samples)} posted)"


def build_table(a: dict[str, Any], b: dict[str, Any]) -> Table:
    t = Table()
    n, interval = f"{WATCHES:,}", a["interval"]
    t.add(f"Insert {n} watches (store.add_watch, 5 real cards)", f"{a['insert_s']:.1f} s")
    for label, r in (("A (cold start, all due)", a), ("B (steady state)", b)):
        t.add(
            f"Run {label}: most watcher calls in any 1 s window",
            str(r["max_watchers"]),
            f"≤ {BUDGET} (IOT_QPS {QPS} × share {SHARE:g})",
            r["max_watchers"] <= BUDGET,
        )
        throttled = r["throttled"]
        t.add(f"Run {label}: Throttling.User answers", str(throttled), "0", throttled == 0)
    t.add(
        "Run A: most calls in any 1 s window, person queries included",
        str(a["max_all"]),
        f"≤ {QPS}",
        a["max_all"] <= QPS,
    )
    rate = a["polls"] / a["wall_s"]
    t.add(
        f"Run A: polls done in {a['wall_s']:.0f} s · polls/s",
        f"{a['polls']} · {rate:.2f}/s",
        f"the watchers' share: {BUDGET} calls/s",
    )
    t.add(
        f"Run B: polls done in {b['wall_s']:.0f} s · polls/s",
        f"{b['polls']} · {b['polls'] / b['wall_s']:.2f}/s",
        f"{WATCHES / interval:.2f}/s planned ({n} jobs / interval)",
    )
    t.add(
        "Poll interval the watcher reports (interval())",
        f"{interval:.0f} s",
        f"brief's estimate max({POLL_SECONDS}, {WATCHES}/{BUDGET}) = "
        f"{max(POLL_SECONDS, WATCHES / BUDGET):.0f} s",
    )
    t.add(
        f"A full pass over {n} jobs at run A's rate (every job due)",
        f"{WATCHES / rate:.0f} s",
    )
    t.add(
        "Backlog (polls due, not started): run A max · run A end · run B max",
        f"{a['overdue_max']} · {a['overdue_end']} · {b['overdue_max']}",
    )
    t.add(
        "Run A: a person's query (get_job fresh, person priority), 3 times",
        " / ".join(ms(x) for x in a["person"]),
        f"near the emulator's {ms(API_LATENCY)}, not queued behind polls",
    )
    ahead = a["overdue_at_transitions"]
    t.add(
        "Run A: job completes, its poll made due → final reply",
        latencies(a["transitions"], RUN_A_SECONDS, A_TRANSITIONS_AT)
        + f"; {min(ahead)}–{max(ahead)} polls due before it",
        f"≈ {min(ahead) / rate:.0f}–{max(ahead) / rate:.0f} s behind them at {rate:.2f}/s",
    )
    t.add(
        "Run B: job completes, its poll made due → final reply",
        latencies(b["transitions"], RUN_B_SECONDS, B_TRANSITIONS_AT),
        "1 QueryOTAJob + 7 ListOTATaskByJob, background priority",
    )
    t.add(
        "Worst case for a transition (it waits for its job's turn)",
        f"up to one interval, {interval:.0f} s, + run B's time",
    )
    grown = a["rss_after"] - a["rss_before"]
    t.add(
        f"RSS: 0 watches → {n} watches after run A",
        f"{a['rss_before']:.0f} → {a['rss_after']:.0f} MiB "
        f"(+{grown:.1f} MiB, {grown * 1024 / WATCHES:.1f} KiB per watch)",
    )
    for label, r in (("A", a), ("B", b)):
        t.add(
            f"Run {label}: CPU per poll (process: app + emulator + fake Slack)",
            f"{ms(r['cpu_s'] / max(r['polls'], 1))} ({r['cpu_s']:.1f} s CPU, {r['polls']} polls,"
            f" {r['counts_calls']} task-count calls, {r['wall_s']:.0f} s)",
        )
    t.add(
        f"runtime.aclose() after run A ({a['overdue_end']} polls due)",
        f"{a['stop_s']:.1f} s",
        "the watcher waits ≤ 10 s for polls in flight, then cancels them",
    )
    return t


def print_watchers(*, with_machine: bool = False) -> Table:
    """Both runs, then the table; returns it (run.py reads ``missed``)."""
    leftovers: list[str] = []
    a = run_isolated(run_a, leftovers)
    b = run_isolated(functools.partial(run_b, interval=a["interval"]), leftovers)
    table = build_table(a, b)
    print(
        f"Watchers: {WATCHES:,} active watches, IOT_QPS={QPS}, WATCH_QPS_SHARE={SHARE:g}, "
        f"WATCH_POLL_SECONDS={POLL_SECONDS}, emulator latency {ms(API_LATENCY)}."
    )
    print()
    print(table.markdown())
    print()
    if leftovers:
        kinds = ", ".join(sorted(set(leftovers)))
        print(f"Note: {len(leftovers)} unawaited task(s) failed after shutdown ({kinds}).")
    if with_machine:
        print(machine())
    if table.missed:
        print("MISSED TARGETS (watchers): " + "; ".join(table.missed))
    else:
        print("All watcher targets met.")
    return table


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    for name in ("otajob", "bot", "slack_bolt", "slack_sdk", "aiohttp", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    print_watchers(with_machine=True)


if __name__ == "__main__":
    main()
