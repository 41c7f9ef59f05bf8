"""``python -m bench.capacity``: one replica under a burst, and the IoT client's CPU per call.

1. 500 ``/otajob <JobId>`` commands (distinct batches), 200 in flight, to ``app.py`` in
   HTTP mode (SQLite) as a process of its own. The emulator and the fake Slack run in this
   process, the load generator (bench/load.py) in a third, so each side has its own
   event loop, as Slack and the app would. Once at IOT_QPS=10 (the default quota: answers
   wait for it) and once with no quota (every answer at once: the CPU-bound case).
   Reported: acknowledgement time (p50, p99, max, how many over Slack's 3 s), time until
   every answer is posted, and the app's CPU per command (from /proc).
2. Client CPU per call: QueryOTAJob one call after another against the emulator in a
   process of its own, our IotClient against Alibaba's official SDK
   (alibabacloud-iot20180120, its async call), in alternating rounds; the median round.

Not a test: it prints a table and says which target it missed.
"""

from __future__ import annotations

import os

# Alibaba's default credential chain may ask the ECS metadata service; never from here.
os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"

import asyncio
import json
import logging
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.harness import (
    BENCH_KEY_ID,
    BENCH_KEY_SECRET,
    SIGNING_SECRET,
    Table,
    latency_summary,
    machine,
    signed_command,
)
from bot.config import load_settings
from bot.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, IotEmulator
from bot.iot.credentials import Credential, StaticCredentials
from bot.runtime import build_iot
from fakes import FakeSlack

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = 500
IN_FLIGHT = 200
SLACK_DEADLINE = 3.0
ANSWER_BOUND = 300.0  # seconds for every answer to be posted, whatever happens
ROUNDS = 5
CALLS_PER_ROUND = 400
JOB = "CapacityJob0000000000000001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process so far (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_listening(url: str, bound: float = 30.0) -> None:
    deadline = time.monotonic() + bound
    async with httpx.AsyncClient() as http:
        while True:
            try:
                await http.get(url)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nothing answered at {url}") from None
                await asyncio.sleep(0.1)


# --- 1. a burst of commands against one replica ------------------------------------------


async def burst(qps: int) -> dict[str, Any]:
    """COMMANDS commands, IN_FLIGHT at once, against app.py; ``qps`` 0: no quota."""
    emulator = IotEmulator(credentials={BENCH_KEY_ID: BENCH_KEY_SECRET}, qps=qps, auto_jobs=True)
    await emulator.start()
    slack = FakeSlack()
    await slack.start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "IOT_", "ALIBABA_"))}
    env |= {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "IOT_ENDPOINT": emulator.base_url,
        "IOT_QPS": str(qps or 1000),
        "ALIBABA_CLOUD_ACCESS_KEY_ID": BENCH_KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": BENCH_KEY_SECRET,
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
        "OTAJOB_ENV_FILE": os.devnull,
        "DATABASE_URL": f"sqlite:///{tempfile.mkdtemp(prefix='otajob-bench-')}/otajob.db",
        "PORT": str(port),
        "LOG_LEVEL": "ERROR",
    }
    app = await asyncio.create_subprocess_exec(sys.executable, "app.py", cwd=ROOT, env=env)
    try:
        await wait_listening(f"http://127.0.0.1:{port}/healthz")
        requests = [signed_command(slack, f"CapacityJob{i:016d}", f"k{i}") for i in range(COMMANDS)]
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
            json.dump(requests, file)
        cpu_before = cpu_seconds(app.pid)
        started = time.perf_counter()
        load = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.load",
            file.name,
            f"http://127.0.0.1:{port}/slack/events",
            str(IN_FLIGHT),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await load.communicate()
        os.unlink(file.name)
        sent = json.loads(out)
        for i in range(COMMANDS):
            await slack.wait_for_posts(f"k{i}", timeout=ANSWER_BOUND)
        answered = time.perf_counter() - started
        cpu_after = cpu_seconds(app.pid)
        seconds = sent["seconds"]
        return {
            **latency_summary(seconds),
            "over": sum(1 for s in seconds if s > SLACK_DEADLINE),
            "not_200": sum(n for status, n in sent["statuses"].items() if status != "200"),
            "answered_s": answered,
            "cpu_ms": (cpu_after - cpu_before) * 1000 / COMMANDS
            if cpu_before is not None and cpu_after is not None
            else None,
            "throttled": emulator.count("QueryOTAJob", code="Throttling.User"),
        }
    finally:
        app.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(app.wait(), 30)
        except TimeoutError:
            app.kill()
        await slack.stop()
        await emulator.stop()


# --- 2. the IoT client's CPU per call, against Alibaba's SDK -------------------------------


async def ours(endpoint: str) -> float:
    """CPU seconds per call of CALLS_PER_ROUND calls by IotClient, as the app builds it."""
    settings = load_settings(
        {
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_SIGNING_SECRET": "bench",
            "IOT_ENDPOINT": endpoint,
            "IOT_QPS": "1000",
        }
    )
    credential = Credential(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET)
    parts = await build_iot(settings, credentials=StaticCredentials(credential))
    try:
        for _ in range(20):  # connections open, code warm
            await parts.client.query_ota_job(JOB)
        started = time.process_time()
        for _ in range(CALLS_PER_ROUND):
            await parts.client.query_ota_job(JOB)
        return (time.process_time() - started) / CALLS_PER_ROUND
    finally:
        await parts.aclose()


async def sdk(endpoint: str) -> float:
    """The same calls by Alibaba's SDK (Client.query_otajob_async)."""
    from alibabacloud_iot20180120 import models
    from alibabacloud_iot20180120.client import Client
    from alibabacloud_tea_openapi import models as openapi

    host = endpoint.split("://", 1)[1].rstrip("/")
    client = Client(
        openapi.Config(
            access_key_id=DEMO_ACCESS_KEY_ID,
            access_key_secret=DEMO_ACCESS_KEY_SECRET,
            endpoint=host,
            protocol="http",
            region_id="cn-shanghai",
        )
    )
    request = models.QueryOTAJobRequest(job_id=JOB)
    for _ in range(20):
        await client.query_otajob_async(request)
    started = time.process_time()
    for _ in range(CALLS_PER_ROUND):
        await client.query_otajob_async(request)
    return (time.process_time() - started) / CALLS_PER_ROUND


async def client_cpu() -> dict[str, float]:
    """Median CPU per call of ROUNDS alternating rounds each, the emulator apart."""
    port = free_port()
    emulator = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.emulator",
        "--port",
        str(port),
        "--qps",
        "0",
        "--auto-jobs",
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        await wait_listening(endpoint + "/")
        found: dict[str, list[float]] = {"ours": [], "sdk": []}
        for _ in range(ROUNDS):
            found["ours"].append(await ours(endpoint))
            found["sdk"].append(await sdk(endpoint))
        return {name: statistics.median(values) * 1000 for name, values in found.items()}
    finally:
        emulator.send_signal(signal.SIGTERM)
        await emulator.wait()


# --- the table ---------------------------------------------------------------------------


def build_table(quota: dict[str, Any], free: dict[str, Any], cpu: dict[str, float]) -> Table:
    t = Table()
    for label, r in (("IOT_QPS=10", quota), ("no quota", free)):
        t.add(
            f"{COMMANDS} commands, {IN_FLIGHT} in flight, {label}: ack p50 / p99 / max",
            f"{r['p50'] * 1000:,.0f} / {r['p99'] * 1000:,.0f} / {r['max'] * 1000:,.0f} ms",
            "p99 < 1 s",
            r["p99"] < 1.0,
        )
        t.add(
            f"  {label}: acks over 3 s · answers not 200",
            f"{r['over']} · {r['not_200']}",
            "0 · 0",
            r["over"] == 0 and r["not_200"] == 0,
        )
        cpu_ms = "n/a" if r["cpu_ms"] is None else f"{r['cpu_ms']:.1f} ms"
        t.add(
            f"  {label}: every answer posted after · app CPU per command · Throttling",
            f"{r['answered_s']:.1f} s · {cpu_ms} · {r['throttled']}",
        )
    t.add(
        "IoT client CPU per QueryOTAJob call: otajob / Alibaba's SDK (async)",
        f"{cpu['ours']:.2f} / {cpu['sdk']:.2f} ms",
        "at or below the SDK's",
        cpu["ours"] <= cpu["sdk"],
    )
    return t


async def measure() -> Table:
    quota = await burst(10)
    free = await burst(0)
    cpu = await client_cpu()
    return build_table(quota, free, cpu)


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    table = asyncio.run(measure())
    print(table.markdown())
    print()
    print(machine())
    print("MISSED TARGETS: " + "; ".join(table.missed) if table.missed else "All targets met.")


if __name__ == "__main__":
    main()
