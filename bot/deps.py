"""What the Slack handlers need, built once by the composition root and passed in."""

from __future__ import annotations

from dataclasses import dataclass

from .iot.service import OtaService
from .render import Renderer
from .slack.access import Admins
from .watch.store import Store
from .watch.watcher import Watcher


@dataclass(frozen=True)
class Deps:
    service: OtaService
    renderer: Renderer
    watcher: Watcher
    admins: Admins
    demo: bool = False  # every message says it shows demo data

    @property
    def store(self) -> Store:
        return self.watcher.store
