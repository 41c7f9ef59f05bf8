"""Failed devices of a batch: pages for Slack and the CSV of all of them. Pure functions."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC

from .iot.models import OtaTask

# Device rows per Slack message: ten rows of hostile-length data, the reasons and the
# buttons stay under Slack's message size limit.
PAGE_SIZE = 10
TOP_REASONS = 8
# The API's field names, one per column; the header row shows them in the reader's
# language (templates/csv_header.txt.j2, in this order).
CSV_COLUMNS = (
    "DeviceName",
    "ProductKey",
    "IotId",
    "SrcVersion",
    "DestVersion",
    "TaskId",
    "Progress",
    "UtcModified",
    "TaskDesc",
)
# A cell a spreadsheet would run as a formula: shown as text instead (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class DevicePage:
    tasks: list[OtaTask]
    page: int  # 1-based
    pages: int

    @property
    def first_row(self) -> int:
        return (self.page - 1) * PAGE_SIZE + 1


def page_of(tasks: list[OtaTask], page: int) -> DevicePage:
    """One page of devices, the most recently updated first; ``page`` is clamped."""
    ordered = sorted(tasks, key=_modified, reverse=True)
    pages = max(1, -(-len(ordered) // PAGE_SIZE))
    page = min(max(page, 1), pages)
    start = (page - 1) * PAGE_SIZE
    return DevicePage(ordered[start : start + PAGE_SIZE], page, pages)


def _modified(task: OtaTask) -> float:
    return task.utc_modified.timestamp() if task.utc_modified else 0.0


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(tasks: list[OtaTask], header: Sequence[str] = CSV_COLUMNS) -> bytes:
    """UTF-8 with a byte-order mark, so spreadsheet apps read non-ASCII reasons right.
    ``header``: the column names, one for each of CSV_COLUMNS."""
    if len(header) != len(CSV_COLUMNS):
        raise ValueError(f"{len(header)} column names for {len(CSV_COLUMNS)} columns")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(_cell(name) for name in header)
    for task in sorted(tasks, key=lambda t: (t.device_name or "", t.task_id or "")):
        modified = task.utc_modified
        writer.writerow(
            _cell(v)
            for v in (
                task.device_name,
                task.product_key,
                task.iot_id,
                task.src_version,
                task.dest_version,
                task.task_id,
                task.progress,
                modified.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if modified else "",
                task.task_desc,
            )
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")
