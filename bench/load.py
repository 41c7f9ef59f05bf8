"""``python -m bench.load FILE URL IN_FLIGHT``: POST the signed requests in FILE (a JSON
list of [body, headers]) to URL, at most IN_FLIGHT at once; print each one's seconds to
its HTTP response, as JSON.

A process of its own, on aiohttp's client: the load generator must not share an event
loop (or httpx's CPU per request) with the emulator and the fake Slack, or what it
measures is its own queue, not the app's acknowledgements.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp


async def send(requests: list[list], url: str, in_flight: int) -> dict:
    gate = asyncio.Semaphore(in_flight)
    seconds: list[float] = []
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(body: str, headers: dict[str, str]) -> None:
            async with gate:
                started = time.perf_counter()
                async with session.post(url, data=body.encode(), headers=headers) as response:
                    await response.read()
                seconds.append(time.perf_counter() - started)
                statuses[response.status] = statuses.get(response.status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(one(body, headers) for body, headers in requests))
        return {"seconds": seconds, "statuses": statuses, "wall": time.perf_counter() - started}


def main() -> None:
    path, url, in_flight = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(path) as file:
        requests = json.load(file)
    print(json.dumps(asyncio.run(send(requests, url, in_flight))))


if __name__ == "__main__":
    main()
