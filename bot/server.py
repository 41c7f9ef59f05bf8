"""Serving the app: Socket Mode when an app-level token is set, else HTTP.

Either way an aiohttp server listens on $PORT with ``GET /healthz`` (the process is
alive), ``GET /readyz`` (it can serve: database, migrations, Slack token) and
``GET /metrics`` (Prometheus); in HTTP mode it also takes Slack's requests at
``POST /slack/events``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.errors import SlackApiError

from .metrics import CONTENT_TYPE
from .runtime import Runtime

log = logging.getLogger("otajob")


def build_web_app(
    runtime: Runtime, *, mode: str, mount: Callable[[web.Application], None] | None = None
) -> web.Application:
    async def slack_events(request: web.Request) -> web.Response:
        started = time.monotonic()
        bolt_request = await to_bolt_request(request)
        bolt_response = await runtime.app.async_dispatch(bolt_request)
        runtime.metrics.acked(request_kind(bolt_request.body), time.monotonic() - started)
        return await to_aiohttp_response(bolt_response)

    async def metrics(_: web.Request) -> web.Response:
        store = runtime.store
        due = await store.next_due()
        lag = time.time() - due if due is not None else 0.0
        push = runtime.push.state if runtime.push is not None else "off"
        runtime.metrics.set_state(await store.watch_states(), lag, push)
        return web.Response(
            body=runtime.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE}
        )

    async def readyz(_: web.Request) -> web.Response:
        checks = await readiness(runtime)
        ready = all(value == "ok" for value in checks.values())
        return web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)

    async def healthz(_: web.Request) -> web.Response:
        push = runtime.push.state if runtime.push is not None else "off"
        return web.json_response(
            {"ok": True, "mode": mode, "demo": runtime.deps.demo, "push": push}
        )

    # Slack's requests are small (aiohttp's 1 MiB default); the local surface also takes
    # the app's file uploads (a failed-device CSV), so it gets room for them.
    web_app = web.Application(client_max_size=(64 if mount else 1) * 1024 * 1024)
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/readyz", readyz)
    web_app.router.add_get("/metrics", metrics)
    if mode == "http":
        web_app.router.add_post("/slack/events", slack_events)
    if mount is not None:
        mount(web_app)
    return web_app


def request_kind(body: dict[str, Any]) -> str:
    """What Slack sent, as /metrics labels acknowledgements."""
    if body.get("command"):
        return "command"
    kind = str(body.get("type") or "")
    return kind if kind in REQUEST_KINDS else "other"


REQUEST_KINDS = frozenset({"block_actions", "view_submission", "event_callback"})
READY_CHECK_SECONDS = 2.0  # a probe's answer must not wait on a hung database or Slack
TOKEN_OK_SECONDS = 60.0  # a valid token is asked about again after a minute


async def readiness(runtime: Runtime) -> dict[str, str]:
    """What /readyz checks, each "ok" or why not (never a secret)."""
    checks: dict[str, str] = {}
    try:
        migrated = await asyncio.wait_for(runtime.store.migrated(), READY_CHECK_SECONDS)
        checks["database"] = "ok"
        checks["migrations"] = "ok" if migrated else "not applied"
    except Exception as exc:  # unreachable, or no answer in time
        checks["database"] = f"unreachable ({type(exc).__name__})"
        checks["migrations"] = "unknown"
    checks["slack_token"] = await _token_check(runtime)
    return checks


async def _token_check(runtime: Runtime) -> str:
    """auth.test, remembered for a minute when it says yes (a probe every few seconds
    must not spend Slack's rate limit)."""
    now = time.monotonic()
    if now < runtime.token_checked_until:
        return "ok"
    try:
        answer = await asyncio.wait_for(runtime.deps.client.auth_test(), READY_CHECK_SECONDS)
    except SlackApiError as exc:
        return f"refused ({exc.response.get('error')})"
    except Exception as exc:
        return f"no answer ({type(exc).__name__})"
    if not answer.get("ok"):
        return "refused"
    runtime.token_checked_until = now + TOKEN_OK_SECONDS
    return "ok"


async def serve(
    runtime: Runtime,
    *,
    host: str = "0.0.0.0",
    mount: Callable[[web.Application], None] | None = None,
    on_listening: Callable[[], None] | None = None,
) -> None:
    """Run until SIGTERM or SIGINT, then stop taking requests and close cleanly.

    ``mount`` adds routes of the caller's to the same server (the local chat surface);
    ``on_listening`` runs once the port is open."""
    settings = runtime.settings
    mode = "socket" if settings.slack_app_token else "http"
    await runtime.warm()
    runner = web.AppRunner(build_web_app(runtime, mode=mode, mount=mount))
    await runner.setup()
    await web.TCPSite(runner, host, settings.port).start()
    socket_handler = None
    if settings.slack_app_token:
        socket_handler = AsyncSocketModeHandler(
            runtime.app, settings.slack_app_token.get_secret_value()
        )
        await socket_handler.connect_async()
        log.info("connected to Slack in Socket Mode; health check on port %d", settings.port)
    else:
        log.info("listening for Slack on port %d at /slack/events", settings.port)
    if on_listening is not None:
        on_listening()

    runtime.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    if socket_handler is not None:
        await socket_handler.close_async()
    await runner.cleanup()
    await runtime.aclose()
