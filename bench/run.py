"""``make bench``: how otajob behaves against the IoT emulator, over real HTTP on 127.0.0.1.

1. Ack latency of 40 concurrent ``/otajob <JobId>`` POSTs to the real web app, while the
   API takes 1.5 s, beside a naive handler that calls the API before ack().
2. Upstream calls those 40 identical queries cost.
3. 60 distinct jobs at IOT_QPS=10: wall time, throttled answers, busiest 1-second window.
4. Job card render throughput, for the spec's example job and for hostile long strings.
5. Peak RSS.

Then bench/watchers.py: 1,000 watches polled under the quota share (its own table),
bench/triage.py: device counts of a 100,000-device batch, 10,000 failed devices, the CSV,
bench/membership.py: `watches all` and the Home tab with 2,000 watched channels, and
bench/push.py: live updates vs polling with 1,000 watched batches.

Not a test: it asserts nothing about timing, but says clearly which target it missed.
"""

from __future__ import annotations

import os

# Alibaba's default credential chain may ask the ECS metadata service; never from here.
os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"

import asyncio
import dataclasses
import logging
import resource
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from slack_bolt.async_app import AsyncAck, AsyncApp

from bench.harness import (
    SIGNING_SECRET,
    Stack,
    Table,
    latency_summary,
    machine,
    max_in_window,
    post_timed,
    serve_http,
    signed_command,
    stack,
)
from bench.membership import main as membership
from bench.push import print_push
from bench.triage import main as triage
from bench.watchers import print_watchers
from bot.emulator import fixtures
from bot.iot.models import JobResult, OtaJob
from bot.job_ref import JobRef
from bot.render import Renderer
from bot.runtime import Runtime
from bot.slack.grammar import QueryJob, parse_command
from bot.slack.replies import job_reply

JOB = fixtures.EXAMPLE_JOB_ID_UNMASKED  # the spec example, under an ID the grammar accepts
CARD_TITLE = "firmware2"  # the spec example's Name: the card's header
CONCURRENT = 40
API_LATENCY = 1.5
SLACK_DEADLINE = 3.0
DISTINCT_JOBS = 60
QPS = 10
RENDER_SECONDS = 2.0
RENDER_MAX = 200_000  # renders per case, whatever the clock says
STEP_TIMEOUT = 60.0  # no measurement may take longer than this


# --- 1 and 2: ack latency and upstream calls ----------------------------------------------


def naive_app(runtime: Runtime) -> AsyncApp:
    """/otajob done wrong: the API call (fresh) happens before ack(), the card rides on it."""
    app = AsyncApp(
        client=runtime.app.client,
        signing_secret=SIGNING_SECRET,
        process_before_response=False,
    )

    @app.command("/otajob")
    async def otajob(ack: AsyncAck, command: dict[str, Any]) -> None:
        parsed = parse_command(command.get("text"))
        if not isinstance(parsed, QueryJob):
            await ack(text="usage: /otajob <JobId>")
            return
        ref = JobRef(parsed.job_id, parsed.instance_id)
        reply = await job_reply(runtime.deps, ref, lang="en", fresh=True)
        await ack(response_type="ephemeral", **reply.message.as_kwargs())

    return app


async def fire_commands(s: Stack, base_url: str) -> tuple[float, list[float], list[httpx.Response]]:
    """Warm the app with `/otajob help` (no API call), then POST 40 `/otajob JOB` at once.

    Returns when the burst started (time.monotonic, FakeSlack's clock), each request's
    time to its HTTP response (the ack), and the responses.
    """
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as http:
        await post_timed(http, *signed_command(s.slack, "help", "warmup"))
        requests = [signed_command(s.slack, JOB, f"k{i}") for i in range(CONCURRENT)]
        started = time.monotonic()
        timed = await asyncio.gather(*(post_timed(http, *r) for r in requests))
    return started, [t for t, _ in timed], [r for _, r in timed]


async def wait_for_cards(s: Stack, keys: list[str], timeout: float) -> list[Any]:
    """The first post to each response_url key (None where none came in time)."""

    async def first(key: str) -> Any:
        try:
            return (await s.slack.wait_for_posts(key, timeout=timeout))[0]
        except AssertionError:  # FakeSlack's way of saying "not in time"
            return None

    return await asyncio.gather(*(first(k) for k in keys))


def is_card(body: Any) -> bool:
    try:
        return body["blocks"][0]["text"]["text"] == CARD_TITLE
    except (KeyError, IndexError, TypeError):
        return False


async def measure_ack() -> dict[str, Any]:
    """The real app: ack at once, the card follows on response_url."""
    async with stack(latency=API_LATENCY) as s, serve_http(s.runtime) as url:
        started, acks, responses = await fire_commands(s, url)
        keys = [f"k{i}" for i in range(CONCURRENT)]
        posts = await wait_for_cards(s, keys, timeout=API_LATENCY + 10)
        arrived = [p for p in posts if p is not None]
        cards = sum(
            1 for p in arrived if p.body.get("response_type") == "ephemeral" and is_card(p.body)
        )
        return {
            **latency_summary(acks),
            "http_ok": sum(1 for r in responses if r.status_code == 200),
            "cards": cards,
            "all_cards_s": max(p.at for p in arrived) - started if arrived else float("nan"),
            "upstream_calls": s.emulator.count("QueryOTAJob"),
        }


async def measure_naive_ack() -> dict[str, Any]:
    """The naive handler, same web app and same fake Slack client, fresh emulator."""
    async with stack(latency=API_LATENCY) as s:
        naive = dataclasses.replace(s.runtime, app=naive_app(s.runtime))
        async with serve_http(naive) as url:
            _, acks, responses = await fire_commands(s, url)
        cards = sum(1 for r in responses if r.status_code == 200 and is_card(r.json()))
        return {
            **latency_summary(acks),
            "cards": cards,
            "upstream_calls": s.emulator.count("QueryOTAJob"),
        }


# --- 3: distinct jobs under the quota -----------------------------------------------------


async def measure_distinct_jobs(latency: float = 0.05) -> dict[str, Any]:
    """60 different JobIds at once through deps.service, so the real limiter is used."""
    async with stack(latency=latency, qps=QPS, auto_jobs=True) as s:
        ids = [f"BenchJob{i:04d}" for i in range(DISTINCT_JOBS)]
        started = time.perf_counter()
        results = await asyncio.gather(
            *(s.runtime.deps.service.get_job(job_id) for job_id in ids), return_exceptions=True
        )
        wall = time.perf_counter() - started
        answered = sum(
            1
            for job_id, r in zip(ids, results, strict=True)
            if isinstance(r, JobResult) and r.job.job_id == job_id
        )
        calls = [c for c in s.emulator.calls if c.action == "QueryOTAJob"]
        return {
            "wall_s": wall,
            "floor_s": DISTINCT_JOBS / QPS,
            "answered": answered,
            "calls": len(calls),
            "throttled": s.emulator.count("QueryOTAJob", code="Throttling.User"),
            "max_per_second": max_in_window([c.at for c in calls]),
        }


# --- 4: rendering -------------------------------------------------------------------------


def hostile_job() -> dict[str, Any]:
    """Long strings of everything that could break a card: markup, quotes, newlines."""
    nasty = fixtures.HOSTILE_TEXT + ' "quoted" \\ back\nslash ファーム 😀 '
    tags = [
        {"Key": f"<@U{i:04d}> key {i}" + "k" * 80, "Value": (nasty * 10)[:400]} for i in range(40)
    ]
    return fixtures.make_job(
        "HostileLongJob000000000001",
        Name=(nasty * 20)[:500],
        JobDesc=(nasty * 100)[:5000],
        ProductKey=(nasty * 5)[:300],
        Tags={"OtaTagDTO": tags},
    )


def render_rate(data: dict[str, Any], lang: str = "en") -> dict[str, Any]:
    """Renderer().render("job", ...) with the context bot/slack/replies.py passes."""
    renderer = Renderer()
    job_id = data["JobId"]
    context = {
        "job": OtaJob.model_validate(data),
        "job_id": job_id,
        "request_id": "6D7DBE2A-3C3B-4F3E-8D62-0F6D1E1BENCH",
        "checked_at": datetime.now(UTC),
        "instance_id": None,
        "demo": False,
        "shared_by": None,
        "buttons": ("refresh", "share"),
        "button_value": JobRef(job_id).to_value(),
    }
    renderer.render("job", lang=lang, **context)  # compile the template outside the timing
    count = 0
    started = time.perf_counter()
    deadline = started + RENDER_SECONDS
    while count < RENDER_MAX and time.perf_counter() < deadline:
        renderer.render("job", lang=lang, **context)
        count += 1
    elapsed = time.perf_counter() - started
    return {"per_second": count / elapsed, "mean_ms": elapsed / count * 1000, "renders": count}


# --- the table ----------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


async def measure_all() -> dict[str, dict[str, Any]]:
    results = {}
    for name, measure in (
        ("ack", measure_ack),
        ("naive", measure_naive_ack),
        ("distinct", measure_distinct_jobs),
        ("distinct_slow", lambda: measure_distinct_jobs(API_LATENCY)),
    ):
        results[name] = await asyncio.wait_for(measure(), STEP_TIMEOUT)
    return results


def build_table(r: dict[str, dict[str, Any]]) -> Table:
    ack, naive, distinct = r["ack"], r["naive"], r["distinct"]
    spec, hostile, spec_ja = r["render_spec"], r["render_hostile"], r["render_spec_ja"]
    t = Table()
    n, lat = CONCURRENT, f"{API_LATENCY:g} s"
    t.add(f"Ack p50, {n} concurrent `/otajob` (API {lat})", ms(ack["p50"]))
    t.add("Ack p99", ms(ack["p99"]), f"< {lat} (no I/O before ack)", ack["p99"] < API_LATENCY)
    t.add(
        "Ack max",
        ms(ack["max"]),
        f"< {SLACK_DEADLINE:g} s (Slack's deadline)",
        ack["max"] < SLACK_DEADLINE,
    )
    t.add("HTTP 200 acks", f"{ack['http_ok']}/{n}", f"{n}/{n}", ack["http_ok"] == n)
    t.add(
        f"All {n} cards at the fake Slack (from the burst's start)",
        f"{ms(ack['all_cards_s'])} ({ack['cards']}/{n} job cards)",
        f"{n}/{n} job cards",
        ack["cards"] == n,
    )
    slow = naive["p99"] >= SLACK_DEADLINE
    t.add(
        "Naive handler (API before ack): ack p50 / p99 / max",
        f"{ms(naive['p50'])} / {ms(naive['p99'])} / {ms(naive['max'])}",
        f"comparison only: ≥ {lat} expected; Slack gives up at {SLACK_DEADLINE:g} s"
        + (" (these would time out)" if slow else ""),
    )
    t.add(
        "Naive handler: cards in the ack · upstream calls",
        f"{naive['cards']}/{n} · {naive['upstream_calls']}",
    )
    t.add(
        f"Upstream QueryOTAJob calls for the {n} identical queries",
        str(ack["upstream_calls"]),
        "≤ 2",
        ack["upstream_calls"] <= 2,
    )
    t.add(
        f"{DISTINCT_JOBS} distinct jobs at IOT_QPS={QPS}: wall time",
        f"{distinct['wall_s']:.2f} s",
        f"vs quota floor {distinct['floor_s']:g} s ({DISTINCT_JOBS}/{QPS}); a 1 s sliding"
        f" window lets the last {QPS} go at ~{distinct['floor_s'] - 1:g} s",
    )
    t.add(
        "Jobs answered",
        f"{distinct['answered']}/{DISTINCT_JOBS} ({distinct['calls']} calls)",
        f"{DISTINCT_JOBS}/{DISTINCT_JOBS}",
        distinct["answered"] == DISTINCT_JOBS,
    )
    t.add("Throttling.User answers", str(distinct["throttled"]), "0", distinct["throttled"] == 0)
    t.add(
        "Most calls in any 1 s window (emulator's clock)",
        str(distinct["max_per_second"]),
        f"≤ {QPS}",
        distinct["max_per_second"] <= QPS,
    )
    slow_api = r["distinct_slow"]
    t.add(
        f"{DISTINCT_JOBS} distinct jobs, API latency {lat}: wall time · Throttling.User",
        f"{slow_api['wall_s']:.2f} s · {slow_api['throttled']}",
        "0 throttled (a slow answer holds its quota place up to 0.25 s past release)",
        slow_api["throttled"] == 0 and slow_api["answered"] == DISTINCT_JOBS,
    )
    for label, rate in (
        ("spec example job", spec),
        ("spec example job, in Japanese", spec_ja),
        ("hostile job (5,000-char desc, 40 tags)", hostile),
    ):
        t.add(
            f"Render job card, {label}",
            f"{rate['per_second']:,.0f}/s · {rate['mean_ms']:.2f} ms each",
        )
    t.add("Peak RSS (whole run)", f"{r['rss_mib']:.0f} MiB")
    return t


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    for name in ("otajob", "bot", "slack_bolt", "slack_sdk", "aiohttp", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    results: dict[str, Any] = asyncio.run(measure_all())
    results["render_spec"] = render_rate(fixtures.default_jobs()[fixtures.EXAMPLE_JOB_ID])
    results["render_spec_ja"] = render_rate(
        fixtures.default_jobs()[fixtures.EXAMPLE_JOB_ID], lang="ja"
    )
    results["render_hostile"] = render_rate(hostile_job())
    results["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB
    table = build_table(results)
    print(table.markdown())
    print()
    print(machine())
    if table.missed:
        print("MISSED TARGETS: " + "; ".join(table.missed))
    else:
        print("All targets met.")
    print()
    print_watchers()
    print()
    asyncio.run(triage())
    print()
    membership()
    print()
    print_push()


if __name__ == "__main__":
    main()
