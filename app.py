"""otajob: Alibaba Cloud IoT Platform OTA update batches in Slack.

Composition root: settings -> runtime (clients, service, renderer, Bolt app) -> serve.
With no Slack settings at all, the app runs locally instead, with a chat page in the
browser that speaks Slack's protocol to it (localchat/).
"""

from __future__ import annotations

import asyncio
import errno
import os
import sys

import localchat
from bot.config import ConfigError, load_env_file, load_settings
from bot.logs import configure_logging
from bot.runtime import build_runtime, default_client_id
from bot.server import serve


async def main() -> None:
    load_env_file()
    if localchat.wanted(os.environ):
        from localchat.run import run_local  # the surface and the fakes, only locally

        await run_local(os.environ)
        return
    settings = load_settings()
    replica = settings.iot_push_client_id or default_client_id()
    configure_logging(settings.log_level, settings.log_format, replica)
    await serve(await build_runtime(settings))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except ConfigError as exc:
        print(f"otajob cannot start. {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        port = os.environ.get("PORT") or "3000"
        print(
            f"otajob cannot start: port {port} is in use. Stop what uses it, or set PORT"
            " to a free port (e.g. PORT=3001 make run).",
            file=sys.stderr,
        )
        sys.exit(2)
