"""The benchmark's plumbing: the IoT emulator, the fake Slack and the app, wired like the
tests wire them (tests/conftest.py), each on 127.0.0.1 over real HTTP; plus small stats."""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from aiohttp import web

from bot.config import load_settings
from bot.emulator import IotEmulator
from bot.iot.credentials import Credential, StaticCredentials
from bot.runtime import Runtime, build_runtime
from bot.server import build_web_app
from fakes import FakeSlack, Inbound, as_http

# A key of the benchmark's own, accepted only by the emulators started here.
BENCH_KEY_ID = "LTAIbenchOtajobKey"
BENCH_KEY_SECRET = "b3nch-s3cret-not-a-real-key"
CREDENTIAL = Credential(BENCH_KEY_ID, BENCH_KEY_SECRET)
SIGNING_SECRET = "bench-signing-secret"


@dataclass
class Stack:
    emulator: IotEmulator
    slack: FakeSlack
    runtime: Runtime
    stop_s: float = float("nan")  # how long runtime.aclose() took


@asynccontextmanager
async def stack(
    *,
    latency: float = 0.0,
    qps: float = 10,
    auto_jobs: bool = False,
    settings: dict[str, str] | None = None,
    push: bool = False,
    emulator: IotEmulator | None = None,
) -> AsyncIterator[Stack]:
    """A fresh emulator, fake Slack and runtime (build_runtime, as app.py builds it);
    ``settings`` adds or overrides environment settings; ``push``: the emulator's push
    subscription is served and IOT_PUSH_URL points at it. Given an ``emulator`` (another
    stack's: one more replica against the same gateway), that one is used and left up."""
    own_emulator = emulator is None
    if emulator is None:
        emulator = IotEmulator(
            credentials={BENCH_KEY_ID: BENCH_KEY_SECRET},
            qps=qps,
            latency=latency,
            auto_jobs=auto_jobs,
        )
        await emulator.start()
    slack = FakeSlack()
    await slack.start()
    push_url = {"IOT_PUSH_URL": await emulator.start_push()} if push else {}
    environment = {
        **push_url,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "IOT_ENDPOINT": emulator.base_url,
        "IOT_QPS": str(int(qps)) if qps else "1000",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": f"sqlite:///{tempfile.mkdtemp(prefix='otajob-bench-')}/otajob.db",
        **(settings or {}),
    }
    runtime = await build_runtime(
        load_settings(environment), credentials=StaticCredentials(CREDENTIAL)
    )
    built = Stack(emulator, slack, runtime)
    try:
        yield built
        await quiet(emulator)
    finally:
        started = time.perf_counter()
        await asyncio.wait_for(runtime.aclose(), 30)
        built.stop_s = time.perf_counter() - started
        await slack.stop()
        if own_emulator:
            await emulator.stop()


async def quiet(emulator: IotEmulator, *, still: float = 1.5, bound: float = 60.0) -> None:
    """Wait until the app stops calling the API (device counts follow each card), so the
    stack is not closed under answers still on their way."""
    deadline = time.monotonic() + bound
    seen = -1
    while len(emulator.calls) != seen and time.monotonic() < deadline:
        seen = len(emulator.calls)
        await asyncio.sleep(still)


@asynccontextmanager
async def serve_http(runtime: Runtime) -> AsyncIterator[str]:
    """The real web app (build_web_app, HTTP mode) on 127.0.0.1; yields its base URL."""
    runner = web.AppRunner(build_web_app(runtime, mode="http"), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def signed_command(slack: FakeSlack, text: str, key: str) -> tuple[str, dict[str, str]]:
    """A ``/otajob <text>`` body and headers signed like Slack signs them."""
    return as_http(Inbound(slack, SIGNING_SECRET).command(text, key=key))


async def post_timed(
    http: httpx.AsyncClient, body: str, headers: dict[str, str]
) -> tuple[float, httpx.Response]:
    """POST to /slack/events; returns (seconds to the HTTP response, the response)."""
    start = time.perf_counter()
    response = await http.post("/slack/events", content=body, headers=headers)
    return time.perf_counter() - start, response


def latency_summary(samples: Sequence[float]) -> dict[str, float]:
    """p50, p99 (linear interpolation between ranks, as numpy's default) and max."""
    return {
        "p50": statistics.median(samples),
        "p99": statistics.quantiles(samples, n=100, method="inclusive")[98],
        "max": max(samples),
    }


def max_in_window(times: Sequence[float], window: float = 1.0) -> int:
    """Most events in any window (t - window, t], the emulator's own sliding window."""
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


# --- the printed table ----------------------------------------------------------------------


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []
        self.missed: list[str] = []

    def add(self, what: str, value: str, target: str = "", met: bool | None = None) -> None:
        if met is False:
            self.missed.append(f"{what}: {value} (target {target})")
            target = f"**MISSED** {target}"
        elif met:
            target = f"met: {target}"
        self.rows.append((what, value, target))

    def markdown(self) -> str:
        lines = ["| Measurement | Result | Target |", "| --- | --- | --- |"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in self.rows]
        return "\n".join(lines)


def machine() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    return (
        f"Machine: {os.cpu_count()} cores ({usable} usable), "
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.machine()}."
    )
