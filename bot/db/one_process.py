"""SQLite serves one otajob process: a second one started on the same file is refused.

Watches, poll leases, the outbox and the action log are safe across processes only on
PostgreSQL; on SQLite the app also relies on being alone (an action begun before this
process started belonged to a process that is gone, bot/slack/action_record.py). Two
processes on one file would each think so. The first takes an exclusive lock on
``<file>.lock`` for as long as it runs; the kernel releases it when the process ends,
however it ends (SIGKILL included), so a restart after a crash is never refused.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url


class AnotherProcess(Exception):
    """Another otajob process holds the SQLite file; the message says what to do."""


@dataclass
class ProcessLock:
    path: Path
    fd: int

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the descriptor releases the lock
            self.fd = -1


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for PostgreSQL or an in-memory SQLite."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        return None
    return Path(database)


def hold_sqlite(url: str) -> ProcessLock | None:
    """Take the file's lock for this process (None: not a SQLite file, nothing to hold).
    Raises AnotherProcess when another process has it."""
    database = sqlite_file(url)
    if database is None:
        return None
    lock_path = database.with_name(database.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AnotherProcess(
            f"Another otajob process is using the SQLite database {database} "
            "(DATABASE_URL). SQLite serves one process: stop the other one, or, to run "
            "several replicas, set DATABASE_URL to a PostgreSQL database "
            "(postgresql://user:password@host/db) for all of them."
        ) from None
    return ProcessLock(lock_path, fd)
