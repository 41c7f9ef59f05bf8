"""Block Kit's limits, checked after rendering: slack_sdk's models, plus what they miss
(https://api.slack.com/reference/block-kit/blocks, ``reference/slack.md``)."""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

MAX_BLOCKS = 50
MAX_FIELD = 2000
MAX_FIELDS = 10
MAX_HEADER = 150
MAX_TEXT = 3000
MAX_FALLBACK = 3000
# Slack rejects large messages with msg_blocks_too_long; reported near 13k characters.
MAX_BLOCKS_JSON = 12000
MAX_VIEW_BLOCKS = 100  # a Home tab or a modal
MAX_VIEW_JSON = 100_000


class RenderError(ValueError):
    """A template produced something Slack would reject."""


def validate_blocks(
    blocks: list[dict[str, Any]], *, max_blocks: int = MAX_BLOCKS, max_json: int = MAX_BLOCKS_JSON
) -> None:
    """Block Kit limits: slack_sdk's models, plus what they do not check."""
    if len(blocks) > max_blocks:
        raise RenderError(f"{len(blocks)} blocks; Slack allows {max_blocks}")
    for index, (raw, block) in enumerate(zip(blocks, Block.parse_all(blocks), strict=True)):
        if block is None:
            raise RenderError(f"block {index}: unknown type {raw.get('type')!r}")
        try:
            block.to_dict()
        except SlackObjectFormationError as exc:
            raise RenderError(f"block {index}: {exc}") from exc
        if raw["type"] == "header" and raw["text"].get("type") != "plain_text":
            raise RenderError(f"block {index}: a header must be plain_text")
        fields = raw.get("fields") or []
        if len(fields) > MAX_FIELDS:
            raise RenderError(f"block {index}: {len(fields)} fields; Slack allows {MAX_FIELDS}")
        for f in fields:
            if len(f.get("text", "")) > MAX_FIELD:
                raise RenderError(f"block {index}: a field over {MAX_FIELD} characters")
    size = len(json.dumps(blocks, ensure_ascii=False))
    if size > max_json:
        raise RenderError(f"blocks are {size} characters of JSON; keep under {max_json}")
