"""A real HTTP server that answers like the IoT Platform gateway for the OTA read API.

Order of checks for each API call (``POST /`` or ``GET /``, parameters in the query):
signature (verify.py) -> nonce replay -> Version -> Action -> scripted failure (fail_next)
-> quota -> required parameters -> the action's handler. Only calls that pass the
signature and find their action reach the quota, and a throttled call does not take a
slot in the window: the real gateway rejects it before it runs, so it consumes nothing.
Scripted failures stand in for the gateway failing, so they take no slot either (except
"slow", which is a normal answer delivered late). Every API call is logged in ``calls``;
the ``/_emulator/*`` control paths are neither signed nor logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.emulator.fixtures import default_jobs, make_job
from bot.emulator.verify import (
    API_VERSION,
    WINDOW_SECONDS,
    GatewayError,
    Verified,
    WireRequest,
    describe,
    missing,
    verify,
)
from bot.iot.models import JOB_STATUSES

log = logging.getLogger(__name__)

DEMO_ACCESS_KEY_ID = "LTAIdemoOtajobEmulator"
# A published demo value, safe to print: the emulator is the only thing that accepts it.
DEMO_ACCESS_KEY_SECRET = "demo-secret-not-a-real-key"
DEMO_SECURITY_TOKEN = "CAISdemoOtajobEmulatorStsToken"

FAILURE_KINDS = ("throttle", "server_error", "internal", "malformed", "business", "slow", "reset")
SLOW_SECONDS = 30.0
# Per-action quotas that do not follow the ``qps`` attribute (reference: quotas section).
FIXED_QUOTAS = {"QueryOTAFirmware": 20.0, "CancelOTATaskByJob": 5.0}
WELL_FORMED_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
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


@dataclass
class _Script:
    kind: str
    remaining: int
    action: str | None
    retry_after: float | None


class BusinessError(Exception):
    """An IoT-level failure: HTTP 200, ``Success: false``, ``ErrorMessage`` (not Message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ActionSpec:
    """An API action: its handler returns ``Data`` or raises BusinessError."""

    handler: Callable[[IotEmulator, dict[str, str]], Any]
    required: tuple[str, ...] = ()


@dataclass
class _Answer:
    response: web.StreamResponse | None  # None: close the connection without answering
    delay: float
    status: int
    code: str | None
    scripted: str | None = None


def request_id() -> str:
    return str(uuid.uuid4()).upper()


def utc_text(moment: float) -> str:
    """The API's time format, ``2019-12-28T02:43:10.000Z``."""
    stamp = datetime.fromtimestamp(moment, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def _query_ota_job(emu: IotEmulator, params: dict[str, str]) -> dict[str, Any]:
    return emu.find_job(params["JobId"], params.get("IotInstanceId") or None)


# Add actions here (ListOTATaskByJob, QueryOTAFirmware ...); verification never changes.
ACTIONS: dict[str, ActionSpec] = {
    "QueryOTAJob": ActionSpec(_query_ota_job, required=("JobId",)),
}


class IotEmulator:
    """The gateway plus an in-memory store of OTA jobs.

    Instance scoping is strict: a job added with an ``instance_id`` is visible only to
    requests whose IotInstanceId matches (otherwise iot.system.InstanceNotFound), and a job
    without one only to requests that send no IotInstanceId (a request naming a known
    instance gets iot.ota.JobNotFound for it; an unknown instance, InstanceNotFound).

    With ``auto_jobs=True`` any unknown JobId made of letters, digits, '-' and '_' is
    answered with a freshly minted IN_PROGRESS job (fixtures.make_job), stored so that
    set_status works on it afterwards: benchmarks can ask for as many jobs as they like.

    ``qps`` applies to QueryOTAJob, ListOTATaskByJob and every action without a fixed
    quota (QueryOTAFirmware 20/s, CancelOTATaskByJob 5/s); 0 or math.inf disables it.
    """

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
        self.credentials = (
            dict(credentials)
            if credentials is not None
            else {DEMO_ACCESS_KEY_ID: DEMO_ACCESS_KEY_SECRET}
        )
        self.sts_tokens = (
            dict(sts_tokens)
            if sts_tokens is not None
            else {DEMO_ACCESS_KEY_ID: DEMO_SECURITY_TOKEN}
        )
        self.qps = qps
        self.latency = latency
        self.clock = clock
        self.auto_jobs = auto_jobs
        self.base_url = ""
        self.calls: list[Call] = []
        self.jobs: dict[str, dict] = {}
        self._instance_of: dict[str, str | None] = {}
        for data in (default_jobs() if jobs is None else jobs).values():
            self.add_job(data)
        self._scripts: list[_Script] = []
        self._windows: dict[tuple[str, str], deque[float]] = {}
        self._nonces: dict[tuple[str, str], float] = {}
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

    async def stop(self) -> None:
        self._stopping.set()  # wakes "slow" and latency sleeps so shutdown is immediate
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
        app.router.add_get("/_emulator/calls", self._handle_calls)
        app.router.add_get("/_emulator/jobs", self._handle_jobs)
        app.router.add_post("/_emulator/jobs/{job_id}/status", self._handle_set_status)
        return app

    # --- test controls --------------------------------------------------------------

    def count(self, action: str = "QueryOTAJob", code: str | None = None) -> int:
        return sum(1 for c in self.calls if c.action == action and (code is None or c.code == code))

    def add_job(self, data: dict, *, instance_id: str | None = None) -> None:
        job_id = data["JobId"]
        self.jobs[job_id] = data
        self._instance_of[job_id] = instance_id

    def set_status(self, job_id: str, status: str) -> None:
        """Move a job to ``status``, stamping the times the API would show for it."""
        if status not in JOB_STATUSES:
            raise ValueError(f"unknown job status {status!r}; expected one of {JOB_STATUSES}")
        job = self.jobs[job_id]  # KeyError for an unknown job, on purpose
        now = utc_text(self.clock())
        job["JobStatus"] = status
        job["UtcModified"] = now
        if status == "PLANNED":
            job.pop("UtcStartTime", None)
            job.pop("UtcEndTime", None)
        elif status == "IN_PROGRESS":
            job["UtcStartTime"] = now
            job.pop("UtcEndTime", None)
        else:
            job["UtcEndTime"] = now

    def fail_next(
        self,
        kind: str,
        *,
        count: int = 1,
        action: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Script failures for the next ``count`` well-signed calls (of ``action`` if given).

        ``retry_after`` is in seconds; it is sent as ``x-acs-retry-after`` in milliseconds,
        the unit Alibaba's SDKs (Darabonba retry policy) read it in. Scripts queue in order.
        """
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {kind!r}; expected one of {FAILURE_KINDS}")
        if count > 0:
            self._scripts.append(_Script(kind, count, action, retry_after))

    def reset(self) -> None:
        self.calls.clear()
        self._scripts.clear()
        self._windows.clear()
        self._nonces.clear()

    def find_job(self, job_id: str, instance_id: str | None) -> dict[str, Any]:
        if job_id not in self.jobs and self.auto_jobs and WELL_FORMED_JOB_ID.match(job_id):
            self.add_job(make_job(job_id), instance_id=instance_id)
        if instance_id is not None and instance_id not in self._instance_of.values():
            raise _instance_not_found()
        if job_id not in self.jobs:
            raise _job_not_found()
        scope = self._instance_of[job_id]
        if scope != instance_id:
            raise _instance_not_found() if scope is not None else _job_not_found()
        return self.jobs[job_id]

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
        answer = self._answer(wire, request.host, arrived)
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

    def _answer(self, wire: WireRequest, host: str, arrived: float) -> _Answer:
        rid = request_id()
        try:
            verified = verify(
                wire, credentials=self.credentials, sts_tokens=self.sts_tokens, now=arrived
            )
            self._use_nonce(verified, arrived)
            if verified.version != API_VERSION:
                raise GatewayError(
                    400, "InvalidVersion", "Specified parameter Version is not valid."
                )
            spec = ACTIONS.get(verified.action)
            if spec is None:
                raise GatewayError(
                    404,
                    "InvalidAction.NotFound",
                    "Specified api is not found, please check your url and method.",
                )
            script = self._take_script(verified.action)
            if script is not None:
                return self._scripted(script, verified, spec, host, rid, arrived)
            return self._run(verified, spec, host, rid, arrived)
        except GatewayError as err:
            return self._gateway_error(err, host, rid)

    def _run(
        self, verified: Verified, spec: ActionSpec, host: str, rid: str, arrived: float
    ) -> _Answer:
        if not self._admit(verified.access_key_id, verified.action, arrived):
            raise _throttled()
        for name in spec.required:
            if not verified.params.get(name):
                raise missing(name)
        try:
            data = spec.handler(self, verified.params)
        except BusinessError as err:
            return self._business_error(err, rid)
        body = {"RequestId": rid, "Success": True, "Data": data}
        return _Answer(_json(200, body, rid), self.latency, 200, None)

    def _scripted(
        self,
        script: _Script,
        verified: Verified,
        spec: ActionSpec,
        host: str,
        rid: str,
        arrived: float,
    ) -> _Answer:
        kind = script.kind
        answer: _Answer
        if kind == "throttle":
            headers = {}
            if script.retry_after is not None:
                headers["x-acs-retry-after"] = str(round(script.retry_after * 1000))
            answer = self._gateway_error(_throttled(headers), host, rid)
        elif kind == "server_error":
            answer = self._gateway_error(
                GatewayError(
                    503,
                    "ServiceUnavailable",
                    "The request has failed due to a temporary failure of the server.",
                ),
                host,
                rid,
            )
        elif kind == "internal":
            answer = self._gateway_error(
                GatewayError(
                    500,
                    "InternalError",
                    "The request processing has failed due to some unknown error, "
                    "exception or failure.",
                ),
                host,
                rid,
            )
        elif kind == "business":
            answer = self._business_error(
                BusinessError("iot.system.SystemException", "A system exception occurred."), rid
            )
        elif kind == "malformed":
            page = "<html><head><title>502 Bad Gateway</title></head><body>Tengine</body></html>"
            response = web.Response(status=200, text=page, content_type="text/html")
            answer = _Answer(response, self.latency, 200, "Emulator.Malformed")
        elif kind == "slow":
            try:
                answer = self._run(verified, spec, host, rid, arrived)
            except GatewayError as err:
                answer = self._gateway_error(err, host, rid)
            answer.delay = SLOW_SECONDS
        else:  # reset
            answer = _Answer(None, self.latency, 0, "Emulator.Reset")
        answer.scripted = kind
        return answer

    def _gateway_error(self, err: GatewayError, host: str, rid: str) -> _Answer:
        body = {
            "RequestId": rid,
            "HostId": host,
            "Code": err.code,
            "Message": err.message,
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={err.code}&product=Iot&requestId={rid}",
        }
        return _Answer(
            _json(err.status, body, rid, err.headers), self.latency, err.status, err.code
        )

    def _business_error(self, err: BusinessError, rid: str) -> _Answer:
        body = {"RequestId": rid, "Success": False, "Code": err.code, "ErrorMessage": err.message}
        return _Answer(_json(200, body, rid), self.latency, 200, err.code)

    def _take_script(self, action: str) -> _Script | None:
        for script in self._scripts:
            if script.action is None or script.action == action:
                script.remaining -= 1
                if script.remaining <= 0:
                    self._scripts.remove(script)
                return script
        return None

    def _use_nonce(self, verified: Verified, now: float) -> None:
        # Forget nonces older than the window; the dict keeps arrival order.
        while self._nonces:
            oldest = next(iter(self._nonces))
            if self._nonces[oldest] > now - WINDOW_SECONDS:
                break
            del self._nonces[oldest]
        key = (verified.access_key_id, verified.nonce)
        if key in self._nonces:
            raise GatewayError(
                400, "SignatureNonceUsed", "Specified signature nonce was used already."
            )
        self._nonces[key] = now

    def _admit(self, access_key_id: str, action: str, now: float) -> bool:
        """Sliding-window quota per key and action; only admitted calls take a slot."""
        limit = FIXED_QUOTAS.get(action, self.qps)
        if limit <= 0 or math.isinf(limit):
            return True
        span = max(1.0, 1.0 / limit)  # under 1 qps: one call per 1/qps seconds
        allowed = max(1, math.floor(limit * span + 1e-9))
        window = self._windows.setdefault((access_key_id, action), deque())
        while window and window[0] <= now - span:
            window.popleft()
        if len(window) >= allowed:
            return False
        window.append(now)
        return True

    async def _pause(self, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)

    # --- control paths (no signature: for people driving the emulator by hand) ----------

    async def _handle_calls(self, request: web.Request) -> web.Response:
        return web.json_response([asdict(c) for c in self.calls])

    async def _handle_jobs(self, request: web.Request) -> web.Response:
        return web.json_response(self.jobs)

    async def _handle_set_status(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        try:
            status = (await request.json())["status"]
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": 'expected JSON {"status": "..."}'}, status=400)
        if job_id not in self.jobs:
            return web.json_response({"error": f"no job {job_id}"}, status=404)
        try:
            self.set_status(job_id, status)
        except ValueError as err:
            return web.json_response({"error": str(err)}, status=400)
        return web.json_response(self.jobs[job_id])


def _json(
    status: int, body: dict[str, Any], rid: str, headers: dict[str, str] | None = None
) -> web.Response:
    # Serialised now, so the answer reflects the job as it was when the call arrived.
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type="application/json",
        headers={"x-acs-request-id": rid, **(headers or {})},
    )


def _throttled(headers: dict[str, str] | None = None) -> GatewayError:
    # HTTP 400, as Alibaba's gateway and its SDK test servers answer flow control.
    return GatewayError(
        400, "Throttling.User", "Request was denied due to user flow control.", headers
    )


def _instance_not_found() -> BusinessError:
    return BusinessError("iot.system.InstanceNotFound", "The specified instance does not exist.")


def _job_not_found() -> BusinessError:
    # No public source names the real code for an unknown JobId; this one is our guess.
    return BusinessError("iot.ota.JobNotFound", "The OTA job does not exist.")
