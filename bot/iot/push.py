"""The server-side subscription's connection: STOMP with stomp.py, bridged to asyncio.

Alibaba documents Python 3 access to the subscription with stomp.py over TLS on port
61614 (same host and credentials as AMQP; "Python3 SDK access example"): connect with the
signed user name and password (push_messages.login), then subscribe to ``/topic/#``.
stomp.py runs its own receiver thread; every blocking call here (connect, subscribe,
disconnect) runs in a worker thread, and frames come back to the event loop with
``call_soon_threadsafe``, so the loop is never blocked.

The connection is kept: heart-beats both ways, and on any loss a reconnect with
exponential backoff and jitter. Each reconnect signs anew (the password covers a
timestamp). States: ``connecting``, ``live``, ``down`` (lost; retrying), ``refused``
(the server refused the credentials or settings; retrying slowly, logged once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .credentials import CredentialSource
from .push_messages import PushEvent, PushMessageError, login, parse

log = logging.getLogger("otajob.push")

DESTINATION = "/topic/#"  # Alibaba's example subscribes to every topic of the group
# (we send every, we want the server's every). We send within the 30-300 s idle time-out
# Alibaba sets for AMQP connections ("Connect an AMQP client"), and ask the server for a
# beat every 10 s, so a dead link shows within about 15 s (stomp.py allows 1.5 intervals).
HEARTBEATS_MS = (30_000, 10_000)
CONNECT_TIMEOUT = 10.0
BACKOFF_FIRST, BACKOFF_MAX, REFUSED_BACKOFF = 1.0, 60.0, 300.0
STABLE_SECONDS = 60.0  # a link that held this long resets the backoff

# stomp.py logs whole frames at DEBUG, the login header (an STS token) included: never ours.
logging.getLogger("stomp.py").setLevel(logging.INFO)

STATES = ("off", "connecting", "live", "down", "refused")


@dataclass(frozen=True)
class PushTarget:
    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str) -> PushTarget:
        """``stomp+ssl://host:61614`` (Alibaba) or ``stomp://127.0.0.1:port`` (the
        emulator). ValueError says what to write instead."""
        parts = urlsplit(url)
        if parts.scheme not in ("stomp", "stomp+ssl") or not parts.hostname:
            raise ValueError(
                "expected stomp+ssl://<uid>.iot-amqp.<region>.aliyuncs.com:61614"
                " (or stomp://127.0.0.1:<port> for the emulator)"
            )
        tls = parts.scheme == "stomp+ssl"
        try:
            port = parts.port or (61614 if tls else 61613)
        except ValueError:
            raise ValueError("the port is not a number from 1 to 65535") from None
        return cls(parts.hostname, port, tls)


class _Refused(Exception):
    """The server answered CONNECT with an ERROR frame."""


class PushSubscription:
    def __init__(
        self,
        target: PushTarget,
        credentials: CredentialSource,
        *,
        client_id: str,
        consumer_group: str,
        instance_id: str | None,
        on_event: Callable[[PushEvent], Awaitable[None]],
        on_state: Callable[[str], None],
        heartbeats_ms: tuple[int, int] = HEARTBEATS_MS,
        rng: random.Random | None = None,
    ) -> None:
        self.target = target
        self.credentials = credentials
        self.client_id = client_id
        self.consumer_group = consumer_group
        self.instance_id = instance_id
        self.on_event = on_event
        self.on_state = on_state
        self.heartbeats_ms = heartbeats_ms
        self._rng = rng or random.Random()
        self.state = "off"
        self.connects = 0  # successful connects, for /healthz and tests
        self.received = 0  # frames received
        self.dropped = 0  # malformed messages dropped
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None
        self._refusal_logged: str | None = None
        # One thread of our own for stomp.py's blocking calls: a stuck CONNECT can hold
        # only it, never the loop's default executor (DNS, other to_thread work).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="otajob-push")

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run())
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            # Never silently: the watcher must stop counting on push.
            log.error("push subscription stopped", exc_info=task.exception())
            self._set_state("down")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._set_state("off")

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.on_state(state)

    async def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            if self.state == "off":
                self._set_state("connecting")  # later tries keep "down" or "refused" shown
            try:
                failures = await self._once(failures)
            except Exception:  # a bug must not end the subscription: log, back off, retry
                log.exception("push subscription failed; reconnecting")
                failures += 1
                await self._close()
                self._set_state("down")
                await self._pause(self._backoff(failures))

    async def _once(self, failures: int) -> int:
        """One connection, from CONNECT to its loss; returns the failures count after it."""
        queue: asyncio.Queue[tuple[str, Any, Any]] = asyncio.Queue()
        try:
            await self._connect(queue)
        except _Refused as refused:
            self._log_refusal(str(refused))
            self._set_state("refused")
            await self._pause(REFUSED_BACKOFF * self._rng.uniform(0.8, 1.2))
            return failures
        except Exception as exc:  # network, TLS, timeouts: try again, with backoff
            failures += 1
            # The first failure is worth a warning; a link that stays down is not news.
            level = logging.WARNING if failures == 1 else logging.DEBUG
            log.log(
                level,
                "push subscription: cannot connect to %s:%d (%s: %s); retrying with backoff",
                self.target.host,
                self.target.port,
                type(exc).__name__,
                str(exc)[:200],
            )
            self._set_state("down")
            await self._pause(self._backoff(failures))
            return failures
        self._refusal_logged = None
        self.connects += 1
        log.info(
            "push subscription live (%s:%d, group %s)",
            self.target.host,
            self.target.port,
            self.consumer_group,
        )
        self._set_state("live")
        began = time.monotonic()
        reason = await self._pump(queue)
        await self._close()
        if self._stopping.is_set():
            return failures
        # A link that held a while starts the backoff afresh; one that drops at once (a
        # clientId shared by two replicas, a server closing after CONNECTED) backs off
        # further each time, so it cannot storm (each "live" re-polls every batch).
        failures = 1 if time.monotonic() - began > STABLE_SECONDS else failures + 1
        log.warning("push subscription lost (%s); polling until it is back", reason)
        self._set_state("down")
        await self._pause(self._backoff(failures))
        return failures

    def _backoff(self, failures: int) -> float:
        base = min(BACKOFF_FIRST * 2 ** (max(failures, 1) - 1), BACKOFF_MAX)
        return base * self._rng.uniform(0.5, 1.5)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _log_refusal(self, message: str) -> None:
        # One clear line, not one per retry: the settings or the key need a person.
        if message != self._refusal_logged:
            log.error(
                "push subscription refused by %s:%d: %s. Check IOT_PUSH_URL,"
                " IOT_PUSH_CONSUMER_GROUP and the AccessKey's permissions (iot:sub);"
                " polling meanwhile",
                self.target.host,
                self.target.port,
                message or "no reason given",
            )
            self._refusal_logged = message

    # ---- the connection ----------------------------------------------------------------
    async def _connect(self, queue: asyncio.Queue[tuple[str, Any, Any]]) -> None:
        credential = await self.credentials.get()
        user, password = login(
            credential,
            client_id=self.client_id,
            consumer_group=self.consumer_group,
            instance_id=self.instance_id,
            timestamp_ms=int(time.time() * 1000),
        )
        loop = asyncio.get_running_loop()
        bridge = _Bridge(loop, queue)
        try:
            self._conn = await loop.run_in_executor(
                self._executor, self._connect_blocking, bridge, user, password
            )
        except asyncio.CancelledError:
            bridge.abandon()  # the thread drops the connection instead of subscribing
            raise
        except Exception:
            if bridge.refusal is not None:
                raise _Refused(bridge.refusal) from None
            raise

    def _connect_blocking(self, bridge: _Bridge, user: str, password: str) -> Any:
        """On the push thread: CONNECT, wait (bounded) for CONNECTED, SUBSCRIBE."""
        import stomp  # imported here: only a deployment with IOT_PUSH_URL needs it loaded

        conn = stomp.Connection(
            [(self.target.host, self.target.port)],
            heartbeats=self.heartbeats_ms,
            reconnect_attempts_max=1,  # we reconnect ourselves, signing anew each time
            timeout=CONNECT_TIMEOUT,
        )
        if self.target.tls:
            conn.set_ssl(for_hosts=[(self.target.host, self.target.port)])
        conn.set_listener("otajob", bridge)
        try:
            # wait=False: stomp.py's own wait has no deadline; ours has.
            conn.connect(user, password, wait=False, headers={"client-id": self.client_id})
            if not bridge.answered.wait(CONNECT_TIMEOUT):
                raise TimeoutError(f"no answer to CONNECT within {CONNECT_TIMEOUT:g} s")
            if bridge.refusal is not None or not bridge.connected or bridge.abandoned:
                raise ConnectionError(bridge.refusal or "the connection closed")
            conn.subscribe(destination=DESTINATION, id="1", ack="auto")
        except BaseException:
            with contextlib.suppress(Exception):
                conn.disconnect()
            raise
        return conn

    async def _pump(self, queue: asyncio.Queue[tuple[str, Any, Any]]) -> str:
        """Hand each pushed event to on_event, in order; return why the link ended."""
        stop = asyncio.create_task(self._stopping.wait())
        try:
            while True:
                get = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait({get, stop}, return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    get.cancel()
                    return "stopping"
                kind, headers, body = get.result()
                if kind == "message":
                    await self._dispatch(headers, body)
                elif kind == "error":
                    log.warning("push subscription: the server sent an error: %s", headers)
                else:
                    return headers or "the connection closed"
        finally:
            stop.cancel()

    async def _dispatch(self, headers: dict[str, str], body: Any) -> None:
        self.received += 1
        try:
            event = parse(headers, body)
        except Exception as exc:  # PushMessageError, or anything a hostile body causes
            self.dropped += 1
            reason = exc if isinstance(exc, PushMessageError) else type(exc).__name__
            log.warning(
                "dropped a pushed message (%s): %s", headers.get("topic", "?")[:200], reason
            )
            return
        if event is None:
            return  # another message type on the same subscription: not ours to read
        try:
            await self.on_event(event)
        except Exception:
            log.exception("handling a pushed message failed; the next poll will catch it")

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                loop = asyncio.get_running_loop()
                await asyncio.wait_for(loop.run_in_executor(self._executor, conn.disconnect), 5)


class _Bridge:
    """stomp.py's listener, called on its receiver thread: hands everything to the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
        self.loop = loop
        self.queue = queue
        # Read by the connecting thread (CONNECT's answer), not through the loop: a
        # refusal is known for sure before the connect call returns.
        self.answered = threading.Event()
        self.connected = False
        self.refusal: str | None = None
        self.abandoned = False

    def abandon(self) -> None:
        self.abandoned = True
        self.answered.set()

    def on_connected(self, frame: Any) -> None:
        self.connected = True
        self.answered.set()

    def _put(self, item: tuple[str, Any, Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to tell
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    def on_message(self, frame: Any) -> None:
        self._put(("message", dict(frame.headers), frame.body))

    def on_error(self, frame: Any) -> None:
        message = str(frame.headers.get("message") or frame.body or "")[:300]
        if not self.connected:
            self.refusal = message
            self.answered.set()
        self._put(("error", message, None))

    def on_disconnected(self) -> None:
        self.answered.set()
        self._put(("down", "the connection closed", None))

    def on_heartbeat_timeout(self) -> None:
        self._put(("down", "heart-beats stopped", None))

    def __getattr__(self, name: str) -> Callable[..., None]:
        # stomp.py calls every on_* hook of a listener; the others need nothing.
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)
