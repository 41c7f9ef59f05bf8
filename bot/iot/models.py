"""Typed views of the OTA API's response data.

Every field is optional: the API omits many of them depending on the batch's mode, and a
missing field must never break a card. Unknown fields are kept (``extras``) so a field
Alibaba adds later is still shown rather than silently dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_pascal

# The SDK and the English doc spell the verification type VERFIY_FIRMWARE; the Chinese doc
# spells it VERIFY_FIRMWARE. Both mean the same thing.
VERIFY_JOB_TYPES = frozenset({"VERFIY_FIRMWARE", "VERIFY_FIRMWARE"})
JOB_STATUSES = ("PLANNED", "IN_PROGRESS", "COMPLETED", "CANCELED")
FINISHED_STATUSES = frozenset({"COMPLETED", "CANCELED"})
# A device's task in a batch, in the order a rollout moves through them.
TASK_STATUSES = (
    "CONFIRM",
    "QUEUED",
    "NOTIFIED",
    "IN_PROGRESS",
    "SUCCEEDED",
    "FAILED",
    "CANCELED",
)


class Tag(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True)

    key: str | None = None
    value: str | None = None


def _unwrap(value: Any, inner: str) -> Any:
    """``{"SrcVersion": [...]}`` -> ``[...]``; null or absent -> ``[]``."""
    if value is None:
        return []
    if isinstance(value, dict):
        value = value.get(inner) or []
    if not isinstance(value, list):
        value = [value]
    return value


class OtaJob(BaseModel):
    """QueryOTAJob's ``Data``, field names as the API spells them (PascalCase aliases)."""

    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True, extra="allow")

    job_id: str | None = None
    job_status: str | None = None
    job_type: str | None = None
    job_desc: str | None = None
    name: str | None = None
    firmware_id: str | None = None
    product_key: str | None = None
    src_versions: list[str] = Field(default_factory=list)
    dest_version: str | None = None
    selection_type: str | None = None
    target_selection: str | None = None
    gray_percent: str | None = None
    dynamic_mode: int | None = None
    group_id: str | None = None
    group_name: str | None = None
    download_protocol: str | None = None
    multi_module_mode: bool | None = None
    need_confirm: bool | None = None
    need_push: bool | None = None
    overwrite_mode: int | None = None
    maximum_per_minute: int | None = None
    retry_count: int | None = None
    retry_interval: int | None = None
    timeout_in_minutes: int | None = None
    tags: list[Tag] = Field(default_factory=list)
    utc_create: datetime | None = None
    utc_modified: datetime | None = None
    utc_start_time: datetime | None = None
    utc_end_time: datetime | None = None
    utc_schedule_time: datetime | None = None
    utc_schedule_finish_time: datetime | None = None

    @field_validator("src_versions", mode="before")
    @classmethod
    def _flatten_src_versions(cls, value: Any) -> list[str]:
        return [str(v) for v in _unwrap(value, "SrcVersion") if v is not None]

    @field_validator("tags", mode="before")
    @classmethod
    def _flatten_tags(cls, value: Any) -> list[Any]:
        return [t for t in _unwrap(value, "OtaTagDTO") if isinstance(t, dict)]

    @field_validator("gray_percent", mode="before")
    @classmethod
    def _percent_as_text(cls, value: Any) -> Any:
        return None if value is None else str(value)

    @field_validator(
        "utc_create",
        "utc_modified",
        "utc_start_time",
        "utc_end_time",
        "utc_schedule_time",
        "utc_schedule_finish_time",
        "job_desc",
        "group_id",
        "group_name",
        mode="before",
    )
    @classmethod
    def _empty_is_absent(cls, value: Any) -> Any:
        return None if value == "" else value

    @classmethod
    def parse(cls, data: dict[str, Any]) -> OtaJob:
        """Like model_validate, but a field whose value has an unexpected shape becomes
        None, its raw value kept among the extras, instead of costing the whole card."""
        data = dict(data)
        unreadable: dict[str, Any] = {}
        while True:
            try:
                job = cls.model_validate(data)
                break
            except ValidationError as exc:
                keys = {e["loc"][0] for e in exc.errors() if e["loc"] and e["loc"][0] in data}
                if not keys:
                    raise
                for key in keys:
                    unreadable[str(key)] = data.pop(key)
        if unreadable and job.__pydantic_extra__ is not None:
            job.__pydantic_extra__.update(unreadable)
        return job

    @property
    def is_verify(self) -> bool:
        return self.job_type in VERIFY_JOB_TYPES

    @property
    def is_finished(self) -> bool:
        return self.job_status in FINISHED_STATUSES

    @property
    def extras(self) -> dict[str, Any]:
        """Fields the API returned that this model does not know yet."""
        return dict(self.model_extra or {})


class JobResult(BaseModel):
    """A job with the RequestId of the call that read it and when it was read, so a cached
    answer never passes for a fresh one."""

    job: OtaJob
    request_id: str | None = None
    fetched_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    raw: dict[str, Any] = Field(default_factory=dict)


class TaskCounts(BaseModel):
    """Devices per task status (ListOTATaskByJob's Total for each status)."""

    counts: dict[str, int]
    request_ids: list[str] = Field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def of(self, status: str) -> int:
        return self.counts.get(status, 0)

    @property
    def finished(self) -> int:
        """Devices whose update has an outcome: succeeded or failed."""
        return self.of("SUCCEEDED") + self.of("FAILED")

    @property
    def failure_rate(self) -> float | None:
        """Failed among devices with an outcome; None before any device finished. Counting
        against the whole fleet would hide a bad rollout behind the devices still queued."""
        return self.of("FAILED") / self.finished if self.finished else None

    @property
    def done(self) -> int:
        """Devices that will not change without someone acting: succeeded, failed, canceled."""
        return self.finished + self.of("CANCELED")


class _Lenient(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True, extra="ignore")

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_absent(cls, value: Any) -> Any:
        return None if value == "" else value

    @classmethod
    def parse(cls, data: Any) -> Self:
        """Never fails: a field of an unexpected shape is dropped, not the whole row."""
        data = dict(data) if isinstance(data, dict) else {}
        for _ in range(len(data) + 1):
            try:
                return cls.model_validate(data)
            except ValidationError as exc:
                for error in exc.errors():
                    if error["loc"]:
                        data.pop(str(error["loc"][0]), None)
        return cls()


class OtaTask(_Lenient):
    """One device's task in a batch (ListOTATaskByJob's SimpleOTATaskInfo)."""

    task_id: str | None = None
    task_status: str | None = None
    task_desc: str | None = None  # the failure reason, for a failed device
    progress: int | None = None
    device_name: str | None = None
    product_key: str | None = None
    iot_id: str | None = None
    src_version: str | None = None
    dest_version: str | None = None
    utc_create: datetime | None = None
    utc_modified: datetime | None = None


class JobSummary(_Lenient):
    """A batch in a listing (SimpleOTAJobInfo)."""

    job_id: str | None = None
    job_status: str | None = None
    job_type: str | None = None
    firmware_id: str | None = None
    product_key: str | None = None
    selection_type: str | None = None
    target_selection: str | None = None
    utc_create: datetime | None = None
    utc_modified: datetime | None = None
    utc_start_time: datetime | None = None
    utc_end_time: datetime | None = None

    @property
    def created_ts(self) -> float:
        """For sorting newest first; a batch without a creation time sorts last."""
        return self.utc_create.timestamp() if self.utc_create else 0.0


class Firmware(_Lenient):
    """An OTA update package (ListOTAFirmware's SimpleFirmwareInfo), as far as we use it."""

    firmware_id: str | None = None
    firmware_name: str | None = None
    product_key: str | None = None
    dest_version: str | None = None
    utc_create: datetime | None = None


class Page(BaseModel):
    """One page of a listing, with the RequestId of the call that read it."""

    items: list[Any]
    total: int
    request_id: str | None = None
