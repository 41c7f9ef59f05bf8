"""The composition root's parts: settings -> clients, service, renderer -> AsyncApp.

``build_runtime`` is what app.py runs and what tests build too, pointed at the local
emulator and fake Slack, so tests exercise the same wiring as production.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.middleware.authorization.async_single_team_authorization import (
    AsyncSingleTeamAuthorization,
)
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from .config import ConfigError, IotSettings, Settings
from .db import Store
from .db.one_process import AnotherProcess, ProcessLock, hold_sqlite
from .db.shared_quota import SharedWindowLimiter
from .db.shared_reads import (
    SharedReads,
    dump_failures,
    dump_job,
    parse_failures,
    parse_job,
)
from .iot.client import IotClient, RetryPolicy
from .iot.credentials import Credential, CredentialSource, DefaultCredentialChain, StaticCredentials
from .iot.http import IotHttp
from .iot.push import PushSubscription, PushTarget
from .iot.quota import SlidingWindowLimiter
from .iot.service import LISTING_SECONDS, OtaService
from .metrics import Metrics
from .render import Renderer
from .slack.access import Admins, Policy
from .slack.action_record import report_interrupted_forever
from .slack.answering import Answering
from .slack.deps import Deps
from .slack.errors import Unexpected
from .slack.kept import Kept
from .slack.language import Languages
from .slack.slack_calls import SlackCallCounter
from .slack.surfaces import register_all
from .watch.poster import SlackPoster
from .watch.watcher import Watcher, WatchSettings

if TYPE_CHECKING:
    from .emulator import IotEmulator

ANSWERS_DRAIN_SECONDS = 10.0  # at shutdown, for answers already under way
log = logging.getLogger("otajob")


@dataclass
class IotParts:
    client: IotClient
    http: IotHttp
    limiter: SlidingWindowLimiter
    demo: bool
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # The in-process emulator in demo mode (the local chat surface's panel drives it).
    emulator: IotEmulator | None = None
    credentials: CredentialSource | None = None  # what the client signs with
    push_url: str | None = None  # the emulator's push subscription, in demo mode

    async def aclose(self) -> None:
        await self.http.aclose()
        for close in reversed(self.closers):
            await close()


async def build_iot(
    settings: IotSettings,
    *,
    credentials: CredentialSource | None = None,
    background_share: float = 1.0,
    metrics: Metrics | None = None,
    shared_quota: AsyncEngine | None = None,
) -> IotParts:
    """The signed client; in demo mode, with the emulator started in this process."""
    closers: list[Callable[[], Awaitable[None]]] = []
    endpoint = settings.iot_base_url
    emulator = None
    push_url = None
    if settings.otajob_demo:
        from .emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, IotEmulator

        emulator = IotEmulator(qps=settings.iot_qps)
        endpoint = await emulator.start()
        closers.append(emulator.stop)
        credentials = StaticCredentials(Credential(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET))
        log.info("demo mode: answering from the built-in IoT emulator at %s", endpoint)
        push_url = await emulator.start_push()
    http = IotHttp(settings.iot_timeout_seconds, endpoint)
    # Watchers may use WATCH_QPS_SHARE of the quota, so people's queries stay fast.
    background_limit = max(1, int(settings.iot_qps * background_share))
    if shared_quota is not None:  # every replica on this database: one window
        limiter: SlidingWindowLimiter = SharedWindowLimiter(
            shared_quota, settings.iot_qps, background_limit=background_limit
        )
    else:
        limiter = SlidingWindowLimiter(settings.iot_qps, background_limit=background_limit)
    credentials = credentials or DefaultCredentialChain()
    client = IotClient(
        http,
        credentials,
        endpoint=endpoint,
        limiter=limiter,
        signature=settings.iot_signature,
        retry=RetryPolicy(total_seconds=settings.iot_retry_seconds),
        metrics=metrics,
    )
    return IotParts(
        client, http, limiter, settings.otajob_demo, closers, emulator, credentials, push_url
    )


def configure_web_client(
    client: AsyncWebClient, settings: Settings, metrics: Metrics | None = None
) -> None:
    """Bolt builds the client from the token; we point it and add a 429 retry (and, first,
    the counter of every call for /metrics: Bolt copies these into each request's client)."""
    if settings.slack_api_url:  # slack_sdk joins method names onto it: keep the slash
        client.base_url = settings.slack_api_url.rstrip("/") + "/"
    if metrics is not None:
        client.retry_handlers.insert(0, SlackCallCounter(metrics))
    # slack_sdk retries connection errors by default; honour Retry-After on 429 too.
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))


@dataclass
class Runtime:
    app: AsyncApp
    deps: Deps
    iot: IotParts
    store: Store
    settings: Settings
    push: PushSubscription | None = None
    lock: ProcessLock | None = None  # SQLite: this process is its only user
    metrics: Metrics = field(default_factory=Metrics)
    token_checked_until: float = 0.0  # /readyz: until when auth.test's yes holds

    # When it was built, before serving anything: on SQLite, actions begun before this
    # moment belonged to a process that is gone.
    built_at: float = field(default_factory=time.time)
    _background: list[asyncio.Task[None]] = field(default_factory=list)

    async def warm(self) -> None:
        """Before a server listens: what the first burst of requests would otherwise all
        wait on. Templates are compiled, and Bolt is told who the token is (its
        authorization asks auth.test on every request until one answer is in: 200 at a
        cold start)."""
        self.deps.renderer.warm(self.settings.otajob_language)
        for middleware in self.app._async_middleware_list:  # pinned Bolt; tests/test_server
            if isinstance(middleware, AsyncSingleTeamAuthorization):
                # On failure Bolt asks again per request, as before; /readyz says why.
                with contextlib.suppress(Exception):
                    middleware.auth_test_result = await self.app.client.auth_test()

    def start(self) -> None:
        """Start background work: the watcher's poll loop, and reporting write actions
        that a crash interrupted (at start, then every minute)."""
        self.deps.watcher.start()
        if self.push is not None:
            self.push.start()
        reporting = report_interrupted_forever(self.deps, started_at=self.built_at)
        self._background.append(asyncio.create_task(reporting))

    async def aclose(self) -> None:
        for task in self._background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.push is not None:
            await self.push.stop()
        # Answers to people already acknowledged finish first: they still need the API,
        # Slack and the database.
        await self.deps.answering.drain(ANSWERS_DRAIN_SECONDS)
        await self.deps.watcher.stop()  # lets polls and posts under way finish
        await self.store.close()
        await self.iot.aclose()
        if self.app.client.session is not None:
            await self.app.client.session.close()
        if self.lock is not None:
            self.lock.release()


async def build_runtime(
    settings: Settings, *, credentials: CredentialSource | None = None
) -> Runtime:
    metrics = Metrics()
    try:
        lock = hold_sqlite(settings.database_url)
    except AnotherProcess as exc:
        raise ConfigError(str(exc)) from None
    store = await Store.open(settings.database_url)
    # On PostgreSQL the replicas of a deployment share one quota (the account's).
    shared = None if store.single_process else store.engine
    iot = await build_iot(
        settings,
        credentials=credentials,
        background_share=settings.watch_qps_share,
        metrics=metrics,
        shared_quota=shared,
    )
    # One aiohttp session for every Web API call (Bolt hands each request a client on
    # it): connections are kept alive, where slack_sdk alone opens a session per call.
    token = settings.slack_bot_token.get_secret_value()
    app = AsyncApp(
        client=AsyncWebClient(token=token, session=aiohttp.ClientSession()),
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        # A listener's work runs apart from the request (slack/answering.py): Bolt answers
        # Slack as soon as the listener acks, without looking for the ack every 10 ms.
        process_before_response=True,
    )
    configure_web_client(app.client, settings, metrics)
    service = OtaService(
        iot.client,
        cache_seconds=settings.iot_cache_seconds,
        default_instance_id=settings.iot_instance_id,
        failed_max=settings.otajob_failed_max,
        metrics=metrics,
        # On PostgreSQL, identical reads on different replicas cost one call.
        shared_jobs=None
        if shared is None
        else SharedReads(shared, settings.iot_cache_seconds, dump_job, parse_job),
        # and paging a failed-device listing, or its CSV, reads the failures once.
        shared_failures=None
        if shared is None
        else SharedReads(shared, LISTING_SECONDS, dump_failures, parse_failures),
    )
    renderer = Renderer()
    poster = SlackPoster(app.client)
    watcher = Watcher(
        store,
        service,
        renderer,
        poster,
        WatchSettings(
            poll_seconds=settings.watch_poll_seconds,
            max_days=settings.watch_max_days,
            safety_poll_seconds=settings.watch_safety_poll_seconds,
            budget_per_second=iot.limiter.background_limit,
        ),
        demo=iot.demo,
        language=settings.otajob_language,
    )
    policy = Policy.from_settings(settings)
    if policy.actions and not policy.admins:
        log.warning("OTAJOB_ACTIONS is set but OTAJOB_ADMINS is empty: nobody can use them")
    languages = Languages(settings.otajob_language, app.client, watcher.channel_language)
    deps = Deps(
        service=service,
        renderer=renderer,
        watcher=watcher,
        store=store,
        poster=poster,
        client=app.client,
        admins=Admins(policy, app.client),
        languages=languages,
        kept=Kept(store),
        answering=Answering(Unexpected(renderer, languages, demo=iot.demo)),
        demo=iot.demo,
    )
    register_all(app, deps, policy)
    push = build_push(settings, iot, watcher)
    return Runtime(
        app=app,
        deps=deps,
        iot=iot,
        store=store,
        settings=settings,
        push=push,
        lock=lock,
        metrics=metrics,
    )


def build_push(settings: Settings, iot: IotParts, watcher: Watcher) -> PushSubscription | None:
    """The push subscription when IOT_PUSH_URL is set (or the demo emulator serves one).
    Bad settings are logged once and the app polls, as without push."""
    url = settings.iot_push_url or iot.push_url
    if not url or iot.credentials is None:
        return None
    try:
        target = PushTarget.parse(url)
    except ValueError as exc:
        log.error("IOT_PUSH_URL not understood (%s); watched batches are polled only", exc)
        return None
    return PushSubscription(
        target,
        iot.credentials,
        client_id=settings.iot_push_client_id or default_client_id(),
        consumer_group=settings.iot_push_consumer_group,
        instance_id=settings.iot_instance_id,
        on_event=watcher.on_push_event,
        on_state=watcher.on_push_state,
    )


def default_client_id() -> str:
    """Unique per replica, as Alibaba asks of each connection's clientId: host name and
    process ID, in the letters a clientId may hold."""
    raw = f"otajob-{socket.gethostname()}-{os.getpid()}"
    return re.sub(r"[^A-Za-z0-9_.-]", "-", raw)[:64]
