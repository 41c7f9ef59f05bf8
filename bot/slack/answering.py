"""Acknowledge at once, answer after: each listener's work runs apart from the request.

Bolt runs in ``process_before_response`` mode, so Slack's request is answered when the
listener registered with Bolt returns. ``Answering.after_ack`` wraps each of ours: the
listener runs as a task of its own, and the wrapper returns as soon as it calls ack() (or
ends), woken by a future. Bolt's own "ack first" mode instead looks for the ack every
10 ms per request: at 200 requests in flight, 20,000 wake-ups a second on the one event
loop, in front of the acknowledgements themselves (README, Benchmarks, "Capacity").

The answers under way are kept, so a shutdown lets them finish (``drain``), and an
exception after the ack reaches the same report as one before it.

Not done: a cap on answers at once. Tried at 32, it held places across each answer's
waits (the quota, Slack) and cut throughput to a third under a burst, for no gain in
acknowledgement time; the quota limiter already bounds the work that costs.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.kwargs_injection.async_args import AsyncArgs

log = logging.getLogger("otajob.answering")

Listener = Callable[..., Awaitable[None]]
Report = Callable[[Exception, dict[str, Any], Any], Awaitable[None]]


class Answering:
    """The answers under way (finished at shutdown). ``report(error, body, respond)`` is
    told of an exception raised after the ack; one raised before it goes to Bolt's error
    handler, as any listener's would."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self._tasks: set[asyncio.Task[None]] = set()

    def after_ack(self, listener: Listener) -> Listener:
        """The listener Bolt calls. One without an ``ack`` parameter (an event, which
        Bolt acknowledges itself) is acknowledged at once."""
        names = list(inspect.signature(listener).parameters)

        async def run(args: AsyncArgs) -> None:
            acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._work(listener, names, args, acked))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            if "ack" not in names:
                acked.set_result(None)
            await acked  # re-raises what the listener raised before its ack

        run.__name__ = run.__qualname__ = listener.__name__  # Bolt's log lines name it
        run.acks_first = True  # type: ignore[attr-defined]  # (tests/test_slack_app.py)
        return run

    async def _work(
        self, listener: Listener, names: list[str], args: AsyncArgs, acked: asyncio.Future[None]
    ) -> None:
        async def ack(*ack_args: Any, **ack_kwargs: Any) -> Any:
            answer = await args.ack(*ack_args, **ack_kwargs)
            if not acked.done():
                acked.set_result(None)
            return answer

        kwargs = {name: ack if name == "ack" else getattr(args, name) for name in names}
        try:
            await listener(**kwargs)
        except Exception as exc:
            if not acked.done():
                acked.set_exception(exc)
                return
            await self.report(exc, args.body, args.respond)
        finally:
            if not acked.done():
                acked.set_result(None)

    async def drain(self, timeout: float) -> None:
        """Let the answers under way finish, for at most ``timeout`` seconds; then cancel
        what is left (its person was acknowledged; the log says what was cut short)."""
        pending = set(self._tasks)
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=timeout)
        if late:
            log.warning("%d answers still under way at shutdown were cancelled", len(late))
        for task in late:
            task.cancel()
        for task in late:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
