"""The gateway's request path: signature, nonce replay, quotas, scripted faults, error bodies.

Order of checks for each API call (``POST /`` or ``GET /``, parameters in the query):
signature (verify.py) -> nonce replay -> Version -> Action -> scripted failure (fail_next)
-> quota -> required parameters -> the action's handler. Only calls that pass the
signature and find their action reach the quota, and a throttled call does not take a
slot in the window: the real gateway rejects it before it runs, so it consumes nothing.
Scripted failures stand in for the gateway failing, so they take no slot either (except
"slow", which is a normal answer delivered late).

Gateway behaviours and their sources (the reference is the team's reference notes,
alibaba-iot-ota.md; signature checks are listed in verify.py):
gateway errors, 4xx and 5xx, are JSON {RequestId, HostId, Code, Message, Recommend}
(reference "Errors"); IoT business errors are {RequestId, Success: false, Code,
ErrorMessage}, under HTTP 200 or, scripted, 4xx/5xx (reference "Errors"); throttling is
HTTP 400 Throttling.User with ``x-acs-retry-after`` in milliseconds (reference "Errors"
for the header, Alibaba's SDK tests in aliyun/darabonba-openapi for the unit); a nonce
seen again while its request could still verify is SignatureNonceUsed (reference
"Errors"). Every answer carries ``x-acs-request-id``.
"""

from __future__ import annotations

import heapq
import json
import math
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.emulator.actions import ACTIONS, ActionSpec
from bot.emulator.state import BusinessError, OtaState
from bot.emulator.verify import (
    API_VERSION,
    WINDOW_SECONDS,
    GatewayError,
    Verified,
    WireRequest,
    missing,
    verify,
)

FAILURE_KINDS = (
    "throttle",
    "server_error",
    "internal",
    "malformed",
    "business",
    "slow",
    "reset",
    "garbled",
)
# "garbled": the action runs, then its answer cannot be read (JSON nested deeper than
# any parser takes), as a broken proxy or gateway might send: a write is then carried out
# although the caller cannot tell.
GARBLED_DEPTH = 100_000
SLOW_SECONDS = 30.0
# Per-action quotas that do not follow the ``qps`` attribute (reference: quotas section;
# ReupgradeOTATask's 20/s is from Alibaba's ReupgradeOTATask page). ``qps`` = 0 does not
# lift these: they stand for the account's quota, not for the emulator's setting.
FIXED_QUOTAS = {"QueryOTAFirmware": 20.0, "CancelOTATaskByJob": 5.0, "ReupgradeOTATask": 20.0}
# The gateway errors fail_next can script: kind -> (HTTP status, Code, Message).
SCRIPTED_GATEWAY_ERRORS = {
    "server_error": (
        503,
        "ServiceUnavailable",
        "The request has failed due to a temporary failure of the server.",
    ),
    "internal": (
        500,
        "InternalError",
        "The request processing has failed due to some unknown error, exception or failure.",
    ),
}
# The throttling hint header (reference "Errors"), in milliseconds (see fail_next).
RETRY_AFTER = "x-acs-retry-after"


@dataclass
class _Script:
    kind: str
    remaining: int
    action: str | None
    retry_after: float | None
    status: int | None = None


@dataclass
class Answer:
    """A response to send after ``delay`` seconds, with the status and Code to log."""

    response: web.StreamResponse | None  # None: close the connection without answering
    delay: float
    status: int
    code: str | None
    scripted: str | None = None


def request_id() -> str:
    return str(uuid.uuid4()).upper()


class Gateway:
    """What stands between a request and the actions; IotEmulator holds one.

    ``qps`` applies to QueryOTAJob, ListOTATaskByJob and every action without a fixed
    quota (QueryOTAFirmware and ReupgradeOTATask 20/s, CancelOTATaskByJob 5/s: these hold
    even with ``qps`` 0); 0 or math.inf disables it. ``latency`` delays every answer.
    """

    def __init__(
        self,
        state: OtaState,
        *,
        credentials: dict[str, str],
        sts_tokens: dict[str, str],
        qps: float,
        latency: float,
    ) -> None:
        self.state = state
        self.credentials = credentials
        self.sts_tokens = sts_tokens
        self.qps = qps
        self.latency = latency
        self._scripts: list[_Script] = []
        self._windows: dict[tuple[str, str], deque[float]] = {}
        # (AccessKeyId, nonce) -> when it may be forgotten, and the same as a min-heap.
        self._nonces: dict[tuple[str, str], float] = {}
        self._nonce_expiry: list[tuple[float, tuple[str, str]]] = []

    def fail_next(
        self,
        kind: str,
        *,
        count: int = 1,
        action: str | None = None,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        """Script failures for the next ``count`` well-signed calls (of ``action`` if given).

        ``retry_after`` (throttle only) is in seconds; it is sent as ``x-acs-retry-after`` in
        milliseconds, the unit Alibaba's SDKs read it in (aliyun/darabonba-openapi,
        csharp/OpenApiClientUnitTests/UtilsThrottlingTest.cs: "2000" -> 2000 ms); None
        sends no header. ``status`` (business only, default 200) is the HTTP status of the
        ``Success: false`` answer: the reference ("Errors") has IoT business errors both
        under HTTP 200 and under 4xx/5xx. Scripts queue in order.
        """
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {kind!r}; expected one of {FAILURE_KINDS}")
        if retry_after is not None and kind != "throttle":
            raise ValueError("retry_after applies to the throttle kind only")
        if status is not None and (kind != "business" or not 200 <= status <= 599):
            raise ValueError("status applies to the business kind only, as 200..599")
        if count > 0:
            self._scripts.append(_Script(kind, count, action, retry_after, status))

    def reset(self) -> None:
        """Forget the scripted failures, the quota windows and the nonces seen."""
        self._scripts.clear()
        self._windows.clear()
        self._nonces.clear()
        self._nonce_expiry.clear()

    def answer(self, wire: WireRequest, host: str, arrived: float) -> Answer:
        """The answer to one API call, sent to ``host``, that arrived at ``arrived``."""
        rid = request_id()
        try:
            verified = verify(
                wire, credentials=self.credentials, sts_tokens=self.sts_tokens, now=arrived
            )
            # Nonce replay after the signature: a forged request cannot burn a nonce.
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
    ) -> Answer:
        wait = self._admit(verified.access_key_id, verified.action, arrived)
        if wait is not None:
            # The reference ("Errors"): a throttling answer may carry x-acs-retry-after,
            # how long to wait; here the time until the window frees a slot, in ms.
            raise _throttled({RETRY_AFTER: _milliseconds(wait)})
        for name in spec.required:
            if not verified.params.get(name):
                raise missing(name)
        try:
            data = spec.handler(self.state, verified.params)
        except BusinessError as err:
            return self._business_error(err, rid)
        if spec.envelope:
            body = {"RequestId": rid, "Success": True, **data}
        else:
            body = {"RequestId": rid, "Success": True, "Data": data}
        return Answer(_json(200, body, rid), self.latency, 200, None)

    def _scripted(
        self,
        script: _Script,
        verified: Verified,
        spec: ActionSpec,
        host: str,
        rid: str,
        arrived: float,
    ) -> Answer:
        kind = script.kind
        answer: Answer
        if kind == "throttle":
            headers = {}
            if script.retry_after is not None:
                headers[RETRY_AFTER] = str(round(script.retry_after * 1000))
            answer = self._gateway_error(_throttled(headers), host, rid)
        elif kind in SCRIPTED_GATEWAY_ERRORS:
            answer = self._gateway_error(GatewayError(*SCRIPTED_GATEWAY_ERRORS[kind]), host, rid)
        elif kind == "business":
            answer = self._business_error(
                BusinessError("iot.system.SystemException", "A system exception occurred."),
                rid,
                script.status or 200,
            )
        elif kind == "malformed":
            page = "<html><head><title>502 Bad Gateway</title></head><body>Tengine</body></html>"
            response = web.Response(status=200, text=page, content_type="text/html")
            answer = Answer(response, self.latency, 200, "Emulator.Malformed")
        elif kind == "garbled":
            self._run_answered(verified, spec, host, rid, arrived)  # the action still runs
            body = '{"RequestId": "' + rid + '", "Data": ' + "[" * GARBLED_DEPTH
            body += "]" * GARBLED_DEPTH + "}"
            response = web.Response(status=200, text=body, content_type="application/json")
            answer = Answer(response, self.latency, 200, "Emulator.Garbled")
        elif kind == "slow":
            answer = self._run_answered(verified, spec, host, rid, arrived)
            answer.delay = SLOW_SECONDS
        else:  # reset
            answer = Answer(None, self.latency, 0, "Emulator.Reset")
        answer.scripted = kind
        return answer

    def _run_answered(
        self, verified: Verified, spec: ActionSpec, host: str, rid: str, arrived: float
    ) -> Answer:
        """_run, with a gateway error (throttled, a parameter missing) as its answer."""
        try:
            return self._run(verified, spec, host, rid, arrived)
        except GatewayError as err:
            return self._gateway_error(err, host, rid)

    def _gateway_error(self, err: GatewayError, host: str, rid: str) -> Answer:
        # Gateway errors, 4xx and 5xx alike: JSON {RequestId, HostId, Code, Message,
        # Recommend} (reference "Errors"); HostId is the endpoint host the call was sent to.
        body = {
            "RequestId": rid,
            "HostId": host,
            "Code": err.code,
            "Message": err.message,
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={err.code}&product=Iot&requestId={rid}",
        }
        return Answer(_json(err.status, body, rid, err.headers), self.latency, err.status, err.code)

    def _business_error(self, err: BusinessError, rid: str, status: int = 200) -> Answer:
        # IoT business errors: {RequestId, Success: false, Code, ErrorMessage} (ErrorMessage,
        # not Message), under HTTP 200 or 4xx/5xx (reference "Errors").
        body = {"RequestId": rid, "Success": False, "Code": err.code, "ErrorMessage": err.message}
        return Answer(_json(status, body, rid), self.latency, status, err.code)

    def _take_script(self, action: str) -> _Script | None:
        for script in self._scripts:
            if script.action is None or script.action == action:
                script.remaining -= 1
                if script.remaining <= 0:
                    self._scripts.remove(script)
                return script
        return None

    def _use_nonce(self, verified: Verified, now: float) -> None:
        """SignatureNonceUsed for a nonce seen (with this AccessKeyId) while still usable.

        Reference "Errors" (SignatureNonceUsed) and Alibaba's V2 signature doc (the nonce
        "prevents replay attacks"). A replay carries the same signed timestamp, which stays
        acceptable until timestamp + WINDOW_SECONDS (verify.check_timestamp), so the nonce is
        kept until then, or WINDOW_SECONDS after arrival if later: a client clock running
        ahead cannot outlive the memory of its nonce.
        """
        while self._nonce_expiry and self._nonce_expiry[0][0] <= now:
            _, old = heapq.heappop(self._nonce_expiry)
            if self._nonces.get(old, math.inf) <= now:
                del self._nonces[old]
        key = (verified.access_key_id, verified.nonce)
        if key in self._nonces:
            raise GatewayError(
                400, "SignatureNonceUsed", "Specified signature nonce was used already."
            )
        expiry = max(now, verified.timestamp) + WINDOW_SECONDS
        self._nonces[key] = expiry
        heapq.heappush(self._nonce_expiry, (expiry, key))

    def _admit(self, access_key_id: str, action: str, now: float) -> float | None:
        """Sliding-window quota per key and action; only admitted calls take a slot.

        None: admitted. Otherwise the seconds until the oldest call leaves the window.
        """
        limit = FIXED_QUOTAS.get(action, self.qps)
        if limit <= 0 or math.isinf(limit):
            return None
        span = max(1.0, 1.0 / limit)  # under 1 qps: one call per 1/qps seconds
        allowed = max(1, math.floor(limit * span + 1e-9))
        window = self._windows.setdefault((access_key_id, action), deque())
        while window and window[0] <= now - span:
            window.popleft()
        if len(window) >= allowed:
            return window[0] + span - now
        window.append(now)
        return None


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


def _milliseconds(seconds: float) -> str:
    """An ``x-acs-retry-after`` value: whole milliseconds, at least 1."""
    return str(max(1, math.ceil(seconds * 1000)))


def _throttled(headers: dict[str, str] | None = None) -> GatewayError:
    # HTTP 400 with Code Throttling.*, as Alibaba's SDK test servers answer flow control
    # (aliyun/darabonba-openapi, csharp/OpenApiClientUnitTests/Mock/MockHttpServer.cs).
    return GatewayError(
        400, "Throttling.User", "Request was denied due to user flow control.", headers
    )
