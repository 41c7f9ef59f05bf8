"""The /otajob grammar: text in, request out, no I/O."""

from __future__ import annotations

import pytest

from bot.slack.grammar import (
    BadInput,
    ListWatches,
    QueryJob,
    ShowHelp,
    UnwatchJob,
    WatchJob,
    parse_command,
)


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
        ("watch HvKuBpuk3rdk6E92CPa1b20200", WatchJob("HvKuBpuk3rdk6E92CPa1b20200")),
        (
            "watch HvKuBpuk3rdk6E92CPa1b20200 <#C0ABC|ops> only completed, canceled quiet",
            WatchJob(
                "HvKuBpuk3rdk6E92CPa1b20200",
                "C0ABC",
                None,
                frozenset({"COMPLETED", "CANCELED"}),
                True,
            ),
        ),
        (
            "watch HvKuBpuk3rdk6E92CPa1b20200 instance iot-1a2b quiet <#G0XYZ>",
            WatchJob("HvKuBpuk3rdk6E92CPa1b20200", "G0XYZ", "iot-1a2b", frozenset(), True),
        ),
        ("watch", BadInput("missing_job", "watch")),
        ("watch HvKuBpuk3rdk6E92CPa1b20200 #ops", BadInput("bad_channel", "#ops")),
        ("watch HvKuBpuk3rdk6E92CPa1b20200 only", BadInput("missing_states")),
        ("watch HvKuBpuk3rdk6E92CPa1b20200 only soon", BadInput("bad_states", "soon")),
        ("unwatch HvKuBpuk3rdk6E92CPa1b20200", UnwatchJob("HvKuBpuk3rdk6E92CPa1b20200")),
        (
            "unwatch HvKuBpuk3rdk6E92CPa1b20200 <#C0ABC>",
            UnwatchJob("HvKuBpuk3rdk6E92CPa1b20200", "C0ABC"),
        ),
        ("unwatch HvKuBpuk3rdk6E92CPa1b20200 quiet", BadInput("extra_words", "quiet")),
        ("watches", ListWatches()),
        ("watches all", ListWatches(everywhere=True)),
        ("watches mine", BadInput("extra_words", "mine")),
    ],
)
def test_parse_command(text, expected) -> None:
    """Each input maps to usage, a query, or a specific reason it was refused."""
    assert parse_command(text) == expected
