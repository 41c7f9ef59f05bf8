"""``python -m bot.emulator``: run the IoT gateway emulator until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import ssl

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
    parser.add_argument(
        "--push-port",
        type=int,
        default=None,
        help="also serve the STOMP server-side subscription on this port (0: a free port)",
    )
    parser.add_argument("--push-certfile", help="TLS certificate (PEM) for the push port")
    parser.add_argument("--push-keyfile", help="TLS private key (PEM) for the push port")
    args = parser.parse_args(argv)
    if args.push_keyfile and not args.push_certfile:
        parser.error("--push-keyfile needs --push-certfile")
    return args


async def start(args: argparse.Namespace) -> tuple[IotEmulator, list[str]]:
    """Start the emulator (and its push server if asked) and say how to use it."""
    emulator = IotEmulator(qps=args.qps, latency=args.latency, auto_jobs=args.auto_jobs)
    url = await emulator.start(args.host, args.port)
    # The demo secret is a published value that only this emulator accepts: safe to print.
    lines = [
        f"IoT emulator listening on {url}",
        f"Demo AccessKeyId: {DEMO_ACCESS_KEY_ID}",
        "Point the app at it with:",
        f"  export IOT_ENDPOINT={url}",
        f"  export ALIBABA_CLOUD_ACCESS_KEY_ID={DEMO_ACCESS_KEY_ID}",
        f"  export ALIBABA_CLOUD_ACCESS_KEY_SECRET={DEMO_ACCESS_KEY_SECRET}",
    ]
    if args.push_port is not None:
        context = None
        if args.push_certfile:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(args.push_certfile, args.push_keyfile)
        push_url = await emulator.start_push(args.host, args.push_port, context)
        lines.append(f"Server-side subscription (STOMP, subscribe to /topic/#): {push_url}")
    lines.append("Fixture JobIds:")
    for job_id, job in emulator.jobs.items():
        lines.append(f"  {job_id}  {job.get('JobStatus', '?')}")
    lines += [
        f"Call log: GET {url}/_emulator/calls",
        f'Move a job: POST {url}/_emulator/jobs/<JobId>/status  {{"status": "COMPLETED"}}',
        "Ctrl-C to stop.",
    ]
    return emulator, lines


async def serve(args: argparse.Namespace) -> None:
    emulator, lines = await start(args)
    print("\n".join(lines), flush=True)
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
