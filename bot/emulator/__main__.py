"""``python -m bot.emulator``: run the IoT gateway emulator until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from bot.emulator.server import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, IotEmulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--qps", type=float, default=10, help="QueryOTAJob quota per key (0: off)")
    parser.add_argument(
        "--auto-jobs", action="store_true", help="answer any unknown JobId with a minted job"
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    emulator = IotEmulator(qps=args.qps, latency=args.latency, auto_jobs=args.auto_jobs)
    url = await emulator.start(args.host, args.port)
    # The demo secret is a published value that only this emulator accepts: safe to print.
    print(f"IoT emulator listening on {url}")
    print(f"Demo AccessKeyId: {DEMO_ACCESS_KEY_ID}")
    print("Point the app at it with:")
    print(f"  export IOT_ENDPOINT={url}")
    print(f"  export ALIBABA_CLOUD_ACCESS_KEY_ID={DEMO_ACCESS_KEY_ID}")
    print(f"  export ALIBABA_CLOUD_ACCESS_KEY_SECRET={DEMO_ACCESS_KEY_SECRET}")
    print("Fixture JobIds:")
    for job_id, job in emulator.jobs.items():
        print(f"  {job_id}  {job.get('JobStatus', '?')}")
    print(f"Call log: GET {url}/_emulator/calls")
    print(f'Move a job: POST {url}/_emulator/jobs/<JobId>/status  {{"status": "COMPLETED"}}')
    print("Ctrl-C to stop.", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await emulator.stop()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
