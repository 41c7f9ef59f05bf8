"""Typed errors from the IoT API, each carrying Code, message and RequestId."""

from __future__ import annotations

import re

THROTTLING_PREFIX = "Throttling"
RETRYABLE_CODES = frozenset({"InternalError", "ServiceUnavailable", "UnknownError"})

# SignatureDoesNotMatch echoes the server's StringToSign, which holds the AccessKeyId
# (and every signed value). Nothing after that marker is ever logged or shown.
_STRING_TO_SIGN = re.compile(r"(string\s*to\s*sign|stringtosign).*", re.IGNORECASE | re.DOTALL)


def redact(message: str) -> str:
    return _STRING_TO_SIGN.sub(r"\1 [redacted]", message)


class IotError(Exception):
    """Any failure to get an answer from the IoT API."""

    retryable = False

    def __init__(
        self,
        code: str,
        message: str,
        request_id: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.code = code
        self.message = redact(message)
        self.request_id = request_id
        self.http_status = http_status
        self.retry_after = retry_after
        super().__init__(str(self))

    def __str__(self) -> str:
        rid = f" (RequestId {self.request_id})" if self.request_id else ""
        return f"{self.code}: {self.message}{rid}"


class IotApiError(IotError):
    """The API answered with an error Code (gateway or IoT business error)."""


class IotThrottled(IotApiError):
    retryable = True


class IotUnavailable(IotApiError):
    """5xx, InternalError, ServiceUnavailable: the platform's side, worth retrying."""

    retryable = True


class IotTransportError(IotError):
    """Timeout or connection failure: no answer at all."""

    retryable = True


class IotBadResponse(IotError):
    """An answer that is not the JSON the API documents (a proxy's HTML page, say)."""


class IotCredentialsError(IotError):
    """No usable credentials: Alibaba's chain found none, or refreshing them failed."""


def api_error(
    code: str,
    message: str,
    request_id: str | None,
    http_status: int,
    retry_after: float | None = None,
) -> IotApiError:
    """Pick the error class from the Code and HTTP status."""
    if code.startswith(THROTTLING_PREFIX):
        cls: type[IotApiError] = IotThrottled
    elif code in RETRYABLE_CODES or http_status >= 500:
        cls = IotUnavailable
    else:
        cls = IotApiError
    return cls(code, message, request_id, http_status, retry_after)


def error_kind(error: IotError) -> str:
    """A plain-words category for the message a person sees (templates/api_error)."""
    code = error.code
    if isinstance(error, IotThrottled):
        return "throttled"
    if isinstance(error, IotTransportError | IotUnavailable):
        return "unreachable"
    if isinstance(error, IotBadResponse):
        return "bad_response"
    if isinstance(error, IotCredentialsError):
        return "no_credentials"
    if code.endswith("InstanceNotFound"):
        return "wrong_instance"
    if "PermissionDeny" in code or code.startswith("Forbidden") or "NoPermission" in code:
        return "permission"
    if code.startswith(("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidSecurityToken")):
        return "credentials"
    if code.startswith(("InvalidTimeStamp", "SignatureNonceUsed", "IncompleteSignature")):
        return "credentials"
    if "NotFound" in code or "NotExist" in code:
        return "not_found"
    return "refused"
