"""The /otajob grammar: text in, request out, no I/O."""

from __future__ import annotations

import pytest

from bot.slack.grammar import BadInput, QueryJob, ShowHelp, parse_command


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ShowHelp()),
        (None, ShowHelp()),
        ("   ", ShowHelp()),
        ("help", ShowHelp()),
        ("HELP", ShowHelp()),
        ("HvKuBpuk3rdk6E92CPa1b20200", QueryJob("HvKuBpuk3rdk6E92CPa1b20200")),
        ("  HvKuBpuk3rdk6E92CPa1b20200  ", QueryJob("HvKuBpuk3rdk6E92CPa1b20200")),
        ("`HvKuBpuk3rdk6E92CPa1b20200`", QueryJob("HvKuBpuk3rdk6E92CPa1b20200")),
        (
            "HvKuBpuk3rdk6E92CPa1b20200 instance iot-cn-0pp1n8t1234",
            QueryJob("HvKuBpuk3rdk6E92CPa1b20200", "iot-cn-0pp1n8t1234"),
        ),
        (
            "HvKuBpuk3rdk6E92CPa1b20200 INSTANCE iot-06z00ab",
            QueryJob("HvKuBpuk3rdk6E92CPa1b20200", "iot-06z00ab"),
        ),
        ("wahVIzGkCMuAUE2gDERM02****", BadInput("masked_id", "wahVIzGkCMuAUE2gDERM02****")),
        ("job-1!", BadInput("bad_job_id", "job-1!")),
        ("<!channel>", BadInput("bad_job_id", "!channel")),
        ("abc", BadInput("bad_job_id", "abc")),
        ("HvKuBpuk3rdk6E92CPa1b20200 instance", BadInput("missing_instance")),
        ("HvKuBpuk3rdk6E92CPa1b20200 instance iot-cn-****", BadInput("masked_id", "iot-cn-****")),
        ("HvKuBpuk3rdk6E92CPa1b20200 instance <@U1>", BadInput("bad_instance", "@U1")),
        ("HvKuBpuk3rdk6E92CPa1b20200 please", BadInput("extra_words", "please")),
    ],
)
def test_parse_command(text, expected) -> None:
    """Each input maps to usage, a query, or a specific reason it was refused."""
    assert parse_command(text) == expected
