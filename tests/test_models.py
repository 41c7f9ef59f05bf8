"""The OtaJob model: every field optional, wrappers flattened, unknown fields kept."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.emulator import fixtures
from bot.iot.models import OtaJob


def test_spec_example_parses_every_field() -> None:
    """The specification's example response parses with types and wrappers flattened."""
    job = OtaJob.model_validate(fixtures.default_jobs()[fixtures.EXAMPLE_JOB_ID])
    assert job.job_status == "IN_PROGRESS"
    assert job.src_versions == ["1.0.0"]
    assert job.timeout_in_minutes == 5 and job.maximum_per_minute == 1000
    assert job.multi_module_mode is True and job.need_push is False
    assert job.utc_start_time == datetime(2019, 12, 28, 2, 43, 10, tzinfo=UTC)
    assert job.group_id is None  # "" in the response means absent
    assert job.extras == {}


def test_empty_data_is_a_job_of_unknowns() -> None:
    """A Data object with no fields still makes a job; nothing is required."""
    job = OtaJob.model_validate({})
    assert job.job_id is None and job.src_versions == [] and job.tags == []


def test_both_spellings_of_verify_job_type() -> None:
    """VERFIY_FIRMWARE (SDK, English doc) and VERIFY_FIRMWARE (Chinese doc) both mean verify."""
    assert OtaJob(job_type="VERFIY_FIRMWARE").is_verify
    assert OtaJob(job_type="VERIFY_FIRMWARE").is_verify
    assert not OtaJob(job_type="UPGRADE_FIRMWARE").is_verify


def test_wrappers_and_extras() -> None:
    """SrcVersions and Tags wrappers flatten, null wrappers are empty, new fields are kept."""
    job = OtaJob.model_validate(
        {
            "SrcVersions": None,
            "Tags": {"OtaTagDTO": [{"Key": "k", "Value": "v"}]},
            "GrayPercent": 50,
            "NewField": {"x": 1},
        }
    )
    assert job.src_versions == []
    assert [(t.key, t.value) for t in job.tags] == [("k", "v")]
    assert job.gray_percent == "50"
    assert job.extras == {"NewField": {"x": 1}}


def test_finished_statuses() -> None:
    """COMPLETED and CANCELED are final; PLANNED and IN_PROGRESS are not."""
    assert OtaJob(job_status="COMPLETED").is_finished
    assert OtaJob(job_status="CANCELED").is_finished
    assert not OtaJob(job_status="IN_PROGRESS").is_finished
