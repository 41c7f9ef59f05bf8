"""``python -m bot job <JobId> [--instance ID] [--json] [--lang ja]``: the same query from a
terminal, in the language of ``--lang``, else of LC_ALL / LC_MESSAGES / LANG.

Exit codes: 0 success, 1 the API answered with an error, 2 bad input or settings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import TextIO

from .config import ConfigError, IotSettings, load_env_file, load_settings
from .iot.errors import IotError
from .languages import language_of_environment, language_of_locale, language_word
from .render import Renderer
from .runtime import build_iot
from .slack.grammar import BadInput, check_instance_id, check_job_id


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m bot", description=__doc__.split("\n")[0])
    commands = root.add_subparsers(dest="command", required=True)
    job = commands.add_parser("job", help="show an OTA update batch (QueryOTAJob)")
    job.add_argument("job_id", metavar="JobId")
    job.add_argument("--instance", metavar="IotInstanceId", help="Enterprise instance ID")
    job.add_argument("--json", action="store_true", help="print the job's Data as JSON")
    job.add_argument(
        "--lang",
        metavar="LANGUAGE",
        type=_language,
        help="en, ja or zh (default: from LC_ALL, LC_MESSAGES or LANG)",
    )
    return root


def _language(word: str) -> str:
    language = language_word(word) or language_of_locale(word)
    if language is None:
        raise argparse.ArgumentTypeError(f"{word!r} is not a language otajob speaks: en, ja, zh")
    return language


async def show_job(args: argparse.Namespace, settings: IotSettings, out: TextIO) -> int:
    renderer = Renderer()
    lang = args.lang or language_of_environment(dict(os.environ))
    # What is sent is what was checked: the cleaned IDs (quotes and backticks off).
    job_id = check_job_id(args.job_id)
    instance = check_instance_id(args.instance) if args.instance else settings.iot_instance_id
    for checked in (job_id, instance):
        if isinstance(checked, BadInput):
            message = renderer.render("bad_input", lang=lang, **vars(checked), demo=False)
            print(_unescape(message.text).replace("`", ""), file=sys.stderr)
            return 2
    iot = await build_iot(settings)
    try:
        result = await iot.client.query_ota_job(job_id, instance_id=instance)
    except IotError as error:
        print(f"Code: {error.code}", file=sys.stderr)
        print(f"Message: {error.message}", file=sys.stderr)
        # The API's own field names, as its documentation and support use them.
        print(f"RequestId: {error.request_id or '-'}", file=sys.stderr)
        return 1
    finally:
        await iot.aclose()
    if args.json:
        out.write(json.dumps(result.raw, ensure_ascii=False, indent=2) + "\n")
    else:
        context = {"job": result.job, "job_id": job_id, "demo": iot.demo}
        out.write(
            renderer.text(
                "job", lang=lang, **context, request_id=result.request_id, instance_id=instance
            ).rstrip()
            + "\n"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    load_env_file()
    try:
        settings = load_settings(kind=IotSettings)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    return asyncio.run(show_job(args, settings, sys.stdout))
