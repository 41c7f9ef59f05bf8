"""When the app runs locally, and the settings it then runs with.

Local mode is for trying otajob with nothing set up: no Slack app, no workspace admin.
It starts when none of Slack's settings is present; with any of them, the app runs for
Slack as always and nothing here is used. A half-configured Slack (a token without its
signing secret, say) is not local mode: the app stops and names what is missing.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path

from bot.config import Settings, load_settings

SLACK_SETTINGS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN")

# What Alibaba's default credential chain reads (alibabacloud-credentials: environment
# variables, the CLI's profile file, an OIDC role, an ECS RAM role). Any of them present:
# the local surface shows the real API instead of the demo data.
ALIBABA_CREDENTIAL_SETTINGS = (
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_CREDENTIALS_FILE",
    "ALIBABA_CLOUD_PROFILE",
    "ALIBABA_CLOUD_ROLE_ARN",
    "ALIBABA_CLOUD_ECS_METADATA",
)
ALIBABA_PROFILE_FILES = ("~/.alibabacloud/credentials", "~/.aliyun/config.json")

# Watches poll every few seconds locally, so a status moved in the side panel shows within
# seconds; the emulator's quota is the only one spent.
LOCAL_POLL_SECONDS = "5"


def wanted(environ: Mapping[str, str]) -> bool:
    """True when no Slack setting is present (empty counts as absent, as in Settings)."""
    return not any(environ.get(name) for name in SLACK_SETTINGS)


def alibaba_configured(environ: Mapping[str, str], home: Path | None = None) -> bool:
    if any(environ.get(name) for name in ALIBABA_CREDENTIAL_SETTINGS):
        return True
    home = home or Path.home()
    return any((home / path.removeprefix("~/")).is_file() for path in ALIBABA_PROFILE_FILES)


def local_settings(
    environ: Mapping[str, str],
    *,
    person_id: str,
    database_path: Path,
    bot_token: str,
    signing_secret: str,
) -> Settings:
    """The app's settings for local mode: Slack is the surface on 127.0.0.1:$PORT.

    Chosen for a first try, each overridable in the environment: demo data unless Alibaba
    credentials are configured; a fresh database per run (the local chat lives in memory,
    so watches kept from an earlier run would point at messages that no longer exist);
    with demo data, cancel and re-upgrade switched on with the local person as admin, so
    their dialogs can be tried (never by default against a real account); watches polled
    every 5 s."""
    port = environ.get("PORT") or "3000"
    demo = not alibaba_configured(environ)
    defaults = {
        "OTAJOB_DEMO": "1" if demo else "0",
        "DATABASE_URL": f"sqlite:///{database_path}",
        "OTAJOB_ADMINS": person_id,
        "WATCH_POLL_SECONDS": LOCAL_POLL_SECONDS,
    }
    if demo:
        defaults["OTAJOB_ACTIONS"] = "cancel,reupgrade"
    fixed = {
        "SLACK_BOT_TOKEN": bot_token,
        "SLACK_SIGNING_SECRET": signing_secret,
        "SLACK_API_URL": f"http://127.0.0.1:{port}/api/",
        "PORT": port,
    }
    # Set in the environment wins, even set empty (OTAJOB_ACTIONS= turns the actions off).
    merged = defaults | dict(environ) | fixed
    return load_settings(merged)


def new_secrets() -> tuple[str, str]:
    """A bot token and a signing secret for this run only: the surface signs what it sends
    into the app with the secret, and the app calls the surface's Web API with the token."""
    return "xoxb-local-" + secrets.token_hex(12), secrets.token_hex(16)
