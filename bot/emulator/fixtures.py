"""QueryOTAJob ``Data`` fixtures: the spec's example plus batches covering every mode.

IDs follow the real shape (26 characters, batch IDs ending in 0200, firmware in 0100).
"""

from __future__ import annotations

import copy
from typing import Any

from bot.iot import models

# The doc's example ID, masked with '*' as Alibaba's docs do; kept so the fixture is exact.
EXAMPLE_JOB_ID = "HvKuBpuk3rdk6E92CP****0200"
# The same job under an unmasked ID, as a real client would see one.
EXAMPLE_JOB_ID_UNMASKED = "HvKuBpuk3rdk6E92CPa1b20200"
PLANNED_JOB_ID = "Qk7wPLnSchd9XbR2TmVe3f0200"
COMPLETED_JOB_ID = "Zt3nDoNe8kLmWq4YhPc7Ra0200"
CANCELED_JOB_ID = "Cx9vCaNc2eLdJ5uTgHb6Ns0200"
GRAY_JOB_ID = "Gy4dGrAy7PcNt1KsVw8Lfe0200"
VERIFY_JOB_ID = "Vf2kVeRf6YmQa3ZnBj9Hxd0200"
HOSTILE_JOB_ID = "Hs8tHoSt1LeXp4RgCv2Mkq0200"
EXTRA_FIELD_JOB_ID = "Nf5wNeWf3LdUy7TaKb1Pzc0200"
NULL_SRC_JOB_ID = "Ns6rNuLl9SrCv2EoWd4Jqb0200"

HOSTILE_TEXT = "<!channel> deploy & <@U123> <http://evil|click>"

# QueryOTAJob.ja.txt's JSON example, field for field and in the same order (its `//`
# comments are translations in the doc, not part of the values).
SPEC_EXAMPLE: dict[str, Any] = {
    "TimeoutInMinutes": 5,
    "JobDesc": "batch upgrade",
    "DownloadProtocol": "HTTPS",
    "UtcStartTime": "2019-12-28T02:43:10.000Z",
    "UtcEndTime": "2019-12-29T02:43:10.000Z",
    "ProductKey": "a19mzPZ****",
    "UtcModified": "2019-12-28T02:43:10.000Z",
    "JobStatus": "IN_PROGRESS",
    "UtcCreate": "2019-12-28T02:43:10.000Z",
    "SelectionType": "STATIC",
    "TargetSelection": "SPECIFIC",
    "JobType": "UPGRADE_FIRMWARE",
    "GroupId": "",
    "GroupName": "",
    "RetryInterval": 60,
    "RetryCount": 1,
    "OverwriteMode": 1,
    "MultiModuleMode": True,
    "MaximumPerMinute": 1000,
    "SrcVersions": {"SrcVersion": ["1.0.0"]},
    "Name": "firmware2",
    "NeedConfirm": True,
    "NeedPush": False,
    "FirmwareId": "UfuxnwygsuSkVE0VCN****0100",
    "JobId": EXAMPLE_JOB_ID,
    "DestVersion": "1.0.1",
}


def make_job(job_id: str, **overrides: Any) -> dict[str, Any]:
    """A realistic IN_PROGRESS static batch; keyword arguments replace or add API fields."""
    job: dict[str, Any] = {
        "JobId": job_id,
        "JobStatus": "IN_PROGRESS",
        "JobType": "UPGRADE_FIRMWARE",
        "JobDesc": "Gateway firmware rollout",
        "Name": "gw-firmware-2.4.1",
        "FirmwareId": "Fw7kGwPkg2d4R8sLqT1Vb30100",
        "ProductKey": "a1Gw7Tk9Lmp",
        "SrcVersions": {"SrcVersion": ["2.3.0", "2.4.0"]},
        "DestVersion": "2.4.1",
        "SelectionType": "STATIC",
        "TargetSelection": "ALL",
        "DownloadProtocol": "HTTPS",
        "MultiModuleMode": False,
        "NeedConfirm": False,
        "NeedPush": True,
        "OverwriteMode": 1,
        "MaximumPerMinute": 500,
        "RetryCount": 2,
        "RetryInterval": 10,
        "TimeoutInMinutes": 60,
        "Tags": {"OtaTagDTO": [{"Key": "env", "Value": "prod"}]},
        "UtcCreate": "2024-05-14T01:00:00.000Z",
        "UtcModified": "2024-05-14T01:05:00.000Z",
        "UtcStartTime": "2024-05-14T01:05:00.000Z",
    }
    job.update(overrides)
    return job


def _without(job: dict[str, Any], *keys: str) -> dict[str, Any]:
    """Drop fields: the API omits fields that do not apply rather than sending null."""
    return {k: v for k, v in job.items() if k not in keys}


def _fixtures() -> list[dict[str, Any]]:
    return [
        SPEC_EXAMPLE,
        {**SPEC_EXAMPLE, "JobId": EXAMPLE_JOB_ID_UNMASKED},
        _without(
            make_job(
                PLANNED_JOB_ID,
                JobStatus="PLANNED",
                JobDesc="Night window rollout for Tokyo gateways",
                UtcModified="2024-05-14T01:00:00.000Z",
                UtcScheduleTime="2024-05-20T15:00:00.000Z",
                UtcScheduleFinishTime="2024-05-20T21:00:00.000Z",
            ),
            "UtcStartTime",  # a planned batch has not started
        ),
        make_job(
            COMPLETED_JOB_ID,
            JobStatus="COMPLETED",
            JobDesc="Security patch CVE backport",
            DestVersion="2.3.9",
            SrcVersions={"SrcVersion": ["2.3.8"]},
            UtcModified="2024-05-10T06:30:00.000Z",
            UtcEndTime="2024-05-10T06:30:00.000Z",
        ),
        make_job(
            CANCELED_JOB_ID,
            JobStatus="CANCELED",
            JobDesc="Rollback: bad bootloader",
            UtcModified="2024-05-12T03:15:00.000Z",
            UtcEndTime="2024-05-12T03:15:00.000Z",
        ),
        make_job(
            GRAY_JOB_ID,
            JobDesc="Phased rollout to the beta group",
            SelectionType="DYNAMIC",
            TargetSelection="GRAY",
            GrayPercent="50.00",
            DynamicMode=1,
            GroupId="CtjzCkNuOxURa7Kd",
            GroupName="beta-gateways",
            Tags={
                "OtaTagDTO": [
                    {"Key": "env", "Value": "beta"},
                    {"Key": "region", "Value": "ap-northeast-1"},
                ]
            },
        ),
        _without(
            make_job(
                VERIFY_JOB_ID,
                JobType="VERFIY_FIRMWARE",  # the SDK's spelling, typo included
                JobDesc="Verify package on lab devices",
                TargetSelection="SPECIFIC",
            ),
            "Tags",
        ),
        make_job(
            HOSTILE_JOB_ID,
            JobDesc=HOSTILE_TEXT,
            Tags={"OtaTagDTO": [{"Key": "owner", "Value": HOSTILE_TEXT}]},
        ),
        make_job(EXTRA_FIELD_JOB_ID, NewField="x"),
        make_job(NULL_SRC_JOB_ID, SrcVersions=None, JobDesc="Any version to 2.4.1"),
    ]


def default_jobs() -> dict[str, dict[str, Any]]:
    """JobId -> Data, fresh copies each call so one emulator's edits never leak into another."""
    jobs: dict[str, dict[str, Any]] = {}
    for job in _fixtures():
        jobs[job["JobId"]] = copy.deepcopy(job)
    return jobs


# --- ListOTATaskByJob: device tasks --------------------------------------------------

TASK_STATUSES = models.TASK_STATUSES
# TaskDesc values for FAILED tasks; a timed-out device shows as FAILED with its reason here.
DEFAULT_FAILURE_REASONS = (
    "download timeout",
    "verify failed: checksum mismatch",
    "device offline",
    "upgrade timeout: no progress reported",
    "flash write failed: not enough space",
)
# SimpleOTATaskInfo carries ProductName; QueryOTAJob's Data does not, so it lives here.
PRODUCT_NAME = "Smart gateway"
# Device version used when a job has no SrcVersions (an "any version" batch).
FALLBACK_SRC_VERSION = "2.3.0"

# Per-status task counts by JobStatus; jobs minted by auto_jobs are IN_PROGRESS.
TASKS_BY_JOB_STATUS: dict[str, dict[str, int]] = {
    "PLANNED": {},  # a scheduled batch has created no device tasks yet
    "IN_PROGRESS": {"SUCCEEDED": 4, "IN_PROGRESS": 2, "QUEUED": 3, "FAILED": 1},
    "COMPLETED": {"SUCCEEDED": 18, "FAILED": 2},
    "CANCELED": {"SUCCEEDED": 5, "FAILED": 1, "CANCELED": 6},
}
# Fixtures whose tasks differ from their status's default.
_SPEC_EXAMPLE_TASKS = {
    "CONFIRM": 1,  # the spec example has NeedConfirm true
    "QUEUED": 3,
    "NOTIFIED": 1,
    "IN_PROGRESS": 2,
    "SUCCEEDED": 5,
    "FAILED": 2,
}
_TASKS_BY_JOB_ID: dict[str, dict[str, int]] = {
    EXAMPLE_JOB_ID: _SPEC_EXAMPLE_TASKS,
    EXAMPLE_JOB_ID_UNMASKED: _SPEC_EXAMPLE_TASKS,
    HOSTILE_JOB_ID: {"SUCCEEDED": 2, "IN_PROGRESS": 1, "FAILED": 2},
}
_FAILURE_REASONS_BY_JOB_ID: dict[str, tuple[str, ...]] = {
    HOSTILE_JOB_ID: (HOSTILE_TEXT, "verify failed: <b>checksum</b> & *size* mismatch `x`"),
}


def default_tasks(job: dict[str, Any]) -> tuple[dict[str, int], tuple[str, ...]]:
    """(per-status task counts, FAILED TaskDesc cycle) a new job starts with."""
    job_id = job.get("JobId", "")
    counts = _TASKS_BY_JOB_ID.get(job_id)
    if counts is None:
        counts = TASKS_BY_JOB_STATUS.get(job.get("JobStatus") or "", {})
    reasons = _FAILURE_REASONS_BY_JOB_ID.get(job_id, DEFAULT_FAILURE_REASONS)
    return dict(counts), reasons
