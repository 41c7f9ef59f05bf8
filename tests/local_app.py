"""``python app.py`` with no settings at all, as a newcomer runs it, for the local surface's
tests: the process, its address, and reading the page's state over HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import clean_env, free_port, texts_in

ROOT = Path(__file__).resolve().parent.parent
START_SECONDS = 60.0
# Nothing of the developer's own setup may leak in: the point is a machine with none.
SETTING_PREFIXES = ("SLACK_", "ALIBABA_CLOUD_", "OTAJOB_", "IOT_", "WATCH_", "DATABASE_URL")


class LocalApp:
    """The app in local mode, in its own process; ``url`` is the page's address."""

    def __init__(self, home: Path, extra_env: dict[str, str | None] | None = None) -> None:
        """``extra_env`` adds variables to the app's environment; a None value removes one."""
        env = {k: v for k, v in clean_env().items() if not k.startswith(SETTING_PREFIXES)}
        self.port = free_port()
        env |= {"PORT": str(self.port), "HOME": str(home), "PYTHONUNBUFFERED": "1"}
        env["OTAJOB_ENV_FILE"] = str(home / "no.env")  # a developer's .env stays out too
        for name, value in (extra_env or {}).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        self.process = subprocess.Popen(
            [sys.executable, "app.py"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        self.url = ""
        ready = threading.Event()

        def read() -> None:  # the printed address is the signal that the page is up
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line)
                if line.startswith("Open http://"):
                    self.url = line.split()[1]
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(START_SECONDS) or not self.url:
            self.stop()
            raise AssertionError("the local app did not start:\n" + "".join(self.output))
        self.http = httpx.Client(base_url=self.url, timeout=40.0)
        self.version = -1

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if getattr(self, "http", None) is not None:
            self.http.close()

    # ---- driving it as the page does --------------------------------------------------
    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(path, json=body)
        return response.json()

    def say(self, text: str, channel: str = "C0ROLLOUT1", thread_ts: str | None = None) -> None:
        answer = self.post(
            "/local/api/say", {"channel": channel, "text": text, "thread_ts": thread_ts}
        )
        assert answer == {"ok": True}, answer

    def state(self) -> dict[str, Any]:
        return self.http.get("/local/api/state").json()

    def wait_for(self, what: str, found: Callable[[dict], Any], timeout: float = 45.0) -> Any:
        """Long-poll the page's state until ``found(state)`` is truthy; return that."""
        deadline = time.monotonic() + timeout
        state = self.state()
        while not (hit := found(state)):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"waited {timeout}s for {what}; state:\n{_short(state)}")
            since = state["version"]
            state = self.http.get("/local/api/state", params={"since": since}).json()
        return hit


def _short(state: dict) -> str:
    return json.dumps(
        {k: state.get(k) for k in ("version", "ephemerals", "messages", "modal", "home")}
    )[:4000]


def texts(blocks: list[dict]) -> str:
    """Every text in a Block Kit list, joined: what a reader sees, for assertions."""
    return "\n".join(texts_in(blocks))


def buttons(blocks: list[dict]) -> dict[str, dict]:
    """The buttons in `blocks` by action_id, with the block_id they are in."""
    found: dict[str, dict] = {}
    for block in blocks:
        elements = list(block.get("elements", []))
        if isinstance(block.get("accessory"), dict):
            elements.append(block["accessory"])
        for element in elements:
            if element.get("type") == "button":
                found[element["action_id"]] = element | {"block_id": block.get("block_id")}
    return found
