"""Test doubles (fake Slack server and request builder) for tests and benchmarks.

A package of its own so tests/, bench/ and a local chat surface share it; it imports
neither tests/ nor bench/."""

from fakes.directory import Directory, Person, UserGroup
from fakes.inbound import (
    Inbound,
    as_http,
    checkboxes,
    conversations_select,
    multi_users_select,
    radio_buttons,
    static_select,
    text_input,
    users_select,
)
from fakes.slack import BOT_ID, ApiCall, FakeSlack, ResponseTarget, WebhookPost

__all__ = [
    "BOT_ID",
    "ApiCall",
    "Directory",
    "FakeSlack",
    "Inbound",
    "Person",
    "ResponseTarget",
    "UserGroup",
    "WebhookPost",
    "as_http",
    "checkboxes",
    "conversations_select",
    "multi_users_select",
    "radio_buttons",
    "static_select",
    "text_input",
    "users_select",
]
