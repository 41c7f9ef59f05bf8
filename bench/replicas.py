"""``python -m bench.replicas``: what sharing one quota across replicas costs and keeps.

Needs a PostgreSQL database it may empty: OTAJOB_BENCH_POSTGRES_URL (``.ci/postgres.sh``
prints one on a machine with PostgreSQL). Against the emulator on 127.0.0.1, IOT_QPS=10:

1. The milliseconds the shared quota adds to a call: a place taken and released in the
   database, against the same with the in-process window only (200 calls one after
   another, so no call waits for the window).
2. 60 distinct ``/otajob <JobId>`` commands at once, over HTTP to 1 replica (SQLite) and
   round-robin to 3 replicas on one PostgreSQL (in one process, each with its own web
   app, runtime and limiter, as separate processes would be): acknowledgement times, the
   time until every answer is posted, Throttling answers, busiest second at the gateway.

Not a test: it prints a table and says which target it missed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import time
from contextlib import AsyncExitStack
from typing import Any

import httpx
from sqlalchemy import text

from bench.harness import (
    Table,
    latency_summary,
    max_in_window,
    serve_http,
    signed_command,
    stack,
)
from bot.db import Store
from bot.db.engine import open_engine
from bot.db.shared_quota import SharedWindowLimiter
from bot.iot.quota import Priority, SlidingWindowLimiter

QPS = 10
JOBS = 60
CALLS = 200


async def empty_database(url: str) -> str:
    """The benchmark's database, emptied: each measurement starts from no schema."""
    engine = open_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()
    return url


async def slot_cost(url: str) -> dict[str, float]:
    """Per call: the shared limiter's slot, and the local one's, in milliseconds."""
    store = await Store.open(url)
    try:
        shared = SharedWindowLimiter(store.engine, 100_000)
        local = SlidingWindowLimiter(100_000)
        found: dict[str, float] = {}
        for name, limiter in (("local", local), ("shared", shared)):
            times = []
            for _ in range(CALLS):
                started = time.perf_counter()
                async with limiter.slot(Priority.PERSON):
                    pass
                times.append((time.perf_counter() - started) * 1000)
            found[f"{name}_p50"] = statistics.median(times)
            found[f"{name}_p95"] = sorted(times)[int(len(times) * 0.95) - 1]
        return found
    finally:
        await store.close()


async def distinct_jobs(replicas: int, url: str | None) -> dict[str, Any]:
    """JOBS distinct ``/otajob <JobId>`` commands at once, round-robin over the replicas'
    web apps (HTTP, as behind a load balancer): acks, and the time to every answer."""
    settings = {"DATABASE_URL": url} if url else {}
    async with AsyncExitStack() as exits:
        first = await exits.enter_async_context(stack(qps=QPS, auto_jobs=True, settings=settings))
        stacks = [first]
        for _ in range(replicas - 1):  # more replicas on the same emulator and database
            stacks.append(
                await exits.enter_async_context(
                    stack(qps=QPS, auto_jobs=True, settings=settings, emulator=first.emulator)
                )
            )
        bases = [await exits.enter_async_context(serve_http(s.runtime)) for s in stacks]
        http = await exits.enter_async_context(httpx.AsyncClient(timeout=60))

        async def one(i: int) -> float:
            on = i % replicas
            body, headers = signed_command(stacks[on].slack, f"ReplicaBench{i:04d}", f"k{i}")
            started = time.perf_counter()
            response = await http.post(f"{bases[on]}/slack/events", content=body, headers=headers)
            response.raise_for_status()
            return time.perf_counter() - started

        started = time.perf_counter()
        acks = await asyncio.gather(*(one(i) for i in range(JOBS)))
        for i in range(JOBS):
            await stacks[i % replicas].slack.wait_for_posts(f"k{i}", timeout=120)
        wall = time.perf_counter() - started
        calls = [c for c in first.emulator.calls if c.action == "QueryOTAJob"]
        return {
            **latency_summary(acks),
            "wall_s": wall,
            "throttled": first.emulator.count("QueryOTAJob", code="Throttling.User"),
            "busiest": max_in_window([c.at for c in calls]),
            "calls": len(calls),
        }


async def measure(url: str) -> Table:
    cost = await slot_cost(await empty_database(url))
    one = await distinct_jobs(1, None)
    three = await distinct_jobs(3, await empty_database(url))
    t = Table()
    t.add(
        "Quota place per call, in-process window only: p50 / p95",
        f"{cost['local_p50']:.2f} / {cost['local_p95']:.2f} ms",
    )
    added = cost["shared_p50"] - cost["local_p50"]
    t.add(
        "Quota place per call, shared in PostgreSQL: p50 / p95",
        f"{cost['shared_p50']:.2f} / {cost['shared_p95']:.2f} ms (+{added:.2f} ms)",
        "a few ms",
        added < 5,
    )
    for label, r in (("1 replica (SQLite)", one), ("3 replicas, one PostgreSQL", three)):
        t.add(
            f"{JOBS} distinct commands at IOT_QPS={QPS}, {label}: ack p50 / p99 / max",
            f"{r['p50'] * 1000:,.0f} / {r['p99'] * 1000:,.0f} / {r['max'] * 1000:,.0f} ms",
            "under 3 s",
            r["max"] < 3.0,
        )
        t.add(
            f"  {label}: every answer posted after · Throttling · busiest 1 s",
            f"{r['wall_s']:.2f} s · {r['throttled']} · {r['busiest']} calls",
            f"0 throttled, ≤ {QPS} a second",
            r["throttled"] == 0 and r["busiest"] <= QPS,
        )
    return t


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    url = os.environ.get("OTAJOB_BENCH_POSTGRES_URL")
    if not url:
        print("OTAJOB_BENCH_POSTGRES_URL is not set: no PostgreSQL, nothing measured.")
        return
    table = asyncio.run(measure(url))
    print(table.markdown())
    print("MISSED TARGETS: " + "; ".join(table.missed) if table.missed else "All targets met.")


if __name__ == "__main__":
    main()
