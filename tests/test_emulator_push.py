"""The emulator's server-side subscription (bot/emulator/push.py): a real stomp.py client,
made as Alibaba's Python 3 example makes it, against the real STOMP server on 127.0.0.1.

stomp.py calls its listener on its own threads; the listener hands every callback to the
test's event loop (call_soon_threadsafe), and tests wait for those events, never a pause.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import hashlib
import hmac
import ipaddress
import json
import shutil
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import stomp
import stomp.exception

from bot.emulator import (
    DEMO_ACCESS_KEY_ID,
    DEMO_ACCESS_KEY_SECRET,
    DEMO_SECURITY_TOKEN,
    IotEmulator,
    fixtures,
)
from bot.emulator import __main__ as cli
from bot.emulator.actions import ACTIONS
from bot.emulator.push import FrameParser, ProtocolError, PushServer
from bot.emulator.state import OtaEvent, utc_text
from bot.iot.models import JOB_STATUSES

JOB = "PushJobAbCdEfGhIjKlMnOp0200"
HASHES = {"hmacmd5": hashlib.md5, "hmacsha1": hashlib.sha1, "hmacsha256": hashlib.sha256}


@pytest.fixture
async def emu():
    emulator = IotEmulator()
    emulator.add_job(fixtures.make_job(JOB))
    await emulator.start_push()
    yield emulator
    await emulator.stop()


@pytest.fixture
async def connect(emu):
    """connect(client_id, group, ...) -> a connected, subscribed Client; all closed after."""
    made: list[Client] = []

    async def make(
        client_id: str = "c1",
        group: str = "g1",
        *,
        subscribe: bool = True,
        heartbeats: tuple[int, int] = (0, 300),
        **login_options: Any,
    ) -> Client:
        client = Client(emu.push.port, heartbeats=heartbeats)
        made.append(client)
        await client.connect(*login(client_id, group, **login_options))
        if subscribe:
            await client.subscribe()
        return client

    yield make
    for client in made:
        await client.close()


@pytest.fixture
async def raw(emu):
    """raw() -> a RawClient connected to the push port; all closed after the test."""
    opened: list[RawClient] = []

    async def make() -> RawClient:
        client = await RawClient.open(emu.push.port)
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.close()


class Client(stomp.ConnectionListener):
    """A stomp.py connection whose callbacks land on the test's event loop."""

    def __init__(
        self,
        port: int,
        *,
        heartbeats: tuple[int, int] = (0, 300),
        version: str = "1.1",
        ca_file: Path | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        make = stomp.Connection12 if version == "1.2" else stomp.Connection
        self.conn = make([("127.0.0.1", port)], heartbeats=heartbeats)
        if ca_file is not None:
            self.conn.set_ssl(
                for_hosts=[("127.0.0.1", port)],
                ca_certs=str(ca_file),
                ssl_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        self.conn.set_listener("", self)
        self.connected: dict[str, str] | None = None
        self.messages: list[stomp.utils.Frame] = []
        self.errors: list[stomp.utils.Frame] = []
        self.receipts: list[str] = []
        self.heartbeats = 0
        self.heartbeat_timeouts = 0
        self.disconnects = 0
        self._changed = asyncio.Event()
        self._receipt_ids = iter(range(1, 1_000_000))

    # stomp.py's threads call these.
    def on_connected(self, frame):
        self._post(lambda: setattr(self, "connected", dict(frame.headers)))

    def on_message(self, frame):
        self._post(lambda: self.messages.append(frame))

    def on_error(self, frame):
        self._post(lambda: self.errors.append(frame))

    def on_receipt(self, frame):
        self._post(lambda: self.receipts.append(frame.headers["receipt-id"]))

    def on_heartbeat(self):
        self._post(lambda: setattr(self, "heartbeats", self.heartbeats + 1))

    def on_heartbeat_timeout(self):
        self._post(lambda: setattr(self, "heartbeat_timeouts", self.heartbeat_timeouts + 1))

    def on_disconnected(self):
        self._post(lambda: setattr(self, "disconnects", self.disconnects + 1))

    def _post(self, change: Callable[[], None]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone after the test
            self.loop.call_soon_threadsafe(self._apply, change)

    def _apply(self, change: Callable[[], None]) -> None:
        change()
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, check: Callable[[], Any], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while True:
                changed = self._changed
                if check():
                    return
                await changed.wait()

    async def connect(self, user: str, password: str) -> None:
        await asyncio.to_thread(self.conn.connect, user, password, wait=True)

    async def refused(self, user: str, password: str) -> str:
        """Connect, expecting an ERROR: its ``message`` header."""
        with pytest.raises(stomp.exception.ConnectFailedException):
            await self.connect(user, password)
        await self.wait_for(lambda: self.errors)
        await self.wait_for(lambda: self.disconnects)
        return self.errors[0].headers["message"]

    async def subscribe(self, ack: str = "auto") -> None:
        await self.send_with_receipt(
            lambda r: self.conn.subscribe(DESTINATION, id=1, ack=ack, headers={"receipt": r})
        )

    async def send_with_receipt(self, send: Callable[[str], None]) -> None:
        receipt = f"r{next(self._receipt_ids)}"
        send(receipt)
        await self.wait_for(lambda: receipt in self.receipts)

    async def wait_for_messages(self, n: int) -> list[dict[str, Any]]:
        await self.wait_for(lambda: len(self.messages) >= n)
        return [json.loads(m.body) for m in self.messages]

    async def close(self) -> None:
        """DISCONNECT and wait for its RECEIPT: over TLS, stomp.py does not notice the
        server closing the socket, so a close without the receipt leaves it thinking it
        is connected until a heart-beat times out."""
        if self.conn.is_connected():
            receipt = f"close-{next(self._receipt_ids)}"
            await asyncio.to_thread(self.conn.disconnect, receipt=receipt)


DESTINATION = "/topic/#"


def login(
    client_id: str = "c1",
    group: str = "g1",
    *,
    key: str = DEMO_ACCESS_KEY_ID,
    secret: str = DEMO_ACCESS_KEY_SECRET,
    method: str = "hmacsha1",
    timestamp_ms: int | None = None,
    instance: str = "",
    token: str | None = None,
) -> tuple[str, str]:
    """The user name and password, built as Alibaba's Python 3 example builds them."""
    stamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    user = (
        f"{client_id}|authMode={'ststoken' if token is not None else 'aksign'},"
        f"signMethod={method},timestamp={stamp},authId={key},"
        f"iotInstanceId={instance},consumerGroupId={group}"
        + (f",securityToken={token}" if token is not None else "")
        + "|"
    )
    signed = f"authId={key}&timestamp={stamp}".encode()
    password = base64.b64encode(hmac.new(secret.encode(), signed, HASHES[method]).digest())
    return user, password.decode()


def bump(emu: IotEmulator, job_id: str = JOB) -> str:
    """Move the job to the next JobStatus (a real change, so one message); return it."""
    current = emu.jobs[job_id]["JobStatus"]
    status = JOB_STATUSES[(JOB_STATUSES.index(current) + 1) % len(JOB_STATUSES)]
    emu.set_status(job_id, status)
    return status


# --- connecting -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["hmacmd5", "hmacsha1", "hmacsha256"])
async def test_alibaba_style_client_connects_and_gets_a_batch_status_message(emu, connect, method):
    """CONNECTED names the version and heart-beats; one status change is one MESSAGE with
    the batch status topic, Alibaba's properties as headers and the JSON payload."""
    client = await connect(method=method)
    assert client.connected == {"version": "1.1", "heart-beat": "1000,0"}
    assert emu.push.clients()[0].client_id == "c1"

    before = int(time.time() * 1000)
    emu.set_status(JOB, "COMPLETED")
    [payload] = await client.wait_for_messages(1)
    job = emu.jobs[JOB]
    assert payload == {
        "productKey": job["ProductKey"],
        "moduleName": "default",
        "packageId": job["FirmwareId"],
        "jobId": JOB,
        "status": "COMPLETED",
        "messageCreateTime": payload["messageCreateTime"],
    }
    assert before <= payload["messageCreateTime"] <= int(time.time() * 1000)
    headers = client.messages[0].headers
    topic = f"/{job['ProductKey']}/{job['FirmwareId']}/{JOB}/ota/job/status"
    assert headers["destination"] == DESTINATION
    assert headers["subscription"] == "1"
    assert headers["topic"] == topic
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(client.messages[0].body.encode())
    assert int(headers["generateTime"]) >= before
    [sent] = emu.push.sent
    assert (sent.group, sent.client_id, sent.topic) == ("g1", "c1", topic)
    assert (sent.message_id, sent.frame_id) == (headers["messageId"], headers["message-id"])
    assert json.loads(sent.body) == payload

    bump(emu)  # the next change is the next message: the first change sent exactly one
    second = await client.wait_for_messages(2)
    assert second[1]["status"] == "CANCELED"
    assert client.messages[1].headers["messageId"] != headers["messageId"]


async def test_stomp_1_2_client_gets_version_1_2(emu):
    client = Client(emu.push.port, version="1.2")
    await client.connect(*login())
    assert client.connected == {"version": "1.2", "heart-beat": "1000,0"}
    await client.close()


async def test_security_token_accepted_when_it_is_the_keys(emu, connect):
    client = await connect(token=DEMO_SECURITY_TOKEN)
    emu.set_status(JOB, "COMPLETED")
    assert (await client.wait_for_messages(1))[0]["status"] == "COMPLETED"


STALE = int((time.time() - 16 * 60) * 1000)


@pytest.mark.parametrize(
    ("user", "options", "expected"),
    [
        (None, {"secret": "not-the-secret"}, "passcode does not match"),
        (None, {"key": "LTAIunknownKey", "secret": "x"}, "unknown AccessKeyId 'LTAIunknownKey'"),
        (None, {"timestamp_ms": STALE}, "timestamp is more than 15 minutes"),
        (None, {"token": "CAISforgedToken"}, "InvalidSecurityToken.Malformed"),
        (None, {"method": "hmacsha256", "secret": "nope"}, "passcode does not match"),
        ("no-bars-at-all", {}, "malformed login"),
        ("|authMode=aksign|", {}, "no clientId"),
        ("c1|authMode=aksign,signMethod=hmacsha1|", {}, "login lacks timestamp, authId"),
        (
            "c1|authMode=token,signMethod=hmacsha1,timestamp=1,authId=k,consumerGroupId=g|",
            {},
            "authMode 'token' is not supported",
        ),
        (
            "c1|authMode=ststoken,signMethod=hmacsha1,timestamp=1,authId=k,consumerGroupId=g|",
            {},
            "authMode ststoken needs securityToken",
        ),
        (
            "c1|authMode=aksign,signMethod=sha1,timestamp=1,authId=k,consumerGroupId=g|",
            {},
            "signMethod 'sha1' is not one of",
        ),
        ("x" * 65 + "|authMode=aksign|", {}, "clientId is longer than 64"),
    ],
)
async def test_refused_logins_get_an_error_saying_why(emu, user, options, expected):
    """Each refusal is an ERROR naming the problem, never echoing a secret or passcode;
    the connection is closed and no client is registered."""
    name, password = login(**options)
    client = Client(emu.push.port)
    message = await client.refused(user or name, password)
    assert expected in message
    body = client.errors[0].body
    for secret in (DEMO_ACCESS_KEY_SECRET, "not-the-secret", password):
        assert secret not in message and secret not in body
    assert emu.push.clients() == []


async def test_same_client_id_replaces_the_first_connection(emu, connect):
    first = await connect("same")
    second = await connect("same")
    await first.wait_for(lambda: first.disconnects)
    assert "another connection logged in as clientId 'same'" in first.errors[0].headers["message"]
    assert [c.client_id for c in emu.push.clients()] == ["same"]
    emu.set_status(JOB, "COMPLETED")
    await second.wait_for_messages(1)
    assert [s.client_id for s in emu.push.sent] == ["same"]
    assert first.messages == []


async def test_a_consumer_group_holds_at_most_max_group_clients(emu, connect):
    emu.push.max_group_clients = 1
    await connect("a", "g1")
    refused = Client(emu.push.port)
    assert "already has 1 clients" in await refused.refused(*login("b", "g1"))
    await connect("c", "g2")  # another group is not full


# --- what is pushed ---------------------------------------------------------------------


async def test_nothing_is_delivered_before_subscribe_and_the_backlog_follows(emu, connect):
    """An unsubscribed group keeps what it missed (the last ``backlog``) for its next
    subscriber; a group never seen keeps nothing."""
    emu.push.backlog = 2
    client = await connect(subscribe=False)
    statuses = [bump(emu) for _ in range(3)]
    late = await connect("late", "never-seen-before")
    await client.subscribe()
    received = await client.wait_for_messages(2)
    assert [p["status"] for p in received] == statuses[1:]

    statuses.append(bump(emu))
    received = await client.wait_for_messages(3)
    assert [p["status"] for p in received] == statuses[1:]
    # The new group missed what came before it first connected, and got what came after.
    assert [p["status"] for p in await late.wait_for_messages(1)] == statuses[3:]


async def test_device_results_are_pushed_when_a_task_succeeds_or_fails(emu, connect):
    client = await connect()
    tasks = emu.tasks_of(JOB)
    working = tasks.render(emu.jobs[JOB], tasks.by_status["IN_PROGRESS"][0])["DeviceName"]
    emu.set_task_status(JOB, working, "SUCCEEDED")
    emu.add_task(JOB, device_name="gw-new", status="FAILED", desc="device offline")
    emu.add_task(JOB, device_name="gw-queued", status="QUEUED")  # not a result: no message
    emu.set_task_status(JOB, working, "SUCCEEDED")  # no change: no message
    emu.set_status(JOB, "COMPLETED")
    received = await client.wait_for_messages(3)

    row = tasks.render(emu.jobs[JOB], tasks.index_of(working))
    assert received[0] == {
        "iotId": row["IotId"],
        "productKey": row["ProductKey"],
        "deviceName": working,
        "status": "SUCCEEDED",
        "messageCreateTime": received[0]["messageCreateTime"],
        "srcVersion": row["SrcVersion"],
        "destVersion": row["DestVersion"],
        "desc": row["TaskDesc"],
        "jobId": JOB,
        "taskId": row["TaskId"],
    }
    assert client.messages[0].headers["topic"] == f"/{row['ProductKey']}/{working}/ota/upgrade"
    assert (received[1]["deviceName"], received[1]["status"]) == ("gw-new", "FAILED")
    assert received[1]["desc"] == "device offline"
    assert received[2]["status"] == "COMPLETED"  # the job's own message came next


async def test_actions_and_bulk_moves_push_what_changes(emu, connect):
    """ReupgradeOTATask and CancelOTATaskByJob move tasks to QUEUED / CANCELED (no result);
    move_many to FAILED reports each device; set_tasks reports each generated device whose
    status became a result; CancelScheduledTask on a PLANNED job reports CANCELED."""
    client = await connect()
    tasks = emu.tasks_of(JOB)
    failed = tasks.by_status["FAILED"][0]
    reupgrade = ACTIONS["ReupgradeOTATask"].handler
    reupgrade(emu, {"JobId": JOB, "TaskId.1": tasks.task_id(failed)})
    cancel = ACTIONS["CancelOTATaskByJob"].handler
    cancel(emu, {"JobId": JOB, "CancelInProgressTask": "true"})
    moving = list(tasks.by_status["QUEUED"][:2])
    tasks.move_many(moving, "FAILED", "flash write failed", utc_text(time.time()))
    received = await client.wait_for_messages(2)
    assert [(p["taskId"], p["status"]) for p in received] == [
        (tasks.task_id(i), "FAILED") for i in moving
    ]
    assert {p["desc"] for p in received} == {"flash write failed"}

    emu.set_tasks(JOB, {"IN_PROGRESS": 3})
    emu.set_tasks(JOB, {"IN_PROGRESS": 1, "SUCCEEDED": 1, "FAILED": 1})
    emu.set_tasks(JOB, {"IN_PROGRESS": 1, "SUCCEEDED": 1, "FAILED": 1})  # nothing new
    received = await client.wait_for_messages(4)
    assert [(p["deviceName"], p["status"]) for p in received[2:]] == [
        ("dev-000001", "SUCCEEDED"),
        ("dev-000002", "FAILED"),
    ]

    emu.set_status(fixtures.PLANNED_JOB_ID, "PLANNED")  # unchanged: no message
    cancel(emu, {"JobId": fixtures.PLANNED_JOB_ID, "CancelScheduledTask": "true"})
    received = await client.wait_for_messages(5)
    assert (received[4]["jobId"], received[4]["status"]) == (fixtures.PLANNED_JOB_ID, "CANCELED")
    assert len(emu.push.sent) == 5


async def test_groups_share_messages_in_turn_and_each_group_gets_all(emu, connect):
    a = await connect("a", "g1")
    b = await connect("b", "g1")
    c = await connect("c", "g2")
    statuses = [bump(emu) for _ in range(4)]
    await a.wait_for_messages(2)
    await b.wait_for_messages(2)
    everything = await c.wait_for_messages(4)
    assert [p["status"] for p in everything] == statuses
    assert [json.loads(m.body)["status"] for m in a.messages] == statuses[0::2]
    assert [json.loads(m.body)["status"] for m in b.messages] == statuses[1::2]
    assert len(emu.push.sent) == 8


async def test_messages_stay_within_the_jobs_instance(emu, connect):
    emu.add_job(fixtures.make_job("ScopedJobAbCdEfGhIjKlMn0200"), instance_id="iot-06z00ab")
    scoped = await connect("scoped", "g1", instance="iot-06z00ab")
    public = await connect("public", "g1")
    emu.set_status("ScopedJobAbCdEfGhIjKlMn0200", "COMPLETED")
    emu.set_status(JOB, "COMPLETED")
    assert (await scoped.wait_for_messages(1))[0]["jobId"] == "ScopedJobAbCdEfGhIjKlMn0200"
    assert (await public.wait_for_messages(1))[0]["jobId"] == JOB
    assert emu.push.clients()[0].instance_id == "iot-06z00ab"


async def test_unsubscribe_stops_delivery_and_disconnect_gets_its_receipt(emu, connect):
    client = await connect()
    await client.send_with_receipt(lambda r: client.conn.unsubscribe(id=1, headers={"receipt": r}))
    bump(emu)
    assert not emu.push.clients()[0].subscribed
    await client.subscribe()
    await client.wait_for_messages(1)  # it waited in the group's backlog
    await asyncio.to_thread(client.conn.disconnect, receipt="bye")
    await client.wait_for(lambda: "bye" in client.receipts and client.disconnects)
    await emu.push.wait_for_clients(0)


async def test_header_values_are_escaped(emu, connect):
    client = await connect()
    emu.push.publish("/pk/odd:name\\with\nbreaks/ota/upgrade", {"ok": True})
    await client.wait_for_messages(1)
    assert client.messages[0].headers["topic"] == "/pk/odd:name\\with\nbreaks/ota/upgrade"


async def test_client_ack_mode_is_accepted_and_acks_are_ignored(emu):
    client = Client(emu.push.port, version="1.2")
    await client.connect(*login())
    await client.subscribe(ack="client-individual")
    bump(emu)
    await client.wait_for_messages(1)
    headers = client.messages[0].headers
    assert headers["ack"] == headers["message-id"]
    await client.send_with_receipt(
        lambda r: client.conn.send_frame("ACK", {"id": headers["ack"], "receipt": r})
    )
    await client.close()


# --- heart-beats ------------------------------------------------------------------------


async def test_server_heart_beats_flow_at_the_negotiated_interval(emu, connect):
    emu.push.heartbeat_send_ms = 50
    client = await connect(heartbeats=(0, 100))  # max(50, 100): every 100 ms
    assert client.connected["heart-beat"] == "50,0"
    await client.wait_for(lambda: client.heartbeats >= 3)


async def test_a_client_silent_past_twice_its_interval_is_closed(emu, raw):
    emu.push.heartbeat_receive_ms = 100
    silent = await raw()
    silent.send(connect_frame(heart_beat="100,0"))
    command, headers, _ = await silent.frame()
    assert (command, headers["heart-beat"]) == ("CONNECTED", "1000,100")
    assert await silent.frame() is None  # closed, with no ERROR: the peer is presumed dead
    await emu.push.wait_for_clients(0)

    beating = await raw()
    beating.send(connect_frame(heart_beat="100,0"))
    assert (await beating.frame())[0] == "CONNECTED"
    for _ in range(8):  # 400 ms of heart-beats, twice past the 200 ms limit
        beating.send(b"\n")
        await asyncio.sleep(0.05)
    beating.send(frame("SUBSCRIBE", id="1", destination=DESTINATION, receipt="alive"))
    assert await beating.frame() == ("RECEIPT", {"receipt-id": "alive"}, b"")


# --- protocol details (raw frames) ---------------------------------------------------


class RawClient:
    """Bytes in, frames out: for what stomp.py would not send."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> RawClient:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def frame(self) -> tuple[str, dict[str, str], bytes] | None:
        """The next frame (heart-beats skipped), None once the server has closed."""
        try:
            data = await asyncio.wait_for(self.reader.readuntil(b"\x00"), 5)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        head, _, body = data[:-1].lstrip(b"\r\n").partition(b"\n\n")
        command, *lines = head.decode().split("\n")
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers.setdefault(name, value)
        return command, headers, body

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def frame(command: str, body: bytes = b"", **headers: str) -> bytes:
    lines = [command, *(f"{k.replace('_', '-')}:{v}" for k, v in headers.items())]
    return ("\n".join(lines) + "\n\n").encode() + body + b"\x00"


def connect_frame(accept_version: str = "1.1,1.2", **headers: str) -> bytes:
    user, password = login()
    return frame(
        "CONNECT",
        accept_version=accept_version,
        login=user,
        passcode=password,
        **headers,
    )


async def test_version_negotiation(emu, raw):
    old = await raw()
    old.send(connect_frame(accept_version="1.0"))
    command, headers, body = await old.frame()
    assert (command, headers["version"]) == ("ERROR", "1.1,1.2")
    assert b"1.1 1.2" in body
    assert await old.frame() is None

    both = await raw()
    both.send(connect_frame(accept_version="1.1,1.2"))
    assert (await both.frame())[1]["version"] == "1.2"


SUBSCRIBE = frame("SUBSCRIBE", id="1", destination=DESTINATION)


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        ([SUBSCRIBE], "expected CONNECT or STOMP"),
        ([None, frame("SEND", b"x", destination="/topic/x")], "cannot send messages"),
        ([None, frame("SUBSCRIBE", id="1", destination="/queue/x")], "subscribe to /topic/#"),
        ([None, frame("SUBSCRIBE", destination=DESTINATION)], "SUBSCRIBE needs an id"),
        ([None, SUBSCRIBE, SUBSCRIBE], "one subscription per connection"),
        ([None, frame("BEGIN", transaction="t")], "transactions are not supported"),
        ([None, b"SUBSCRIBE\nid:a\\qb\n\n\x00"], "undefined escape sequence"),
        ([lambda: connect_frame(heart_beat="soon")], "malformed heart-beat"),
        ([None, None], "already connected"),
    ],
)
async def test_frames_the_server_refuses(emu, raw, frames, expected):
    """ERROR naming the problem, then the server closes; frames before the bad one count.
    (None: a good CONNECT, made when the test runs since its timestamp ages.)"""
    client = await raw()
    made = [connect_frame() if f is None else f() if callable(f) else f for f in frames]
    client.send(b"".join(made))
    seen = []
    while (got := await client.frame()) is not None:
        seen.append(got)
    assert [command for command, _, _ in seen] == ["CONNECTED"] * (None in frames) + ["ERROR"]
    assert expected in seen[-1][1]["message"]


async def test_an_error_answers_the_receipt_of_the_frame_it_refuses(emu, raw):
    client = await raw()
    client.send(connect_frame() + frame("SEND", b"x", destination="/topic/x", receipt="r9"))
    assert (await client.frame())[0] == "CONNECTED"
    command, headers, _ = await client.frame()
    assert (command, headers["receipt-id"]) == ("ERROR", "r9")


async def test_connect_and_subscribe_each_have_a_deadline(emu, raw):
    emu.push.link_timeout = 0.2
    mute = await raw()
    command, headers, _ = await mute.frame()
    assert (command, headers["message"]) == ("ERROR", "no CONNECT within 0.2 s")
    assert await mute.frame() is None

    idle = await raw()
    idle.send(connect_frame())
    assert (await idle.frame())[0] == "CONNECTED"
    command, headers, _ = await idle.frame()
    assert (command, headers["message"]) == ("ERROR", "no SUBSCRIBE within 0.2 s")
    await emu.push.wait_for_clients(0)


def test_frame_parser_reads_crlf_content_length_and_first_repeated_header():
    parser = FrameParser()
    parser.feed(b"\r\n\nSEND\r\nid:1\r\nid:2\r\ncontent-length:3\r\n\r\na\x00b")
    assert parser.next() is None
    parser.feed(b"\x00\nSEND\ncontent-length:1\n\nab\x00")
    parsed = parser.next()
    assert parsed is not None
    assert (parsed.command, parsed.headers, parsed.body) == (
        "SEND",
        {"id": "1", "content-length": "3"},
        b"a\x00b",
    )
    with pytest.raises(ProtocolError, match="longer than its content-length"):
        parser.next()


# --- faults -----------------------------------------------------------------------------


async def test_fault_drop_closes_every_connection_now(emu, connect):
    a = await connect("a")
    b = await connect("b", "g2")
    emu.push.fault("drop")
    assert emu.push.clients() == []
    await a.wait_for(lambda: a.disconnects)
    await b.wait_for(lambda: b.disconnects)
    again = await connect("a")
    bump(emu)
    await again.wait_for_messages(1)


async def test_fault_silence_stops_heart_beats_and_delivery_until_resume(emu, connect):
    emu.push.heartbeat_send_ms = 50
    watched = await connect("watched", heartbeats=(0, 100))
    waiting = await connect("waiting", "g2", heartbeats=(0, 0))
    emu.push.fault("silence")
    await watched.wait_for(lambda: watched.heartbeat_timeouts)  # the client gives up
    await emu.push.wait_for_clients(1)  # the server still reads: it sees that close
    bump(emu)
    await emu.push.wait_for(lambda: [c.unsent for c in emu.push.clients()] == [1])
    assert emu.push.sent == [] and waiting.messages == []
    emu.push.fault("resume")
    await emu.push.wait_for_sent(1)
    assert [s.client_id for s in emu.push.sent] == ["waiting"]
    await waiting.wait_for_messages(1)


async def test_fault_duplicate_sends_the_same_message_twice(emu, connect):
    client = await connect()
    emu.push.fault("duplicate")
    bump(emu)
    bump(emu)
    await emu.push.wait_for_sent(3)
    assert len({s.message_id for s in emu.push.sent}) == 2
    received = await client.wait_for_messages(3)
    first, again, other = (m.headers for m in client.messages)
    assert first["messageId"] == again["messageId"] != other["messageId"]
    assert first["message-id"] != again["message-id"]
    assert received[0] == received[1] != received[2]


async def test_fault_delay_lets_later_messages_pass(emu, connect):
    client = await connect()
    emu.push.fault("delay", seconds=0.3)
    late = bump(emu)
    prompt = bump(emu)
    received = await client.wait_for_messages(2)
    assert [p["status"] for p in received] == [prompt, late]


async def test_fault_reorder_sends_the_next_n_newest_first(emu, connect):
    client = await connect()
    emu.push.fault("reorder", count=3)
    statuses = [bump(emu) for _ in range(3)]
    after = bump(emu)
    received = await client.wait_for_messages(4)
    assert [p["status"] for p in received] == [*statuses[::-1], after]


async def test_fault_corrupt_bodies(emu, connect):
    client = await connect()
    emu.push.fault("corrupt")
    bump(emu)
    await client.wait_for(lambda: client.messages)
    with pytest.raises(json.JSONDecodeError):
        json.loads(client.messages[0].body)
    assert int(client.messages[0].headers["content-length"]) == len(client.messages[0].body)
    emu.push.fault("corrupt", mode="missing_fields")
    bump(emu)
    bump(emu)
    await client.wait_for(lambda: len(client.messages) == 3)
    broken, fine = (json.loads(m.body) for m in client.messages[1:])
    assert "jobId" not in broken and "status" not in broken and broken["productKey"]
    assert fine["jobId"] == JOB


def test_unknown_faults_and_options_are_refused():
    push = PushServer(credentials=dict)
    with pytest.raises(ValueError, match="unknown fault"):
        push.fault("explode")
    with pytest.raises(ValueError, match="seconds applies"):
        push.fault("duplicate", seconds=1)
    with pytest.raises(ValueError, match="unknown corrupt mode"):
        push.fault("corrupt", mode="shuffled")


# --- the store and the lifecycle ----------------------------------------------------


async def test_a_failing_listener_never_fails_the_change():
    emulator = IotEmulator()
    seen: list[OtaEvent] = []

    def broken(event: OtaEvent) -> None:
        raise RuntimeError("listener down")

    emulator.listeners += [broken, seen.append]
    emulator.set_status(fixtures.PLANNED_JOB_ID, "IN_PROGRESS")
    assert emulator.jobs[fixtures.PLANNED_JOB_ID]["JobStatus"] == "IN_PROGRESS"
    assert [e.kind for e in seen] == ["job_status"]
    assert emulator.push.publish("/t", {}) and emulator.push.sent == []  # not started


async def test_tls_like_alibabas_port_61614(tmp_path):
    cert, key = make_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    emulator = IotEmulator()
    emulator.push.heartbeat_send_ms = 100
    url = await emulator.start_push(ssl_context=context)
    assert url == f"stomp+ssl://127.0.0.1:{emulator.push.port}"
    client = Client(emulator.push.port, ca_file=cert, heartbeats=(0, 100))
    try:
        await client.connect(*login())
        await client.subscribe()
        emulator.set_status(fixtures.PLANNED_JOB_ID, "IN_PROGRESS")
        assert (await client.wait_for_messages(1))[0]["status"] == "IN_PROGRESS"
        # Over TLS, stomp.py 9.0.0 reads the server's close as "no data yet": only the
        # missing heart-beats tell it the connection is gone.
        emulator.push.fault("drop")
        await client.wait_for(lambda: client.heartbeat_timeouts)
    finally:
        await client.close()
        await emulator.stop()


async def test_cli_starts_the_push_server_when_asked():
    emulator, lines = await cli.start(cli.parse_args(["--port", "0", "--push-port", "0"]))
    try:
        [line] = [x for x in lines if "stomp://" in x]
        assert line.endswith(emulator.push.url)
        client = await RawClient.open(emulator.push.port)
        client.send(connect_frame())
        assert (await client.frame())[0] == "CONNECTED"
        await client.close()
    finally:
        await emulator.stop()
    assert emulator.push.url == ""
    assert cli.parse_args([]).push_port is None


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: with cryptography, else with openssl."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("neither cryptography nor openssl to make a certificate")
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
        )
        return cert, key
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


async def test_waits_fail_with_what_they_saw(emu):
    with pytest.raises(TimeoutError, match=r"0 clients after 0\.05 s, not 1"):
        await emu.push.wait_for_clients(1, timeout=0.05)
    with pytest.raises(TimeoutError, match=r"0 messages sent after 0\.05 s, not 1"):
        await emu.push.wait_for_sent(1, timeout=0.05)
