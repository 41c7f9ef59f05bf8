"""Typed settings from the environment (pydantic-settings).

A missing or malformed setting stops the app at start with one message that names every
variable at fault, instead of failing later at the first request.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Literal, TypeVar

from dotenv import load_dotenv
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .languages import language_of_locale, language_word


class ConfigError(Exception):
    """The environment does not describe a runnable app; the message says what to set."""


class IotSettings(BaseSettings):
    """What talking to Alibaba Cloud needs: enough for the CLI."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", env_ignore_empty=True)

    # Credentials are not here: they come from Alibaba's default chain.
    alibaba_cloud_region_id: str = "cn-shanghai"
    iot_endpoint: str | None = None
    iot_instance_id: str | None = None
    iot_signature: Literal["v3", "v2"] = "v3"
    iot_qps: int = Field(default=10, ge=1, le=1000)
    iot_cache_seconds: float = Field(default=5.0, ge=0)
    iot_timeout_seconds: float = Field(default=10.0, gt=0)
    iot_retry_seconds: float = Field(default=20.0, ge=0)

    otajob_demo: bool = False  # answer from the built-in emulator; every message says so
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"  # json: one object a line, for pipelines

    @property
    def iot_base_url(self) -> str:
        return self.iot_endpoint or f"https://iot.{self.alibaba_cloud_region_id}.aliyuncs.com"


class Settings(IotSettings):
    """The whole app: IoT settings plus Slack's."""

    slack_bot_token: SecretStr
    slack_signing_secret: SecretStr
    slack_app_token: SecretStr | None = None  # set: Socket Mode; unset: HTTP on $PORT
    slack_api_url: str | None = None  # e.g. a local fake Slack in tests
    port: int = Field(default=3000, ge=1, le=65535)

    # Push: Alibaba Cloud's server-side subscription (STOMP). Unset: polling only. A bad
    # value is not fatal: the app logs it once and polls (bot/runtime.py).
    iot_push_url: str | None = None
    iot_push_consumer_group: str = "DEFAULT_GROUP"
    iot_push_client_id: str | None = None  # default: host name and process ID

    # Watchers
    database_url: str = "sqlite:///otajob.db"
    watch_poll_seconds: float = Field(default=60.0, gt=0)
    watch_safety_poll_seconds: float = Field(default=900.0, gt=0)
    watch_qps_share: float = Field(default=0.5, gt=0, le=1)
    watch_max_days: float = Field(default=14.0, gt=0)

    # The language of posts in channels that chose none (`/otajob language`): en, ja or
    # zh. People whose Slack language otajob cannot read or does not speak get their
    # channel's language, so this one when the channel chose none.
    otajob_language: str = "en"

    # Triage: how many failed devices one listing reads at most (100 per call).
    otajob_failed_max: int = Field(default=20000, ge=100, le=100000)

    # Guarded write actions (off unless listed) and who may use them.
    otajob_actions: str = ""  # comma-separated: cancel, reupgrade
    otajob_admins: str = ""  # Slack user IDs (U..., W...) and user group IDs (S...)

    # Access: empty means everyone in the workspace, every channel.
    otajob_allowed_channels: str = ""
    otajob_allowed_users: str = ""
    slack_team_id: str | None = None  # set: requests from any other workspace are refused

    @field_validator(
        "otajob_admins", "otajob_allowed_channels", "otajob_allowed_users", "otajob_actions"
    )
    @classmethod
    def _id_list(cls, value: str, info: ValidationInfo) -> str:
        names = split_list(value)
        pattern = LIST_PATTERNS[info.field_name]
        bad = [n for n in names if not re.fullmatch(pattern, n)]
        if bad:
            raise ValueError(
                f"{', '.join(bad)[:200]} not understood; {LIST_HINTS[info.field_name]}"
            )
        return value

    @field_validator("otajob_language")
    @classmethod
    def _language(cls, value: str) -> str:
        language = language_word(value) or language_of_locale(value)
        if language is None:
            raise ValueError(f"{value[:40]!r} not understood; expected en, ja or zh")
        return language

    @property
    def actions(self) -> frozenset[str]:
        return frozenset(n.lower() for n in split_list(self.otajob_actions))


LIST_PATTERNS = {
    "otajob_actions": r"(?i)cancel|reupgrade",
    "otajob_admins": r"[UWS][A-Z0-9]{2,30}",
    "otajob_allowed_channels": r"[CGD][A-Z0-9]{2,30}",
    "otajob_allowed_users": r"[UW][A-Z0-9]{2,30}",
}
LIST_HINTS = {
    "otajob_actions": "expected a comma-separated list of cancel, reupgrade",
    "otajob_admins": "expected Slack user IDs (U…) and user group IDs (S…), comma-separated",
    "otajob_allowed_channels": "expected Slack channel IDs (C…, G…), comma-separated",
    "otajob_allowed_users": "expected Slack user IDs (U…), comma-separated",
}


def split_list(value: str | None) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [part.strip() for part in (value or "").replace(";", ",").split(",") if part.strip()]


S = TypeVar("S", bound="IotSettings")


def load_env_file() -> None:
    """Put a ``.env`` file's variables into the environment; real variables win.

    Into the environment (not only into Settings) so Alibaba's credential chain sees
    ALIBABA_CLOUD_* from the file too. OTAJOB_ENV_FILE names another file.
    """
    load_dotenv(os.environ.get("OTAJOB_ENV_FILE", ".env"), override=False)


def load_settings(environ: Mapping[str, str] | None = None, kind: type[S] = Settings) -> S:
    """Read settings from ``environ`` (default: the process environment)."""
    try:
        if environ is None:
            return kind()
        lowered = {k.lower(): v for k, v in environ.items() if v != ""}
        return kind.model_validate({k: v for k, v in lowered.items() if k in kind.model_fields})
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    missing, invalid = [], []
    for error in exc.errors():
        name = str(error["loc"][0]).upper() if error["loc"] else "?"
        if error["type"] == "missing":
            missing.append(name)
        else:
            # The input is left out on purpose: it may be a token.
            invalid.append(f"{name}: {error['msg']}")
    lines = []
    if missing:
        lines.append("Missing settings: " + ", ".join(missing) + ".")
    if invalid:
        lines.append("Invalid settings: " + "; ".join(invalid) + ".")
    lines.append("Set them in the environment; the README's Settings table explains each one.")
    return " ".join(lines)
