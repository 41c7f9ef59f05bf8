"""Start the app in local mode: the fake Slack and the page on the app's own server."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from bot.emulator.fixtures import EXAMPLE_JOB_ID_UNMASKED
from bot.languages import language_of_environment
from bot.runtime import build_runtime
from bot.server import serve
from fakes import FakeSlack

from .emulator_panel import EmulatorPanel
from .mode import local_settings, new_secrets
from .surface import LocalSurface
from .workspace import ME, seed

LOOPBACK = "127.0.0.1"  # the surface signs as Slack: it must never be reachable from outside


async def run_local(environ: Mapping[str, str] = os.environ) -> None:
    bot_token, signing_secret = new_secrets()
    with tempfile.TemporaryDirectory(prefix="otajob-local-") as folder:
        settings = local_settings(
            environ,
            person_id=ME.id,
            database_path=Path(folder) / "otajob.db",
            bot_token=bot_token,
            signing_secret=signing_secret,
        )
        logging.basicConfig(
            level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        # The page long-polls: a line per request would bury the app's own log.
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
        base_url = f"http://{LOOPBACK}:{settings.port}"
        fake = FakeSlack(bot_token=bot_token, bot_user_id="UOTAJOB001")
        fake.base_url = base_url
        runtime = await build_runtime(settings)
        emulator = runtime.iot.emulator
        seed(
            fake,
            sample_job_id=EXAMPLE_JOB_ID_UNMASKED if emulator is not None else None,
            language=language_of_environment(dict(environ)),
        )
        surface = LocalSurface(
            fake,
            signing_secret=signing_secret,
            events_url=f"{base_url}/slack/events",
            demo=runtime.deps.demo,
            panel=EmulatorPanel(emulator) if emulator is not None else None,
            port=settings.port,
        )

        def announce() -> None:
            source = "demo data from the built-in IoT emulator" if emulator else "Alibaba Cloud"
            print(
                f"\notajob is running locally (no Slack settings found), showing {source}."
                f"\nOpen {base_url}/ in a browser to chat with it."
                "\nSet SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET to run it for Slack instead.\n",
                flush=True,
            )

        await serve(runtime, host=LOOPBACK, mount=surface.add_to, on_listening=announce)
