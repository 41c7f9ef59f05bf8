"""SQLite serves one otajob process: a second app.py on the same file is refused at start
with a message naming PostgreSQL; after the first one dies (even by SIGKILL) it starts."""

from __future__ import annotations

import asyncio
import signal
import sys

import pytest

from bot.db.one_process import AnotherProcess, hold_sqlite, sqlite_file
from tests.helpers import ROOT, app_env, free_port, start_app, stop


def test_only_a_sqlite_file_is_held(tmp_path) -> None:
    """PostgreSQL and in-memory SQLite hold nothing; a file is held once at a time."""
    assert sqlite_file("postgresql://u:p@db/otajob") is None
    assert sqlite_file("sqlite://") is None and sqlite_file("sqlite:///:memory:") is None
    url = f"sqlite:///{tmp_path}/otajob.db"
    first = hold_sqlite(url)
    assert first is not None
    with pytest.raises(AnotherProcess, match="PostgreSQL"):
        hold_sqlite(url)
    first.release()
    again = hold_sqlite(url)  # released: the next process may have it
    assert again is not None
    again.release()


@pytest.mark.slow
async def test_a_second_app_on_the_same_sqlite_file_is_refused(emulator, fake_slack, tmp_path):
    port, other_port = free_port(), free_port()
    env = app_env(emulator, fake_slack, tmp_path, "60", port)
    first = await start_app(env, port)
    try:
        second = await asyncio.create_subprocess_exec(
            sys.executable,
            "app.py",
            cwd=ROOT,
            env=env | {"PORT": str(other_port)},
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(second.communicate(), 30)
        assert second.returncode == 2
        said = err.decode()
        assert "Another otajob process is using the SQLite database" in said
        assert "PostgreSQL" in said and "Traceback" not in said
        # The first one dies without cleaning up: the next start is not refused.
        first.send_signal(signal.SIGKILL)
        await first.wait()
        first = await start_app(env, port)
    finally:
        await stop(first)
