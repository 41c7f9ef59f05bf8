"""Settings: one clear message naming every missing or bad variable, never a secret."""

from __future__ import annotations

import os

import pytest

from bot.config import ConfigError, load_env_file, load_settings


def test_missing_settings_are_all_named() -> None:
    """With nothing set, the error names each required variable."""
    with pytest.raises(ConfigError) as info:
        load_settings({})
    assert "SLACK_BOT_TOKEN" in str(info.value) and "SLACK_SIGNING_SECRET" in str(info.value)


def test_invalid_value_is_named_without_echoing_secrets() -> None:
    """A bad value is reported by name; token values never appear in the message."""
    with pytest.raises(ConfigError) as info:
        load_settings(
            {"SLACK_BOT_TOKEN": "xoxb-very-secret", "IOT_SIGNATURE": "v4", "IOT_QPS": "0"}
        )
    text = str(info.value)
    assert "IOT_SIGNATURE" in text and "IOT_QPS" in text and "SLACK_SIGNING_SECRET" in text
    assert "xoxb-very-secret" not in text


def test_defaults_and_endpoint() -> None:
    """Defaults follow the README; the endpoint comes from the region unless overridden."""
    settings = load_settings({"SLACK_BOT_TOKEN": "x", "SLACK_SIGNING_SECRET": "y"})
    assert settings.iot_base_url == "https://iot.cn-shanghai.aliyuncs.com"
    assert settings.iot_qps == 10 and settings.iot_cache_seconds == 5 and settings.port == 3000
    assert settings.slack_app_token is None  # HTTP mode
    tokyo = load_settings(
        {
            "SLACK_BOT_TOKEN": "x",
            "SLACK_SIGNING_SECRET": "y",
            "ALIBABA_CLOUD_REGION_ID": "ap-northeast-1",
        }
    )
    assert tokyo.iot_base_url == "https://iot.ap-northeast-1.aliyuncs.com"
    local = load_settings(
        {
            "SLACK_BOT_TOKEN": "x",
            "SLACK_SIGNING_SECRET": "y",
            "IOT_ENDPOINT": "http://127.0.0.1:9000",
        }
    )
    assert local.iot_base_url == "http://127.0.0.1:9000"
    assert "x" not in repr(settings.slack_bot_token)


def test_env_file_fills_the_environment_without_overriding(tmp_path, monkeypatch) -> None:
    """A .env file sets what is unset (Alibaba's variables too); real variables win."""
    env_file = tmp_path / ".env"
    env_file.write_text("SLACK_BOT_TOKEN=from-file\nALIBABA_CLOUD_REGION_ID=ap-northeast-1\n")
    monkeypatch.setenv("OTAJOB_ENV_FILE", str(env_file))
    monkeypatch.setenv("SLACK_BOT_TOKEN", "from-env")
    monkeypatch.delenv("ALIBABA_CLOUD_REGION_ID", raising=False)
    load_env_file()
    assert os.environ["SLACK_BOT_TOKEN"] == "from-env"
    assert os.environ["ALIBABA_CLOUD_REGION_ID"] == "ap-northeast-1"
    monkeypatch.delenv("ALIBABA_CLOUD_REGION_ID")


def test_workspace_language_takes_a_word_or_a_locale() -> None:
    """OTAJOB_LANGUAGE takes en, ja, zh (or a locale like ja-JP); anything else is named."""
    required = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}
    assert load_settings(required).otajob_language == "en"
    assert load_settings({**required, "OTAJOB_LANGUAGE": "zh"}).otajob_language == "zh_CN"
    assert load_settings({**required, "OTAJOB_LANGUAGE": "ja-JP"}).otajob_language == "ja"
    with pytest.raises(ConfigError) as info:
        load_settings({**required, "OTAJOB_LANGUAGE": "klingon"})
    assert "OTAJOB_LANGUAGE" in str(info.value) and "en, ja or zh" in str(info.value)
