"""What the Slack surfaces need, built once by the composition root and handed in whole:
each part is a field, so no surface reaches through one object for another."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

from ..db import Store
from ..iot.service import OtaService
from ..render import Renderer
from ..watch.poster import SlackPoster
from ..watch.watcher import Watcher
from .access import Admins
from .answering import Answering
from .kept import Kept
from .language import Languages


@dataclass(frozen=True)
class Deps:
    service: OtaService
    renderer: Renderer
    watcher: Watcher
    store: Store
    poster: SlackPoster  # posts that must not be made twice, DMs, uploads
    # The app's own Web API client. Bolt hands each request a new one; caches that must
    # outlive a request (membership, card links) are kept per this client.
    client: AsyncWebClient
    admins: Admins
    languages: Languages
    kept: Kept  # what the surfaces keep between requests
    answering: Answering  # each listener's work after its ack
    demo: bool = False  # every message says it shows demo data
