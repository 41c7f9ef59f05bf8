"""Serving the app: Socket Mode when an app-level token is set, else HTTP.

Either way an aiohttp server listens on $PORT with ``GET /healthz`` (platforms that run
the Procfile's web process expect a port); in HTTP mode it also takes Slack's requests
at ``POST /slack/events``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from .runtime import Runtime

log = logging.getLogger("otajob")


def build_web_app(
    runtime: Runtime, *, mode: str, mount: Callable[[web.Application], None] | None = None
) -> web.Application:
    async def slack_events(request: web.Request) -> web.Response:
        bolt_response = await runtime.app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def healthz(_: web.Request) -> web.Response:
        push = runtime.push.state if runtime.push is not None else "off"
        return web.json_response(
            {"ok": True, "mode": mode, "demo": runtime.deps.demo, "push": push}
        )

    # Slack's requests are small (aiohttp's 1 MiB default); the local surface also takes
    # the app's file uploads (a failed-device CSV), so it gets room for them.
    web_app = web.Application(client_max_size=(64 if mount else 1) * 1024 * 1024)
    web_app.router.add_get("/healthz", healthz)
    if mode == "http":
        web_app.router.add_post("/slack/events", slack_events)
    if mount is not None:
        mount(web_app)
    return web_app


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
