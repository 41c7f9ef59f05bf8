"""The /otajob grammar: text in, request out, no I/O."""

from __future__ import annotations

import pytest

from bot.slack.grammar import (
    BadInput,
    DeviceJobs,
    FailedDevices,
    FirmwareJobs,
    ListWatches,
    QueryJob,
    ShowHelp,
    UnwatchJob,
    WatchJob,
    parse_command,
)
from bot.watch.alerts import AlertRule

J = "HvKuBpuk3rdk6E92CPa1b20200"


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
        (f"{J} failed", FailedDevices(J)),
        (
            f"failed {J} instance iot-1a2b",
            FailedDevices(J, "iot-1a2b"),
        ),
        (f"{J} failed please", BadInput("extra_words", "please")),
        ("device a1Gw7Tk9Lmp light-0042", DeviceJobs("a1Gw7Tk9Lmp", "light-0042")),
        (
            "device a1Gw7Tk9Lmp light@home:1 firmware Fw7kGwPkg2d4R8sLqT1Vb30100 instance iot-1a2b",
            DeviceJobs("a1Gw7Tk9Lmp", "light@home:1", "Fw7kGwPkg2d4R8sLqT1Vb30100", "iot-1a2b"),
        ),
        ("device a1Gw7Tk9Lmp", BadInput("missing_device")),
        ("device a1Gw****Lmp light", BadInput("masked_id", "a1Gw****Lmp")),
        ("device a1Gw7Tk9Lmp <!channel>", BadInput("bad_device_name", "!channel")),
        ("device a1Gw7Tk9Lmp light firmware", BadInput("missing_firmware")),
        ("firmware Fw7kGwPkg2d4R8sLqT1Vb30100", FirmwareJobs("Fw7kGwPkg2d4R8sLqT1Vb30100")),
        ("firmware", BadInput("missing_firmware")),
        ("firmware Fw-1!", BadInput("bad_firmware_id", "Fw-1!")),
        (
            f"watch {J} alert failed>5% notify <@U0ONCALL1|ann> <!subteam^S0FW1|@fw>",
            WatchJob(
                J,
                alert=AlertRule(5, True),
                notify=("U0ONCALL1", "S0FW1"),
            ),
        ),
        (
            f"watch {J} quiet alert failed > 20 notify <@U0ONCALL1>, <@U0ONCALL1>",
            WatchJob(
                J,
                quiet=True,
                alert=AlertRule(20, False),
                notify=("U0ONCALL1",),
            ),
        ),
        (f"watch {J} alert", BadInput("missing_alert")),
        (f"watch {J} alert off", WatchJob(J, alert_off=True)),
        (f"watch {J} alert off alert failed>5", BadInput("extra_words", "alert off")),
        (f"watch {J} alert failed > 5 %", WatchJob(J, alert=AlertRule(5, True))),
        (f"watch {J} alert failed>{'9' * 400}", BadInput("bad_alert", f"failed>{'9' * 400}")),
        (
            f"watch {J} alert failed>5 notify "
            + " ".join(f"<@U0PERSON{i:02d}>" for i in range(11)),
            BadInput("too_many_notify", "10"),
        ),
        (
            f"watch {J} alert failed>150%",
            BadInput("bad_alert", "failed>150%"),
        ),
        (f"watch {J} alert failed>5% notify", BadInput("missing_notify")),
        (
            f"watch {J} alert failed>5% notify @ann",
            BadInput("plain_mention", "@ann"),
        ),
        (
            f"watch {J} alert failed>5% notify <!channel>",
            BadInput("whole_channel", "<!channel>"),
        ),
        (
            f"watch {J} alert failed>5% notify @here",
            BadInput("whole_channel", "@here"),
        ),
        (f"watch {J} notify <@U0ONCALL1>", BadInput("notify_without_alert")),
        (
            f"unwatch {J} alert failed>5%",
            BadInput("extra_words", "alert failed>5%"),
        ),
    ],
)
def test_parse_command(text, expected) -> None:
    """Each input maps to usage, a query, or a specific reason it was refused."""
    assert parse_command(text) == expected


# Text exactly as Slack sends it with should_escape on: `& < >` as entities, picked
# mentions, groups, channels and links as control tokens (with or without labels).
@pytest.mark.parametrize(
    ("slack_text", "expected"),
    [
        (
            f"watch {J} alert failed&gt;5% notify <!subteam^S0FW1|@oncall>",
            WatchJob(J, alert=AlertRule(5, True), notify=("S0FW1",)),
        ),
        (
            f"watch {J} alert failed &gt; 20 notify <@U0ONCALL1|ann>,<@U0TWO22>",
            WatchJob(J, alert=AlertRule(20, False), notify=("U0ONCALL1", "U0TWO22")),
        ),
        (f"&lt;{J}&gt;", QueryJob(J)),
        (f"&lt;{J}&gt; failed", FailedDevices(J)),
        (f"<https://example.com/ota?job={J}|{J}>", QueryJob(J)),
        (f"watch &lt;{J}&gt; <#C0ABC|ops>", WatchJob(J, "C0ABC")),
        (f"watch {J} <#C0ABC|>", WatchJob(J, "C0ABC")),
        (f"unwatch &lt;{J}&gt; <#C0ABC>", UnwatchJob(J, "C0ABC")),
        (f"&lt;{J}&gt; instance &lt;iot-1a2b&gt;", QueryJob(J, "iot-1a2b")),
        ("firmware &lt;Fw7kGwPkg2d4R8sLqT1Vb30100&gt;", FirmwareJobs("Fw7kGwPkg2d4R8sLqT1Vb30100")),
        ("device a1Gw7Tk9Lmp a&amp;b", BadInput("bad_device_name", "a&b")),
        ("J0B&amp;1", BadInput("bad_job_id", "J0B&1")),
        ("&amp;lt;", BadInput("bad_job_id", "&lt;")),  # unescaped once, not twice
        # Typed out by hand rather than picked: never taken for a mention.
        (
            f"watch {J} alert failed&gt;5 notify &lt;@U0ONCALL1&gt;",
            BadInput("plain_mention", "<@U0ONCALL1>"),
        ),
        (f"watch {J} alert failed&gt;5 notify <!here>", BadInput("whole_channel", "<!here>")),
        (
            f"watch {J} alert failed&gt;5 notify &lt;!channel&gt;",
            BadInput("whole_channel", "<!channel>"),
        ),
        (f"watch {J} &lt;#C0ABC&gt;", BadInput("bad_channel", "<#C0ABC>")),
        (f"watch {J} alert failed&gt;5 notify <#C0ABC|ops>", BadInput("missing_notify")),
    ],
)
def test_parse_command_reads_slack_escaped_text(slack_text, expected) -> None:
    """What a person typed is read back from Slack's escaped text, once."""
    assert parse_command(slack_text) == expected


def test_a_channel_after_notify_is_the_watchs_channel() -> None:
    """Options come in any order: a channel picked after the people to notify is where
    the watch goes, not someone to page."""
    text = f"watch {J} alert failed&gt;5% notify <@U0ONCALL1|ann> <#C0OPS|ops>"
    assert parse_command(text) == WatchJob(
        J, "C0OPS", alert=AlertRule(5, True), notify=("U0ONCALL1",)
    )
