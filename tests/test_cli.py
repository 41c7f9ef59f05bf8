"""``python -m bot job <JobId>`` through its real entry function, against the emulator."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot import cli
from bot.emulator import fixtures
from tests.helpers import TEST_KEY_ID, TEST_KEY_SECRET

JOB = fixtures.EXAMPLE_JOB_ID_UNMASKED
INSTANCE = "iot-cn-clitest01"


@pytest.fixture
def cli_env(emulator, monkeypatch, tmp_path):
    """The CLI's settings and Alibaba's credential chain, from the environment only."""
    for name in (
        "IOT_INSTANCE_ID",
        "IOT_SIGNATURE",
        "OTAJOB_DEMO",
        "ALIBABA_CLOUD_SECURITY_TOKEN",
        "ALIBABA_CLOUD_PROFILE",
        "ALIBABA_CLOUD_CREDENTIALS_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTAJOB_ENV_FILE", str(tmp_path / "no.env"))
    monkeypatch.setenv("IOT_ENDPOINT", emulator.base_url)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", TEST_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", TEST_KEY_SECRET)
    return emulator


async def run_cli(*argv: str) -> int:
    # main() runs its own event loop; the emulator keeps serving on this one.
    return await asyncio.to_thread(cli.main, list(argv))


@pytest.mark.parametrize("typed", [f'"{JOB}"', f"`{JOB}`", f"“{JOB}”", f"<{JOB}>"])
async def test_a_quoted_job_id_is_sent_cleaned(cli_env, capsys, typed) -> None:
    """A JobId pasted with quotes or backticks passes the check, and the cleaned JobId is
    what goes to the API: the batch is found."""
    assert await run_cli("job", typed, "--json") == 0
    assert json.loads(capsys.readouterr().out)["JobId"] == JOB
    assert cli_env.calls[-1].params["JobId"] == JOB


async def test_a_quoted_instance_id_is_sent_cleaned(cli_env, capsys) -> None:
    cli_env.add_job(fixtures.make_job("CliJob00000000000000001"), instance_id=INSTANCE)
    code = await run_cli("job", "`CliJob00000000000000001`", "--instance", f"'{INSTANCE}'")
    assert code == 0, capsys.readouterr().err
    assert "CliJob00000000000000001" in capsys.readouterr().out
    assert cli_env.calls[-1].params["IotInstanceId"] == INSTANCE


async def test_an_unknown_job_prints_code_and_request_id(cli_env, capsys) -> None:
    assert await run_cli("job", "NoSuchJob000000000000001") == 1
    err = capsys.readouterr().err
    assert "Code: iot.ota.JobNotFound" in err and "RequestId: none" not in err


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["--lang", "ja"], {"LANG": "en_US.UTF-8"}, "実行中"),
        (["--lang", "zh"], {}, "执行中"),
        ([], {"LANG": "ja_JP.UTF-8"}, "実行中"),
        ([], {"LANG": "ja_JP.UTF-8", "LC_ALL": "zh_CN.UTF-8"}, "执行中"),  # LC_ALL wins
        ([], {"LANG": "fr_FR.UTF-8"}, "In progress"),  # a language otajob does not speak
    ],
)
async def test_the_terminal_speaks_lang_or_the_locale(
    cli_env, capsys, monkeypatch, args, env, says
) -> None:
    """`--lang`, else LC_ALL / LC_MESSAGES / LANG, picks the card's language."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert await run_cli("job", JOB, *args) == 0
    assert says in capsys.readouterr().out


async def test_an_unknown_lang_is_refused(cli_env, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        await run_cli("job", JOB, "--lang", "klingon")
    assert exit_info.value.code == 2 and "en, ja, zh" in capsys.readouterr().err
