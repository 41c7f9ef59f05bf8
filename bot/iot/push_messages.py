"""What Alibaba Cloud's server-side subscription pushes, read into events (pure, no I/O).

Two message types matter (IoT Platform's "batch status notification" and "device update
status notification"; ../shared/reference/alibaba-iot-ota.md, "Push instead of polling"):

- topic ``/${productKey}/${packageId}/${jobId}/ota/job/status``, payload ``{productKey,
  moduleName, packageId, jobId, status, messageCreateTime}``, status PLANNED /
  IN_PROGRESS / COMPLETED / CANCELED;
- topic ``/${productKey}/${deviceName}/ota/upgrade``, payload ``{iotId, productKey,
  deviceName, status, messageCreateTime, srcVersion, destVersion, desc, jobId, taskId}``,
  status SUCCEEDED / FAILED.

Over STOMP the topic, the message ID and the generation time come as frame headers
(``topic``, ``messageId``, ``generateTime``) and the JSON payload as the body. Delivery is
at least once and unordered, so events are triggers, never the truth: the app reads the
batch from the API when one arrives.

Also the user name and password of the subscription's connection (Alibaba's "AMQP client
access" document; the STOMP access for Python 3 uses the same): user name
``clientId|authMode=aksign,signMethod=hmacsha1,timestamp=<ms>,authId=<AccessKeyId>,
iotInstanceId=<id>,consumerGroupId=<group>|``, password
``base64(HMAC-SHA1(AccessKeySecret, "authId=<AccessKeyId>&timestamp=<ms>"))``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from .credentials import Credential
from .models import JOB_STATUSES

JOB_STATUS_SUFFIX = "/ota/job/status"
DEVICE_STATUS_SUFFIX = "/ota/upgrade"
DEVICE_RESULTS = ("SUCCEEDED", "FAILED")


class PushMessageError(ValueError):
    """A pushed message that is not one of the two we know, or not well formed."""


@dataclass(frozen=True)
class JobStatusEvent:
    message_id: str
    job_id: str
    status: str
    product_key: str | None
    package_id: str | None
    created_ms: int | None


@dataclass(frozen=True)
class DeviceStatusEvent:
    message_id: str
    job_id: str
    status: str  # SUCCEEDED or FAILED
    device_name: str
    task_id: str | None
    created_ms: int | None


PushEvent = JobStatusEvent | DeviceStatusEvent


def login(
    credential: Credential,
    *,
    client_id: str,
    consumer_group: str,
    instance_id: str | None,
    timestamp_ms: int,
) -> tuple[str, str]:
    """(user name, password) for the subscription's CONNECT.

    A temporary STS credential signs the same way and adds its token:
    ``authMode=ststoken`` with ``securityToken=<token>`` (an assumption where Alibaba's
    pages shown here describe only aksign; the emulator checks it the same way)."""
    mode = "ststoken" if credential.security_token else "aksign"
    params = [
        f"authMode={mode}",
        "signMethod=hmacsha1",
        f"timestamp={timestamp_ms}",
        f"authId={credential.access_key_id}",
        f"iotInstanceId={instance_id or ''}",
        f"consumerGroupId={consumer_group}",
    ]
    if credential.security_token:
        params.append(f"securityToken={credential.security_token}")
    user = f"{client_id}|{','.join(params)}|"
    content = f"authId={credential.access_key_id}&timestamp={timestamp_ms}".encode()
    digest = hmac.new(credential.access_key_secret.encode(), content, hashlib.sha1).digest()
    return user, base64.b64encode(digest).decode()


def parse(headers: dict[str, str], body: str | bytes) -> PushEvent | None:
    """The event a pushed frame carries; None for a message of another type (the
    subscription may carry more than we asked for). PushMessageError when it is one of
    ours but cannot be read."""
    topic = headers.get("topic") or ""
    if not topic.endswith((JOB_STATUS_SUFFIX, DEVICE_STATUS_SUFFIX)):
        return None
    message_id = headers.get("messageId") or headers.get("message-id") or ""
    if not message_id:
        raise PushMessageError(f"no messageId on a message of {topic[:200]!r}")
    payload = _payload(body)
    job_id = _text(payload, "jobId")
    status = _text(payload, "status")
    created = payload.get("messageCreateTime")
    created_ms = created if isinstance(created, int) and not isinstance(created, bool) else None
    if topic.endswith(JOB_STATUS_SUFFIX):
        if status not in JOB_STATUSES:
            raise PushMessageError(f"batch status {status[:40]!r} is not one the API knows")
        if topic.split("/")[-4:-3] != [job_id]:
            raise PushMessageError("the topic and the payload name different batches")
        return JobStatusEvent(
            message_id,
            job_id,
            status,
            _optional(payload, "productKey"),
            _optional(payload, "packageId"),
            created_ms,
        )
    if status not in DEVICE_RESULTS:
        raise PushMessageError(f"device status {status[:40]!r} is not SUCCEEDED or FAILED")
    return DeviceStatusEvent(
        message_id,
        job_id,
        status,
        _text(payload, "deviceName"),
        _optional(payload, "taskId"),
        created_ms,
    )


def _payload(body: str | bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PushMessageError("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise PushMessageError("the body is not a JSON object")
    return payload


def _text(payload: dict[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value or len(value) > 128:
        raise PushMessageError(f"{key} is missing or not an ID")
    return value


def _optional(payload: dict[str, Any], key: str) -> str | None:
    value = payload.get(key)
    return value if isinstance(value, str) and value else None
