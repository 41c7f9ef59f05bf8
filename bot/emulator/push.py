"""Server-side subscription: OTA status messages pushed over STOMP, as Python 3 clients get them.

IoT Platform pushes subscribed messages to consumer groups over AMQP 1.0; its documented
Python 3 client is stomp.py on port 61614 over TLS, with the AMQP user name and password as
STOMP ``login`` and ``passcode``, subscribing to ``/topic/#``. PushServer is that STOMP
endpoint, on asyncio: frames, heart-beats and TLS are real, so a stomp.py client connects
to it exactly as it would to Alibaba Cloud.

Behaviours modelled, one a line, each with its source (legend below the list):

- login ``clientId|authMode=aksign,signMethod=..,timestamp=<ms>,authId=<AccessKeyId>,
  iotInstanceId=..,consumerGroupId=..|`` (parameters in any order) [AMQP; PY3]
- passcode base64(HMAC-<signMethod>(secret, "authId=<AccessKeyId>&timestamp=<ms>")),
  signMethod hmacmd5, hmacsha1 or hmacsha256 [AMQP; PY3]
- clientId at most 64 characters [AMQP, clientId]
- authMode=ststoken with securityToken=<token> for STS credentials (a RAM role), the token
  checked as the API gateway checks it (verify.check_security_token) [AMQP, RAM role user
  name: ``authMode=ststoken,securityToken=${SecurityToken}``]
- a refused connection gets ERROR (``message`` header) and is closed [STOMP, ERROR]
- no CONNECT within 15 s of the TCP connection: closed [LIMITS, authentication timeout]
- no SUBSCRIBE within 15 s of CONNECTED: closed [AMQP, receiver link within 15 s]
- at most 64 clients per consumer group [GROUPS; AMQP Limits]
- one subscription per connection; SEND is refused [AMQP: one receiver link, no sender link]
- SUBSCRIBE destination ``/topic/#``, ``id`` required, any ack mode; ACK/NACK ignored [PY3]
- each message goes to one client of each consumer group; every group gets every message
  [GROUPS: "received by only one of the consumers in that group"; Alibaba picks at random,
  the emulator in turn (round-robin) so tests can count]
- messages to a group with no subscribed client wait (the last ``backlog``, default 1,000)
  and go to the next client that subscribes [LIMITS, failed push retry policy: kept in an
  accumulation queue; how long and how many is not modelled]
- version negotiated from accept-version (1.2, else 1.1; neither: ERROR with ``version``)
  [STOMP, Protocol Negotiation]
- heart-beats: CONNECTED ``heart-beat:sx,sy``; EOLs every max(sx, cy) ms; a client that
  owes heart-beats every max(cx, sy) ms and is silent for twice that is closed [STOMP,
  Heart-beating]
- header values escaped (``\\\\``, ``\\n``, ``\\r``, ``\\c``) except in CONNECT and
  CONNECTED; repeated headers: the first counts [STOMP, Value Encoding, Repeated Header
  Entries]
- ``receipt`` on any frame after CONNECT gets RECEIPT; DISCONNECT's RECEIPT comes before the
  close [STOMP, RECEIPT, DISCONNECT]
- MESSAGE: destination, subscription, message-id (and ack, for client ack modes, in 1.2),
  then ``topic``, ``messageId``, ``generateTime`` (ms), content-type application/json,
  content-length, JSON body [STOMP, MESSAGE; ref Push for the properties]

Legend: [ref Push] is section "Push instead of polling" of the team's reference notes,
alibaba-iot-ota.md; [AMQP] Alibaba's "Connect an AMQP client to IoT Platform",
https://www.alibabacloud.com/help/en/iot/developer-reference/connect-an-amqp-client-to-iot-platform
(Chinese: https://help.aliyun.com/document_detail/142489.html); [PY3] Alibaba's Python 3
example,
https://www.alibabacloud.com/help/en/iot/developer-reference/connect-a-client-to-iot-platform-by-using-the-sdk-for-python
;
[GROUPS] "Manage consumer groups",
https://www.alibabacloud.com/help/en/iot/user-guide/manage-consumer-groups ; [LIMITS]
"Limits on server-side subscriptions",
https://www.alibabacloud.com/help/en/iot/user-guide/limits-on-server-side-subscriptions ;
[STOMP] the STOMP 1.2 specification, https://stomp.github.io/stomp-specification-1.2.html .

Not published by Alibaba, the emulator's choices: the timestamp window (±15 minutes, the
API gateway's, verify.WINDOW_SECONDS); a second connection with a clientId already
connected replaces the first (ERROR, then closed), as MQTT brokers do (MQTT 3.1.1, 3.1.4
"the Server MUST disconnect the existing Client"); the property header names over STOMP
(``topic``, ``messageId``, ``generateTime``, as the AMQP application properties are
named); every ERROR text; the STOMP version and the heart-beat defaults (sx 1000 ms,
sy 0). Not modelled: encode=base64 (refused), ACK timeouts and redelivery (a message goes
out once unless a fault says otherwise), per-product subscriptions (every group of the
job's instance gets every message), unknown instance IDs (accepted).

Nothing here imports the client's code; the signature check is written from the docs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bot.emulator.state import OtaEvent
from bot.emulator.verify import WINDOW_SECONDS, GatewayError, check_security_token

log = logging.getLogger(__name__)

DESTINATION = "/topic/#"
SUPPORTED_VERSIONS = ("1.2", "1.1")  # best first
SIGN_METHODS = {"hmacmd5": hashlib.md5, "hmacsha1": hashlib.sha1, "hmacsha256": hashlib.sha256}
REQUIRED_LOGIN_PARAMS = ("authMode", "signMethod", "timestamp", "authId", "consumerGroupId")
MAX_CLIENT_ID = 64  # [AMQP, clientId]
MAX_GROUP_CLIENTS = 64  # [GROUPS; AMQP Limits]
LINK_TIMEOUT = 15.0  # seconds to CONNECT, then to SUBSCRIBE [LIMITS; AMQP]
BACKLOG = 1000
MAX_FRAME_BYTES = 1 << 20
FAULT_KINDS = ("drop", "silence", "resume", "duplicate", "delay", "reorder", "corrupt")
CORRUPT_MODES = ("not_json", "missing_fields")
# The fields a "missing_fields" corrupt message loses: the ones a consumer keys on.
CORRUPT_DROPS = ("jobId", "status")
HEARTBEAT = b"\n"

_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", ":": "\\c"}
_UNESCAPES = {"\\\\": "\\", "\\n": "\n", "\\r": "\r", "\\c": ":"}
_CLOSE = object()  # in a client's outbox: close once everything before it is written


class ProtocolError(Exception):
    """A frame the server cannot accept: answered with ERROR, then the connection closes."""


class AuthError(Exception):
    """A CONNECT the server refuses; the message never holds the secret or the passcode."""


@dataclass(frozen=True)
class Frame:
    command: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass(frozen=True)
class Login:
    client_id: str
    access_key_id: str
    consumer_group_id: str
    instance_id: str | None
    sign_method: str
    timestamp_ms: int
    security_token: str | None


@dataclass(frozen=True)
class SentMessage:
    """One MESSAGE frame as written to a client: ``message_id`` is Alibaba's messageId
    (a duplicate repeats it), ``frame_id`` the frame's own STOMP message-id."""

    group: str
    client_id: str
    message_id: str
    frame_id: str
    topic: str
    body: str
    at: float


@dataclass(frozen=True)
class PushClient:
    """A connected (authenticated) client; ``unsent``: its MESSAGE frames not yet written."""

    client_id: str
    group: str
    instance_id: str | None
    subscribed: bool
    unsent: int


@dataclass
class _Script:
    remaining: int
    seconds: float
    mode: str


@dataclass(frozen=True)
class _Message:
    message_id: str
    topic: str
    body: str
    generate_time: int
    instance_id: str | None


# --- frames -------------------------------------------------------------------------


def escape(value: str) -> str:
    return "".join(_ESCAPES.get(c, c) for c in value)


def unescape(value: str) -> str:
    """Undo STOMP 1.2 escaping; any other backslash sequence is a fatal error [STOMP]."""
    if "\\" not in value:
        return value
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\":
            pair = value[i : i + 2]
            if pair not in _UNESCAPES:
                raise ProtocolError(f"undefined escape sequence {pair!r} in a header")
            out.append(_UNESCAPES[pair])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def encode_frame(
    command: str, headers: list[tuple[str, str]], body: bytes = b"", *, escaped: bool = True
) -> bytes:
    lines = [command]
    for name, value in headers:
        lines.append(f"{escape(name)}:{escape(value)}" if escaped else f"{name}:{value}")
    return ("\n".join(lines) + "\n\n").encode() + body + b"\x00"


class FrameParser:
    """Client bytes -> frames; EOLs between frames are heart-beats and are skipped.

    ``feed`` the bytes received, then call ``next`` until it returns None (no whole frame
    yet); it raises ProtocolError at a frame it cannot read, after the good ones before it.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next(self) -> Frame | None:
        frame = self._parse()
        if frame is None and len(self._buffer) > MAX_FRAME_BYTES:
            raise ProtocolError(f"frame larger than {MAX_FRAME_BYTES} bytes")
        return frame

    def _parse(self) -> Frame | None:
        buf = self._buffer
        start = 0
        while start < len(buf) and buf[start] in b"\r\n":
            start += 1
        del buf[:start]
        lines: list[str] = []
        pos = 0
        while True:
            end = buf.find(b"\n", pos)
            if end < 0:
                return None
            line = bytes(buf[pos:end]).removesuffix(b"\r")
            pos = end + 1
            if not line:
                break
            try:
                lines.append(line.decode())
            except UnicodeDecodeError:
                raise ProtocolError("frame headers are not UTF-8") from None
        command, raw_headers = lines[0], lines[1:]
        raw: dict[str, str] = {}
        for line in raw_headers:
            name, colon, value = line.partition(":")
            if not colon:
                raise ProtocolError(f"header line without ':' in {command}")
            raw.setdefault(name, value)  # the first of repeated headers counts [STOMP]
        length = raw.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise ProtocolError("content-length is not a number")
            end = pos + int(length)
            if len(buf) < end + 1:
                return None
            if buf[end] != 0:
                raise ProtocolError("frame body longer than its content-length")
        else:
            end = buf.find(b"\x00", pos)
            if end < 0:
                return None
        body = bytes(buf[pos:end])
        del buf[: end + 1]
        if command in ("CONNECT", "STOMP"):  # these are not escaped [STOMP, Value Encoding]
            headers = raw
        else:
            headers = {unescape(k): unescape(v) for k, v in raw.items()}
        return Frame(command, headers, body)


# --- authentication -----------------------------------------------------------------


def parse_login(text: str | None) -> dict[str, str]:
    """``clientId|k=v,...|`` -> {"clientId": ..., k: v ...}; AuthError if malformed."""
    usage = "login must be clientId|authMode=aksign,signMethod=...,timestamp=...,authId=...|"
    if not text:
        raise AuthError(f"no login header: {usage}")
    client_id, bar, rest = text.partition("|")
    if not bar or not rest.endswith("|") or "|" in rest[:-1]:
        raise AuthError(f"malformed login: {usage}")
    if not client_id:
        raise AuthError("malformed login: no clientId before '|'")
    if len(client_id) > MAX_CLIENT_ID:
        raise AuthError(f"clientId is longer than {MAX_CLIENT_ID} characters")
    params = {"clientId": client_id}
    for part in rest[:-1].split(","):
        name, eq, value = part.partition("=")
        if not eq or not name:
            raise AuthError(f"malformed login parameter {part!r}: expected name=value")
        if name in params:
            raise AuthError(f"login parameter {name} is given twice")
        params[name] = value
    return params


def check_login(
    login: str | None,
    passcode: str | None,
    *,
    credentials: Mapping[str, str],
    sts_tokens: Mapping[str, str],
    now: float,
    window: float = WINDOW_SECONDS,
) -> Login:
    """The login, if it names a known AccessKey and the passcode is its signature.

    Checks in the API gateway's order: format, timestamp window, AccessKeyId, signature,
    STS token.
    """
    params = parse_login(login)
    missing = [name for name in REQUIRED_LOGIN_PARAMS if not params.get(name)]
    if missing:
        raise AuthError(f"login lacks {', '.join(missing)}")
    mode = params["authMode"]
    if mode not in ("aksign", "ststoken"):
        raise AuthError(f"authMode {mode!r} is not supported: aksign, or ststoken for STS")
    if mode == "ststoken" and not params.get("securityToken"):
        raise AuthError("authMode ststoken needs securityToken=<the STS token>")
    if "encode" in params:
        raise AuthError("the emulator does not model encode=base64 bodies")
    method = params["signMethod"]
    if method not in SIGN_METHODS:
        raise AuthError(f"signMethod {method!r} is not one of {', '.join(SIGN_METHODS)}")
    stamp = params["timestamp"]
    if not (stamp.isascii() and stamp.isdigit()):
        raise AuthError("timestamp must be milliseconds since the epoch")
    if abs(int(stamp) / 1000 - now) > window:
        raise AuthError(f"timestamp is more than {window / 60:g} minutes from the server clock")
    access_key_id = params["authId"]
    secret = credentials.get(access_key_id)
    if secret is None:
        raise AuthError(f"unknown AccessKeyId {access_key_id!r}")
    if not passcode:
        raise AuthError("no passcode header")
    signed = f"authId={access_key_id}&timestamp={stamp}"
    digest = hmac.new(secret.encode(), signed.encode(), SIGN_METHODS[method]).digest()
    if not hmac.compare_digest(base64.b64encode(digest), passcode.encode()):
        raise AuthError(
            f"passcode does not match: expected base64 {method} of {signed!r} "
            "keyed with the AccessKey secret"
        )
    token = params.get("securityToken") or None
    try:
        check_security_token(sts_tokens, access_key_id, token)
    except GatewayError as err:
        raise AuthError(f"{err.code}: {err.message}") from None
    return Login(
        client_id=params["clientId"],
        access_key_id=access_key_id,
        consumer_group_id=params["consumerGroupId"],
        instance_id=params.get("iotInstanceId") or None,
        sign_method=method,
        timestamp_ms=int(stamp),
        security_token=token,
    )


# --- one connection -----------------------------------------------------------------


@dataclass(eq=False)
class _Client:
    server: PushServer
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    login: Login | None = None
    version: str = "1.2"
    subscription: str | None = None
    ack_mode: str = "auto"
    send_every: float = 0.0  # seconds between our heart-beats (0: none)
    expect_every: float = 0.0  # seconds between the client's heart-beats (0: none)
    last_received: float = 0.0
    last_sent: float = 0.0
    unsent: int = 0
    closing: bool = False
    outbox: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    timer: asyncio.TimerHandle | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def key(self) -> tuple[str | None, str]:
        assert self.login is not None
        return (self.login.instance_id, self.login.consumer_group_id)

    def send(self, command: str, headers: list[tuple[str, str]], body: bytes = b"") -> None:
        if not self.closing:
            self.outbox.put_nowait((encode_frame(command, headers, body), None))

    def refuse(self, message: str, detail: str = "", **extra: str) -> None:
        """ERROR, then close once it is written [STOMP, ERROR]; nothing after it is read."""
        if self.closing:
            return
        body = (detail or message).encode()
        headers = [("message", message), *extra.items()]
        headers += [("content-type", "text/plain"), ("content-length", str(len(body)))]
        self.send("ERROR", headers, body)
        self.close_after_flush()

    def close_after_flush(self) -> None:
        if not self.closing:
            self.closing = True
            self.outbox.put_nowait(_CLOSE)
            self.server._forget(self)

    def abort(self) -> None:
        """Close now, unwritten frames and all, as a dropped network connection would."""
        self.closing = True
        self.server._forget(self)
        self.writer.transport.abort()

    def arm(self, seconds: float, reason: str) -> None:
        self.disarm()
        if seconds > 0:
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(seconds, self._expire, seconds, reason)

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expire(self, seconds: float, reason: str) -> None:
        if self.server.silenced:  # a silent server closes nothing
            self.arm(seconds, reason)
        else:
            self.refuse(reason)

    async def write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            item = await self.outbox.get()
            await self.server._audible.wait()
            if item is _CLOSE:
                with contextlib.suppress(ConnectionError, ssl.SSLError):
                    await self.writer.drain()
                self.writer.close()
                return
            data, record = item
            self.writer.write(data)
            self.last_sent = loop.time()
            if record is not None:
                self.unsent -= 1
                self.server._record(replace(record, at=self.server.clock()))
            await self.writer.drain()

    async def keepalive(self) -> None:
        """Send heart-beats when due; close a client silent for twice its interval."""
        loop = asyncio.get_running_loop()
        while not self.closing:
            await self.server._audible.wait()
            now = loop.time()
            waits = []
            if self.send_every:
                due = self.last_sent + self.send_every
                if now >= due:
                    self.outbox.put_nowait((HEARTBEAT, None))
                    self.last_sent = now  # the writer stamps it again when it goes out
                    due = now + self.send_every
                waits.append(due - now)
            if self.expect_every:
                limit = self.last_received + 2 * self.expect_every
                if now > limit:
                    log.info("push: %s sent no heart-beat in time, closing", self.name)
                    self.abort()
                    return
                waits.append(limit - now)
            if not waits:
                return
            await asyncio.sleep(min(waits))

    @property
    def name(self) -> str:
        return self.login.client_id if self.login else str(self.writer.get_extra_info("peername"))


# --- the server ---------------------------------------------------------------------


class PushServer:
    """A STOMP server that pushes OTA status messages to consumer groups.

    ``credentials`` and ``sts_tokens`` are read at each CONNECT (the emulator passes its
    gateway's, so both sides accept the same keys). ``heartbeat_send_ms`` (sx) and
    ``heartbeat_receive_ms`` (sy), ``backlog``, ``link_timeout`` and ``max_group_clients``
    may be changed between connections. ``sent`` records every MESSAGE frame written.
    """

    def __init__(
        self,
        *,
        credentials: Callable[[], Mapping[str, str]],
        sts_tokens: Callable[[], Mapping[str, str]] = dict,
        clock: Callable[[], float] = time.time,
        heartbeat_send_ms: int = 1000,
        heartbeat_receive_ms: int = 0,
        backlog: int = BACKLOG,
        link_timeout: float = LINK_TIMEOUT,
        max_group_clients: int = MAX_GROUP_CLIENTS,
        timestamp_window: float = WINDOW_SECONDS,
    ) -> None:
        self.credentials = credentials
        self.sts_tokens = sts_tokens
        self.clock = clock
        self.heartbeat_send_ms = heartbeat_send_ms
        self.heartbeat_receive_ms = heartbeat_receive_ms
        self.backlog = backlog
        self.link_timeout = link_timeout
        self.max_group_clients = max_group_clients
        self.timestamp_window = timestamp_window
        self.url = ""
        self.sent: list[SentMessage] = []
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sockets: set[_Client] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._clients: dict[str, _Client] = {}  # clientId -> its (authenticated) connection
        self._groups: dict[tuple[str | None, str], deque[_Message]] = {}  # -> backlog
        self._turns: dict[tuple[str | None, str], int] = {}
        self._audible = asyncio.Event()
        self._audible.set()
        self._changed = asyncio.Event()
        self._message_ids = itertools.count(int(clock() * 1000) * 1000)
        self._frame_ids = itertools.count(1)
        self._faults: dict[str, _Script] = {}
        self._held: list[_Message] = []  # reorder: waiting to go out reversed

    # --- lifecycle ----------------------------------------------------------------------

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> str:
        """Listen and return ``stomp://host:port`` (``stomp+ssl://`` with TLS)."""
        if self._server is not None:
            return self.url
        self._loop = asyncio.get_running_loop()
        self._audible.set()
        self._server = await asyncio.start_server(self._serve, host, port, ssl=ssl_context)
        bound = self._server.sockets[0].getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        scheme = "stomp+ssl" if ssl_context is not None else "stomp"
        self.url = f"{scheme}://{shown}:{bound}"
        return self.url

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        self._audible.set()
        for client in list(self._sockets):
            client.abort()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=2.0)
        await self._server.wait_closed()
        self._server = None
        self.url = ""
        self._notify()

    @property
    def port(self) -> int | None:
        return None if self._server is None else self._server.sockets[0].getsockname()[1]

    # --- publishing ---------------------------------------------------------------------

    def publish_event(self, event: OtaEvent) -> None:
        """An OtaState listener: push the event to every consumer group of its instance."""
        self.publish(event.topic, event.payload, instance_id=event.instance_id)

    def publish(
        self, topic: str, payload: Mapping[str, Any], *, instance_id: str | None = None
    ) -> str:
        """Queue a message for every consumer group of ``instance_id``; return its messageId.

        Never blocks and never raises for want of clients: delivery happens on the server's
        event loop (this may be called from any thread). Scripted faults are applied here,
        in publish order. Before ``start`` nothing is kept.
        """
        message = _Message(
            message_id=str(next(self._message_ids)),
            topic=topic,
            body=json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
            generate_time=int(self.clock() * 1000),
            instance_id=instance_id,
        )
        if self._loop is None or self._server is None:
            return message.message_id
        corrupt = self._take("corrupt")
        if corrupt is not None:
            message = _corrupt(message, payload, corrupt.mode)
        copies = [message, message] if self._take("duplicate") else [message]
        delayed = self._take("delay")
        delay = delayed.seconds if delayed is not None else 0.0
        if self._take("reorder"):
            self._held.extend(copies)
            if "reorder" in self._faults:
                return message.message_id
            copies, self._held = self._held[::-1], []
        self._loop.call_soon_threadsafe(self._schedule, copies, delay)
        return message.message_id

    def _schedule(self, messages: list[_Message], delay: float) -> None:
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._route_all, messages)
        else:
            self._route_all(messages)

    def _route_all(self, messages: list[_Message]) -> None:
        if self._server is None:
            return
        for message in messages:
            self._route(message)
        self._notify()

    def _route(self, message: _Message) -> None:
        for key, backlog in self._groups.items():
            if key[0] != message.instance_id:
                continue
            members = [
                c for c in self._clients.values() if c.key == key and c.subscription is not None
            ]
            if not members:
                backlog.append(message)
                continue
            turn = self._turns.get(key, 0)
            self._turns[key] = turn + 1
            self._deliver(members[turn % len(members)], message)

    def _deliver(self, client: _Client, message: _Message) -> None:
        assert client.login is not None and client.subscription is not None
        frame_id = str(next(self._frame_ids))
        body = message.body.encode()
        headers = [
            ("destination", DESTINATION),
            ("subscription", client.subscription),
            ("message-id", frame_id),
        ]
        if client.ack_mode != "auto" and client.version == "1.2":
            headers.append(("ack", frame_id))  # [STOMP, MESSAGE]
        headers += [
            ("topic", message.topic),
            ("messageId", message.message_id),
            ("generateTime", str(message.generate_time)),
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
        ]
        record = SentMessage(
            group=client.login.consumer_group_id,
            client_id=client.login.client_id,
            message_id=message.message_id,
            frame_id=frame_id,
            topic=message.topic,
            body=message.body,
            at=self.clock(),
        )
        client.unsent += 1
        client.outbox.put_nowait((encode_frame("MESSAGE", headers, body), record))

    # --- faults and records ------------------------------------------------------------

    def fault(
        self, kind: str, *, count: int = 1, seconds: float = 0.0, mode: str = "not_json"
    ) -> None:
        """Script a push failure.

        ``drop``: close every connection now, as a network failure would (no ERROR).
        ``silence``: write nothing (no heart-beats, no frames, which wait) and close nothing
        until ``resume``. The next ``count`` published messages: ``duplicate`` (each goes
        out twice, same messageId), ``delay`` (each ``seconds`` late, so later ones pass
        it), ``reorder`` (held until ``count`` have been published, then sent newest
        first), ``corrupt`` (``mode`` "not_json": a truncated body; "missing_fields":
        JSON without jobId and status). A new script of a kind replaces the pending one.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {FAULT_KINDS}")
        if seconds and kind != "delay":
            raise ValueError("seconds applies to the delay fault only")
        if mode != "not_json" and kind != "corrupt":
            raise ValueError("mode applies to the corrupt fault only")
        if mode not in CORRUPT_MODES:
            raise ValueError(f"unknown corrupt mode {mode!r}; expected one of {CORRUPT_MODES}")
        if kind == "drop":
            for client in list(self._sockets):
                client.abort()
            self._notify()
        elif kind == "silence":
            self._audible.clear()
        elif kind == "resume":
            if not self._audible.is_set() and self._loop is not None:
                now = self._loop.time()
                for client in self._sockets:
                    client.last_received = now  # the silence was ours, not the client's
            self._audible.set()
        elif count > 0:
            if kind == "reorder" and self._held:
                raise ValueError("a reorder is still collecting messages")
            self._faults[kind] = _Script(count, seconds, mode)

    @property
    def silenced(self) -> bool:
        return not self._audible.is_set()

    def clients(self) -> list[PushClient]:
        """The connected (authenticated) clients, in the order they connected."""
        return [
            PushClient(
                client_id=c.login.client_id,
                group=c.login.consumer_group_id,
                instance_id=c.login.instance_id,
                subscribed=c.subscription is not None,
                unsent=c.unsent,
            )
            for c in self._clients.values()
            if c.login is not None
        ]

    async def wait_for(self, check: Callable[[], bool], timeout: float = 5.0) -> None:
        """Return when ``check()`` holds, looked at each time the server's state changes
        (a client connects, subscribes or leaves; a message is routed or written)."""
        async with asyncio.timeout(timeout):
            while True:
                changed = self._changed
                if check():
                    return
                await changed.wait()

    async def wait_for_clients(
        self, n: int, timeout: float = 5.0, *, subscribed: bool = False
    ) -> None:
        """Until exactly ``n`` clients are connected (and subscribed, with ``subscribed``)."""

        def count() -> int:
            return sum(1 for c in self.clients() if c.subscribed or not subscribed)

        try:
            await self.wait_for(lambda: count() == n, timeout)
        except TimeoutError:
            raise TimeoutError(f"{count()} clients after {timeout} s, not {n}") from None

    async def wait_for_sent(self, n: int, timeout: float = 5.0) -> None:
        """Until at least ``n`` MESSAGE frames have been written (``sent``)."""
        try:
            await self.wait_for(lambda: len(self.sent) >= n, timeout)
        except TimeoutError:
            shown = f"{len(self.sent)} messages sent after {timeout} s, not {n}"
            raise TimeoutError(shown) from None

    def reset(self) -> None:
        """Forget the records, the scripted faults and what waits in the backlogs."""
        self.sent.clear()
        self._faults.clear()
        self._held.clear()
        for backlog in self._groups.values():
            backlog.clear()
        self._audible.set()
        self._notify()

    def _take(self, kind: str) -> _Script | None:
        """The pending script of ``kind``, counting one message against it."""
        script = self._faults.get(kind)
        if script is not None:
            script.remaining -= 1
            if script.remaining <= 0:
                del self._faults[kind]
        return script

    def _record(self, record: SentMessage) -> None:
        self.sent.append(record)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _forget(self, client: _Client) -> None:
        client.disarm()
        if client.login is not None and self._clients.get(client.login.client_id) is client:
            del self._clients[client.login.client_id]
            self._notify()

    # --- connections --------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        loop = asyncio.get_running_loop()
        client = _Client(self, reader, writer, last_received=loop.time(), last_sent=loop.time())
        self._sockets.add(client)
        writing = asyncio.create_task(client.write_loop())
        client.arm(self.link_timeout, f"no CONNECT within {self.link_timeout:g} s")
        try:
            await self._read(client)
            if client.closing and not writing.done() and not writer.transport.is_closing():
                # Let an ERROR or RECEIPT go out before the socket closes (not after abort).
                with contextlib.suppress(TimeoutError, ConnectionError, ssl.SSLError):
                    await asyncio.wait_for(asyncio.shield(writing), 2.0)
        finally:
            client.closing = True
            self._forget(client)
            self._sockets.discard(client)
            for job in [writing, *client.tasks]:
                job.cancel()
            if not writer.is_closing():
                writer.close()
            self._handlers.discard(task)

    async def _read(self, client: _Client) -> None:
        parser = FrameParser()
        loop = asyncio.get_running_loop()
        while not client.closing:
            try:
                data = await client.reader.read(65536)
            except (ConnectionError, ssl.SSLError, OSError):
                return
            if not data:
                return
            client.last_received = loop.time()
            parser.feed(data)
            while not client.closing:
                try:
                    frame = parser.next()
                except ProtocolError as err:
                    client.refuse(str(err))
                    return
                if frame is None:
                    break
                try:
                    self._handle(client, frame)
                except ProtocolError as err:
                    client.refuse(str(err), **_receipt_id(frame))

    def _handle(self, client: _Client, frame: Frame) -> None:
        command = frame.command
        if client.login is None:
            if command not in ("CONNECT", "STOMP"):
                raise ProtocolError(f"expected CONNECT or STOMP, not {command}")
            self._connect(client, frame)
            return
        if command == "SUBSCRIBE":
            self._subscribe(client, frame)
        elif command == "UNSUBSCRIBE":
            if not frame.headers.get("id"):
                raise ProtocolError("UNSUBSCRIBE needs an id header")
            if frame.headers["id"] != client.subscription:
                raise ProtocolError(f"no subscription with id {frame.headers['id']!r}")
            client.subscription = None
            self._notify()
        elif command in ("ACK", "NACK"):
            pass  # delivery is settled as it is sent: there is nothing to acknowledge
        elif command == "DISCONNECT":
            receipt = _receipt_id(frame)
            if receipt:
                client.send("RECEIPT", list(receipt.items()))
            client.close_after_flush()
            return
        elif command in ("CONNECT", "STOMP"):
            raise ProtocolError("already connected")
        elif command == "SEND":
            raise ProtocolError("clients cannot send messages to IoT Platform")
        elif command in ("BEGIN", "COMMIT", "ABORT"):
            raise ProtocolError("transactions are not supported")
        else:
            raise ProtocolError(f"unknown command {command!r}")
        receipt = _receipt_id(frame)
        if receipt:
            client.send("RECEIPT", list(receipt.items()))

    def _connect(self, client: _Client, frame: Frame) -> None:
        offered = [v.strip() for v in frame.headers.get("accept-version", "1.0").split(",")]
        common = [v for v in SUPPORTED_VERSIONS if v in offered]
        if not common:
            client.refuse(
                "Supported protocol versions are " + " ".join(reversed(SUPPORTED_VERSIONS)),
                version=",".join(reversed(SUPPORTED_VERSIONS)),
            )
            return
        client.version = common[0]
        cx, cy = _heart_beat(frame.headers.get("heart-beat", "0,0"))
        try:
            login = check_login(
                frame.headers.get("login"),
                frame.headers.get("passcode"),
                credentials=self.credentials(),
                sts_tokens=self.sts_tokens(),
                now=self.clock(),
                window=self.timestamp_window,
            )
        except AuthError as err:
            log.info("push: refused a connection: %s", err)
            client.refuse(str(err))
            return
        key = (login.instance_id, login.consumer_group_id)
        old = self._clients.get(login.client_id)
        members = [c for c in self._clients.values() if c is not old and c.key == key]
        if len(members) >= self.max_group_clients:
            client.refuse(
                f"consumer group {login.consumer_group_id!r} already has "
                f"{self.max_group_clients} clients"
            )
            return
        if old is not None:
            old.refuse(f"another connection logged in as clientId {login.client_id!r}")
        client.login = login
        self._clients[login.client_id] = client
        self._groups.setdefault(key, deque(maxlen=max(self.backlog, 0)))
        sx, sy = max(self.heartbeat_send_ms, 0), max(self.heartbeat_receive_ms, 0)
        client.send_every = max(sx, cy) / 1000 if sx and cy else 0.0
        client.expect_every = max(cx, sy) / 1000 if cx and sy else 0.0
        # CONNECTED is not escaped [STOMP, Value Encoding]; its values need none.
        client.outbox.put_nowait(
            (
                encode_frame(
                    "CONNECTED",
                    [("version", client.version), ("heart-beat", f"{sx},{sy}")],
                    escaped=False,
                ),
                None,
            )
        )
        client.arm(self.link_timeout, f"no SUBSCRIBE within {self.link_timeout:g} s")
        if client.send_every or client.expect_every:
            client.tasks.append(asyncio.create_task(client.keepalive()))
        log.info("push: %s connected to group %s", login.client_id, login.consumer_group_id)
        self._notify()

    def _subscribe(self, client: _Client, frame: Frame) -> None:
        sub_id = frame.headers.get("id")
        destination = frame.headers.get("destination")
        ack = frame.headers.get("ack", "auto")
        if not sub_id:
            raise ProtocolError("SUBSCRIBE needs an id header")
        if destination != DESTINATION:
            raise ProtocolError(f"subscribe to {DESTINATION}, not {destination!r}")
        if ack not in ("auto", "client", "client-individual"):
            raise ProtocolError(f"unknown ack mode {ack!r}")
        if client.subscription is not None:
            raise ProtocolError("one subscription per connection")
        client.subscription = sub_id
        client.ack_mode = ack
        client.disarm()
        backlog = self._groups.get(client.key)
        while backlog:
            self._deliver(client, backlog.popleft())
        self._notify()


def _receipt_id(frame: Frame) -> dict[str, str]:
    receipt = frame.headers.get("receipt")
    return {"receipt-id": receipt} if receipt else {}


def _heart_beat(value: str) -> tuple[int, int]:
    parts = value.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ProtocolError(f"malformed heart-beat header {value!r}: expected cx,cy")
    return int(parts[0]), int(parts[1])


def _corrupt(message: _Message, payload: Mapping[str, Any], mode: str) -> _Message:
    if mode == "missing_fields":
        kept = {k: v for k, v in payload.items() if k not in CORRUPT_DROPS}
        body = json.dumps(kept, ensure_ascii=False, separators=(",", ":"))
    else:
        body = message.body[: max(1, len(message.body) // 2)]
    return replace(message, body=body)
