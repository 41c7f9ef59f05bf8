"""A real HTTP server that answers like the IoT Platform gateway for the OTA API.

IotEmulator, the class tests and benchmarks drive, is the store (state.py, tasks.py) with
the request path in front (gateway.py, which runs the actions of actions.py) and the
control routes beside it (control.py). Every API call is logged in ``calls``; the
``/_emulator/*`` control paths are neither signed nor logged. Beside the HTTP API, ``push``
(push.py) is the server-side subscription: a STOMP server, started by start_push, that
pushes the store's job and device status changes to subscribed clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.emulator.actions import JOB_INFO_FIELDS
from bot.emulator.control import ControlRoutes
from bot.emulator.gateway import Gateway
from bot.emulator.push import PushServer
from bot.emulator.state import OtaState, utc_text
from bot.emulator.verify import WireRequest, describe

__all__ = [
    "DEMO_ACCESS_KEY_ID",
    "DEMO_ACCESS_KEY_SECRET",
    "DEMO_SECURITY_TOKEN",
    "JOB_INFO_FIELDS",
    "Call",
    "IotEmulator",
    "utc_text",
]

log = logging.getLogger(__name__)

DEMO_ACCESS_KEY_ID = "LTAIdemoOtajobEmulator"
# A published demo value, safe to print: the emulator is the only thing that accepts it.
DEMO_ACCESS_KEY_SECRET = "demo-secret-not-a-real-key"
DEMO_SECURITY_TOKEN = "CAISdemoOtajobEmulatorStsToken"
REDACTED = "<redacted>"


@dataclass
class Call:
    """One API request as the emulator saw and answered it.

    ``code`` is the Code sent back (None: success). Answers without a Code get emulator
    pseudo-codes: ``Emulator.Malformed`` (non-JSON 200) and ``Emulator.Reset`` (status 0,
    connection closed). ``scripted`` names the fail_next kind applied, if any.
    """

    action: str
    params: dict[str, str]
    access_key_id: str | None
    signature_version: str | None
    at: float
    status: int = 0
    code: str | None = None
    scripted: str | None = None


class _OnGateway:
    """An IotEmulator attribute kept on its gateway: read and set through the emulator."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, emulator: IotEmulator | None, owner: type | None = None) -> Any:
        return self if emulator is None else getattr(emulator.gateway, self.name)

    def __set__(self, emulator: IotEmulator, value: Any) -> None:
        setattr(emulator.gateway, self.name, value)


class IotEmulator(OtaState):
    """The gateway plus an in-memory store of OTA jobs.

    The store (jobs, tasks, firmwares, instance scoping, ``auto_jobs``) is OtaState's, with
    its methods (add_job, set_status, set_tasks, add_task, task_counts, find_job ...).
    ``credentials``, ``sts_tokens``, ``qps`` and ``latency`` are the gateway's settings
    (see Gateway for the quotas), read and set here. ``push`` (a PushServer) accepts the
    same credentials; it listens once start_push is called, and stop stops it too.
    """

    credentials = _OnGateway()
    sts_tokens = _OnGateway()
    qps = _OnGateway()
    latency = _OnGateway()

    def __init__(
        self,
        *,
        credentials: dict[str, str] | None = None,
        sts_tokens: dict[str, str] | None = None,
        jobs: dict[str, dict] | None = None,
        qps: float = 10,
        latency: float = 0.0,
        clock: Callable[[], float] = time.time,
        auto_jobs: bool = False,
    ) -> None:
        super().__init__(jobs=jobs, clock=clock, auto_jobs=auto_jobs)
        self.gateway = Gateway(
            self,
            credentials=(
                dict(credentials)
                if credentials is not None
                else {DEMO_ACCESS_KEY_ID: DEMO_ACCESS_KEY_SECRET}
            ),
            sts_tokens=(
                dict(sts_tokens)
                if sts_tokens is not None
                else {DEMO_ACCESS_KEY_ID: DEMO_SECURITY_TOKEN}
            ),
            qps=qps,
            latency=latency,
        )
        self.push = PushServer(
            credentials=lambda: self.gateway.credentials,
            sts_tokens=lambda: self.gateway.sts_tokens,
            clock=lambda: self.clock(),
        )
        self.base_url = ""
        self.calls: list[Call] = []
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()

    # --- lifecycle ------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._stopping = asyncio.Event()
        # No access log: its request line would carry SecurityToken for V2 calls.
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound = self._runner.addresses[0][1]
        shown = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{shown}:{bound}"
        return self.base_url

    async def start_push(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> str:
        """Start the push server; from now on status changes are published to it.

        Returns ``stomp://host:port`` (``stomp+ssl://`` with ``ssl_context``).
        """
        url = await self.push.start(host, port, ssl_context)
        if self.push.publish_event not in self.listeners:
            self.listeners.append(self.push.publish_event)
        return url

    async def stop(self) -> None:
        self._stopping.set()  # wakes "slow" and latency sleeps so shutdown is immediate
        if self.push.publish_event in self.listeners:
            self.listeners.remove(self.push.publish_event)
        await self.push.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> IotEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("POST", "/", self._handle_api)
        app.router.add_route("GET", "/", self._handle_api)
        ControlRoutes(self, lambda: self.calls).add_to(app.router)
        return app

    # --- test controls --------------------------------------------------------------

    def count(self, action: str = "QueryOTAJob", code: str | None = None) -> int:
        return sum(1 for c in self.calls if c.action == action and (code is None or c.code == code))

    def fail_next(self, kind: str, **options: Any) -> None:
        """Script failures for the next well-signed calls: see Gateway.fail_next.

        Options: ``count`` (default 1), ``action``, ``retry_after`` (throttle), ``status``
        (business).
        """
        self.gateway.fail_next(kind, **options)

    def reset(self) -> None:
        self.calls.clear()
        self.gateway.reset()
        self.push.reset()

    # --- the API --------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        arrived = self.clock()
        wire = WireRequest(
            method=request.method,
            raw_query=request.rel_url.raw_query_string,  # undecoded, as signed
            headers=request.headers,
            body=await request.read(),
            path=request.rel_url.raw_path,
        )
        seen = describe(wire)
        params = dict(seen.params)
        if "SecurityToken" in params:
            params["SecurityToken"] = REDACTED
        call = Call(seen.action, params, seen.access_key_id, seen.signature_version, arrived)
        self.calls.append(call)
        answer = self.gateway.answer(wire, request.host, arrived)
        call.status, call.code, call.scripted = answer.status, answer.code, answer.scripted
        log.info(
            "%s %s -> %s %s", call.action or "-", call.signature_version, call.status, call.code
        )
        await self._pause(answer.delay)
        if answer.response is None:
            if request.transport is not None:
                request.transport.abort()
            # Nothing is sent: aiohttp drops a response it cannot write to a closed socket.
            return web.Response(status=500)
        return answer.response

    async def _pause(self, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)
