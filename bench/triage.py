"""``make bench`` part 3: on-call triage against the IoT emulator, over real HTTP.

1. The card with device counts for a 100,000-device batch: time to the first answer (the
   card), time to the counts replacing it, upstream calls; at two API latencies.
2. Failed devices of a batch with 10,000 failures: calls, time to the listing, the
   busiest 1-second window and Throttling answers; then the CSV of all of them: time,
   size, rows.
3. A person's /otajob while that listing is read: how long their card takes.

Not a test: it prints numbers and says which target it missed; it asserts nothing.
"""

from __future__ import annotations

import os

os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"

import asyncio
import csv
import io
import json
import resource
import statistics
import time

from bench.harness import SIGNING_SECRET, max_in_window, stack
from bot.emulator import fixtures
from fakes import Inbound

QPS = 10
FLEET = {
    "SUCCEEDED": 61_234,
    "FAILED": 1_877,
    "IN_PROGRESS": 2_500,
    "QUEUED": 30_000,
    "NOTIFIED": 2_389,
    "CONFIRM": 1_000,
    "CANCELED": 1_000,
}
FAILURES = 10_000
RUNS = 5
REASONS = [
    "download timeout",
    "verify failed: checksum mismatch",
    "device offline",
    "upgrade timeout: no progress reported",
    "flash write failed: not enough space",
]


async def dispatch(runtime, request) -> None:
    await runtime.app.async_dispatch(request)


async def card_with_counts(latency: float) -> dict[str, float]:
    """Median over RUNS fresh batches (nothing cached) of 100,000 devices each."""
    firsts, counts_at, calls = [], [], []
    async with stack(latency=latency, qps=QPS) as s:
        for run in range(RUNS):
            job = f"FleetJob{run:017d}"
            s.emulator.add_job(fixtures.make_job(job))
            s.emulator.set_tasks(job, FLEET)
            before = len(s.emulator.calls)
            key = f"card{run}"
            request = Inbound(s.slack, SIGNING_SECRET).command(job, key=key)
            start = time.perf_counter()
            await dispatch(s.runtime, request)
            await s.slack.wait_for_posts(key, 1, timeout=60)
            firsts.append(time.perf_counter() - start)
            posts = await s.slack.wait_for_posts(key, 2, timeout=60)
            counts_at.append(time.perf_counter() - start)
            assert "100,000" in json.dumps(posts[-1].body, ensure_ascii=False)
            calls.append(len(s.emulator.calls) - before)
            await asyncio.sleep(1.2)  # let the quota window clear between runs
    return {
        "first": statistics.median(firsts),
        "counts": statistics.median(counts_at),
        "calls": statistics.median(calls),
    }


async def failed_listing() -> dict[str, float]:
    job = "FailJob000000000000000001"
    async with stack(latency=0.05, qps=QPS) as s:
        s.emulator.add_job(fixtures.make_job(job))
        s.emulator.set_tasks(
            job, {"FAILED": FAILURES, "SUCCEEDED": 90_000}, failure_reasons=REASONS
        )
        before = len(s.emulator.calls)
        slack = Inbound(s.slack, SIGNING_SECRET)
        request = slack.command(f"{job} failed", key="f")
        start = time.perf_counter()
        listing = asyncio.ensure_future(dispatch(s.runtime, request))
        await s.slack.wait_for_posts("f", 1, timeout=120)
        interim = time.perf_counter() - start

        # 3: someone else's /otajob while the listing is read.
        other = "OtherJob00000000000000001"
        s.emulator.add_job(fixtures.make_job(other))
        started = time.perf_counter()
        await dispatch(s.runtime, slack.command(other, key="o"))
        await s.slack.wait_for_posts("o", 1, timeout=60)
        person = time.perf_counter() - started

        posts = await s.slack.wait_for_posts("f", 2, timeout=120)
        listed = time.perf_counter() - start
        await listing
        text = json.dumps(posts[-1].body, ensure_ascii=False)
        assert f"{FAILURES:,} devices failed" in text, text[:300]
        calls = s.emulator.calls[before:]
        failed_calls = [
            c
            for c in calls
            if c.params.get("TaskStatus") == "FAILED" and c.params.get("JobId") == job
        ]
        times = [c.at for c in calls]
        throttled = sum(1 for c in calls if (c.code or "").startswith("Throttling"))

        csv_value = next(
            e["value"]
            for b in posts[-1].body["blocks"]
            for e in b.get("elements") or []
            if e.get("action_id") == "failed_csv"
        )
        click = slack.click("failed_csv", csv_value, key="c")
        started = time.perf_counter()
        await dispatch(s.runtime, click)
        await s.slack.wait_for_posts("c", 1, timeout=60)
        csv_seconds = time.perf_counter() - started
        (upload,) = s.slack.files
        content = upload["content"]
        rows = list(csv.reader(io.StringIO(content.decode("utf-8"))))
    return {
        "interim": interim,
        "listed": listed,
        "failed_calls": len(failed_calls),
        "all_calls": len(calls),
        "busiest": max_in_window(times),
        "throttled": throttled,
        "person": person,
        "csv_seconds": csv_seconds,
        "csv_bytes": len(content),
        "csv_rows": len(rows) - 1,
        "extra_calls_for_csv": len(s.emulator.calls) - before - len(calls),
    }


async def main() -> None:
    print(f"## Triage (IOT_QPS={QPS}, emulator on 127.0.0.1)\n")
    print("| Card for a 100,000-device batch | API latency | first answer | counts in | calls |")
    print("|---|---|---|---|---|")
    for latency in (0.05, 0.5):
        r = await card_with_counts(latency)
        print(
            f"| median of {RUNS} | {latency * 1000:.0f} ms | {r['first'] * 1000:.0f} ms "
            f"| {r['counts'] * 1000:.0f} ms | {r['calls']:.0f} |"
        )
    r = await failed_listing()
    print()
    print(f"| {FAILURES:,} failed devices | value |")
    print("|---|---|")
    print(f"| 'Reading…' shown after | {r['interim'] * 1000:.0f} ms |")
    print(f"| listing (reasons + first page) after | {r['listed']:.1f} s |")
    print(f"| ListOTATaskByJob calls for it | {r['failed_calls']} (of {r['all_calls']} calls) |")
    print(f"| busiest 1-second window | {r['busiest']} calls |")
    print(f"| Throttling answers | {r['throttled']} |")
    print(f"| another person's card meanwhile | {r['person'] * 1000:.0f} ms |")
    print(
        f"| CSV of all | {r['csv_seconds'] * 1000:.0f} ms, {r['csv_bytes'] / 1024:.0f} KiB, "
        f"{r['csv_rows']:,} rows, {r['extra_calls_for_csv']} more calls |"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nPeak RSS of the whole benchmark process: {peak:.0f} MiB")
    if r["throttled"]:
        print("MISSED: the listing was throttled by the gateway")
    if r["person"] > 2.0:
        print("MISSED: a person's card took over 2 s during a bulk listing")


if __name__ == "__main__":
    asyncio.run(main())
