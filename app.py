"""otajob: Alibaba Cloud IoT Platform OTA update batches in Slack.

Composition root: settings -> runtime (clients, service, renderer, Bolt app) -> serve.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from bot.config import ConfigError, load_env_file, load_settings
from bot.runtime import build_runtime
from bot.server import serve


async def main() -> None:
    load_env_file()
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    await serve(await build_runtime(settings))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except ConfigError as exc:
        print(f"otajob cannot start. {exc}", file=sys.stderr)
        sys.exit(2)
