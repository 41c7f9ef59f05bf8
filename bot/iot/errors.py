"""Typed errors from the IoT API, each carrying Code, message and RequestId."""

from __future__ import annotations

import re

THROTTLING_PREFIX = "Throttling"
RETRYABLE_CODES = frozenset({"InternalError", "ServiceUnavailable", "UnknownError"})

# SignatureDoesNotMatch echoes the server's StringToSign, which holds the AccessKeyId
# (and every signed value). Nothing after that marker is ever logged or shown.
_STRING_TO_SIGN = re.compile(r"(string\s*to\s*sign|stringtosign).*", re.IGNORECASE | re.DOTALL)
# A gateway or proxy error may quote the request: V2 carries SecurityToken and Signature
# in the URL, V3 the token and Credential in headers. Values end at a separator, also
# URL-encoded ones (%26 is "&").
_SECRET_VALUE = re.compile(
    r"(?P<key>\b(?:SecurityToken|x-acs-security-token|Signature|AccessKeyId|AccessKeySecret"
    r"|Credential)[\"']?)"
    r"(?P<sep>\s*(?:=|:|%3D)\s*[\"']?)"
    r"(?:(?!%26)[^&\s\"'<>,;\\])+",
    re.IGNORECASE,
)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """The one place secrets are taken out of an error's text (applied to every IotError)."""
    text = _STRING_TO_SIGN.sub(rf"\1 {REDACTED}", text)
    return _SECRET_VALUE.sub(rf"\g<key>\g<sep>{REDACTED}", text)


class IotError(Exception):
    """Any failure to get an answer from the IoT API."""

    retryable = False
    # Whether the API may have carried the call out, which matters for a write (cancel,
    # re-upgrade): True unless the error shows the call was refused or never sent. An
    # error of unknown origin says True, the safe assumption.
    may_have_run = True
    # Whether ``message`` is the API's own text (shown as it is, untranslated), rather
    # than otajob's diagnostic (host names, exception names: for the log; a person reads
    # words for its Code instead, bot/render.py).
    api_message = False

    def __init__(
        self,
        code: str,
        message: str,
        request_id: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.code = redact(code)
        self.message = redact(message)
        self.request_id = redact(request_id) if request_id else None
        self.http_status = http_status
        self.retry_after = retry_after
        super().__init__(str(self))

    def __str__(self) -> str:
        rid = f" (RequestId {self.request_id})" if self.request_id else ""
        return f"{self.code}: {self.message}{rid}"


class IotApiError(IotError):
    """The API answered with an error Code (gateway or IoT business error)."""

    may_have_run = False  # a clear refusal: the action did not run


class IotThrottled(IotApiError):
    retryable = True


class IotUnavailable(IotApiError):
    """5xx, InternalError, ServiceUnavailable: the platform's side, worth retrying."""

    retryable = True
    may_have_run = True  # it may have failed after the action ran


# A transport error with this code never reached the gateway.
NOT_SENT = "ConnectionError"


class IotTransportError(IotError):
    """Timeout or connection failure: no answer at all."""

    retryable = True

    def __init__(
        self,
        code: str,
        message: str,
        request_id: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
        *,
        sent: bool | None = None,
    ) -> None:
        super().__init__(code, message, request_id, http_status, retry_after)
        # A timeout or a dropped connection may hide an action that ran.
        self.may_have_run = code != NOT_SENT if sent is None else sent


class IotBadResponse(IotError):
    """An answer that is not the JSON the API documents (a proxy's HTML page, say)."""

    may_have_run = True  # something answered: the action may have run behind it


class IotCredentialsError(IotError):
    """No usable credentials: Alibaba's chain found none, or refreshing them failed."""

    may_have_run = False  # nothing was sent


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
    error = cls(code, message, request_id, http_status, retry_after)
    error.api_message = True
    return error


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
