"""Reading pushed messages and signing the subscription's login (pure functions)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from bot.iot.credentials import Credential
from bot.iot.push import PushTarget
from bot.iot.push_messages import (
    DeviceStatusEvent,
    JobStatusEvent,
    PushMessageError,
    login,
    parse,
)

JOB = "HvKuBpuk3rdk6E92CPa1b20200"
JOB_TOPIC = f"/a1Gw7Tk9Lmp/UfuxnwygsuSkVE0VCN1b20100/{JOB}/ota/job/status"


def job_message(status: str = "COMPLETED", **overrides) -> tuple[dict, str]:
    payload = {
        "productKey": "a1Gw7Tk9Lmp",
        "moduleName": "default",
        "packageId": "UfuxnwygsuSkVE0VCN1b20100",
        "jobId": JOB,
        "status": status,
        "messageCreateTime": 1764556800123,
    } | overrides
    headers = {"topic": JOB_TOPIC, "messageId": "1234", "generateTime": "1764556800123"}
    return headers, json.dumps(payload)


def test_login_is_alibabas_user_name_and_signed_password():
    credential = Credential("LTAI5tExample", "secret")
    user, password = login(
        credential,
        client_id="otajob-host-1",
        consumer_group="DEFAULT_GROUP",
        instance_id="iot-06z00ax",
        timestamp_ms=1764556800000,
    )
    assert user == (
        "otajob-host-1|authMode=aksign,signMethod=hmacsha1,timestamp=1764556800000,"
        "authId=LTAI5tExample,iotInstanceId=iot-06z00ax,consumerGroupId=DEFAULT_GROUP|"
    )
    content = b"authId=LTAI5tExample&timestamp=1764556800000"
    expected = base64.b64encode(hmac.new(b"secret", content, hashlib.sha1).digest()).decode()
    assert password == expected
    assert "secret" not in user


def test_login_with_a_temporary_credential_carries_its_token():
    user, _ = login(
        Credential("STS.abc", "s", "token-1"),
        client_id="c",
        consumer_group="g",
        instance_id=None,
        timestamp_ms=1,
    )
    assert "authMode=ststoken" in user and user.endswith(",securityToken=token-1|")
    assert "iotInstanceId=," in user


def test_batch_status_message():
    event = parse(*job_message())
    assert event == JobStatusEvent(
        "1234", JOB, "COMPLETED", "a1Gw7Tk9Lmp", "UfuxnwygsuSkVE0VCN1b20100", 1764556800123
    )


def test_device_status_message():
    headers = {"topic": "/a1Gw7Tk9Lmp/dev-1/ota/upgrade", "messageId": "m2"}
    body = json.dumps(
        {
            "iotId": "x",
            "productKey": "a1Gw7Tk9Lmp",
            "deviceName": "dev-1",
            "status": "FAILED",
            "messageCreateTime": 5,
            "srcVersion": "1.0",
            "destVersion": "1.1",
            "desc": "download timeout",
            "jobId": JOB,
            "taskId": "T1",
        }
    )
    assert parse(headers, body) == DeviceStatusEvent("m2", JOB, "FAILED", "dev-1", "T1", 5)


def test_other_topics_are_not_ours():
    assert parse({"topic": "/a1/dev/thing/event/property/post", "messageId": "1"}, "{}") is None
    assert parse({}, "not even json") is None


@pytest.mark.parametrize(
    ("headers", "body", "why"),
    [
        ({"topic": JOB_TOPIC, "messageId": "1"}, "{not json", "not JSON"),
        ({"topic": JOB_TOPIC, "messageId": "1"}, "[1]", "not a JSON object"),
        ({"topic": JOB_TOPIC}, job_message()[1], "no messageId"),
        (job_message()[0], job_message(status="DONE")[1], "not one the API knows"),
        (job_message()[0], job_message(jobId="Other0000000000000000000000")[1], "different"),
        (job_message()[0], job_message(jobId=None)[1], "jobId"),
        (
            {"topic": "/pk/dev/ota/upgrade", "messageId": "1"},
            json.dumps({"jobId": JOB, "status": "IN_PROGRESS", "deviceName": "d"}),
            "SUCCEEDED or FAILED",
        ),
    ],
)
def test_malformed_messages_are_refused_with_a_reason(headers, body, why):
    with pytest.raises(PushMessageError, match=why):
        parse(headers, body)


def test_push_url_forms():
    assert PushTarget.parse("stomp+ssl://1234.iot-amqp.cn-shanghai.aliyuncs.com:61614") == (
        PushTarget("1234.iot-amqp.cn-shanghai.aliyuncs.com", 61614, True)
    )
    assert PushTarget.parse("stomp://127.0.0.1:6100") == PushTarget("127.0.0.1", 6100, False)
    assert PushTarget.parse("stomp+ssl://host").port == 61614
    for bad in ("amqps://host:5671", "host:61614", "stomp://", "stomp://h:99999"):
        with pytest.raises(ValueError, match=r"stomp|port"):
            PushTarget.parse(bad)
