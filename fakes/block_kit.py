"""Block Kit validation for the fake Slack, written from Slack's reference pages.

``message_errors(blocks)`` and ``view_errors(view, method)`` return Slack-style error details
(``"must be less than 3001 characters [json-pointer:/blocks/0/text/text]"``), empty when Slack
would accept the payload. The fake answers a message with ``invalid_blocks`` and a view with
``invalid_arguments`` (the error the views.* methods list), the details in ``errors`` and in
``response_metadata.messages`` prefixed with ``[ERROR]``, as Slack does (seen in its answers
quoted in slackapi/java-slack-sdk#1017 and in public bug reports).

Each limit names its source beside it. Pages (https://docs.slack.dev/reference/block-kit/...):
  blocks              .../blocks                                   (block list, 50 / 100)
  section             .../blocks/section-block
  header              .../blocks/header-block
  context             .../blocks/context-block
  actions             .../blocks/actions-block
  image (block)       .../blocks/image-block
  input               .../blocks/input-block
  markdown            .../blocks/markdown-block
  text object         .../composition-objects/text-object
  confirm object      .../composition-objects/confirmation-dialog-object
  option object       .../composition-objects/option-object
  button              .../block-elements/button-element
  view object         https://docs.slack.dev/reference/views  ("View object" reference)

Not modelled (no published rule, or beyond what this app uses): the total-size limit behind
``msg_blocks_too_long`` (Slack publishes no number), rich_text internals, every element's own
option-group limits beyond ``options`` (100) and option text/value, and surface restrictions
of individual elements.
"""

from __future__ import annotations

from typing import Any

SURFACE_MAX_BLOCKS = {"message": 50, "modal": 100, "home": 100}  # blocks: "up to 50 blocks in
# each message, and 100 blocks in modals or Home tabs"

# blocks: the block types Slack documents. An unknown type is refused.
BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "context_actions",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "table",
        "video",
    }
)
# block-elements: the interactive and non-interactive element types Slack documents.
ELEMENT_TYPES = frozenset(
    {
        "button",
        "channels_select",
        "checkboxes",
        "conversations_select",
        "datepicker",
        "datetimepicker",
        "email_text_input",
        "external_select",
        "feedback_buttons",
        "file_input",
        "icon_button",
        "image",
        "multi_channels_select",
        "multi_conversations_select",
        "multi_external_select",
        "multi_static_select",
        "multi_users_select",
        "number_input",
        "overflow",
        "plain_text_input",
        "radio_buttons",
        "rich_text_input",
        "static_select",
        "timepicker",
        "url_text_input",
        "users_select",
        "workflow_button",
    }
)
ID_MAX = 255  # section/actions/... block_id and every element's action_id: "Maximum length 255"


class _Check:
    """Collects Slack-style error details while walking a payload."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, message: str, pointer: str) -> None:
        self.errors.append(f"{message} [json-pointer:{pointer}]")

    def length(self, value: Any, limit: int, pointer: str) -> None:
        if isinstance(value, str) and len(value) > limit:
            self.fail(f"must be less than {limit + 1} characters", pointer)

    def string(self, obj: dict, key: str, limit: int, pointer: str, *, required: bool = False):
        value = obj.get(key)
        if value is None:
            if required:
                self.fail(f"missing required field: {key}", pointer)
            return
        if not isinstance(value, str):
            self.fail("must be a string", f"{pointer}/{key}")
            return
        if required and not value:
            self.fail("must be more than 0 characters", f"{pointer}/{key}")
        self.length(value, limit, f"{pointer}/{key}")

    def items(self, value: Any, limit: int, pointer: str, *, minimum: int = 0) -> list:
        if not isinstance(value, list):
            self.fail("must be an array", pointer)
            return []
        if len(value) > limit:
            self.fail(f"no more than {limit} items allowed", pointer)
        if len(value) < minimum:
            self.fail(f"must provide at least {minimum} items", pointer)
        return value

    # ---- composition objects ----------------------------------------------------------------
    def text(
        self,
        obj: Any,
        limit: int,
        pointer: str,
        *,
        plain_only: bool = False,
        required: bool = True,
    ) -> None:
        """A text object: type plain_text or mrkdwn, `text` 1..limit characters."""
        # text-object: "type: plain_text or mrkdwn"; "text: minimum length 1, maximum 3000"
        # (the containing field may set a lower maximum, e.g. header 150, button 75).
        if obj is None:
            if required:
                parent, name = pointer.rsplit("/", 1)
                self.fail(f"missing required field: {name}", parent)
            return
        if not isinstance(obj, dict):
            self.fail("must be a text object", pointer)
            return
        kind = obj.get("type")
        allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        if kind not in allowed:
            self.fail("failed to match all allowed schemas", pointer)
            self.fail(f"must be one of {', '.join(allowed)}", f"{pointer}/type")
            return
        if kind == "mrkdwn" and "emoji" in obj:
            self.fail("emoji is only allowed on plain_text", f"{pointer}/emoji")
        value = obj.get("text")
        if not isinstance(value, str):
            self.fail("missing required field: text", pointer)
            return
        if not value:
            self.fail("must be more than 0 characters", f"{pointer}/text")
        self.length(value, min(limit, 3000), f"{pointer}/text")

    def confirm(self, obj: Any, pointer: str) -> None:
        # confirmation-dialog-object: title plain_text 100, text 300, confirm 30, deny 30.
        if not isinstance(obj, dict):
            self.fail("must be a confirmation dialog object", pointer)
            return
        self.text(obj.get("title"), 100, f"{pointer}/title", plain_only=True)
        self.text(obj.get("text"), 300, f"{pointer}/text")
        self.text(obj.get("confirm"), 30, f"{pointer}/confirm", plain_only=True)
        self.text(obj.get("deny"), 30, f"{pointer}/deny", plain_only=True)

    def option(self, obj: Any, pointer: str) -> None:
        # option-object: text 75, value 150, description 75, url 3000.
        if not isinstance(obj, dict):
            self.fail("must be an option object", pointer)
            return
        self.text(obj.get("text"), 75, f"{pointer}/text")
        self.string(obj, "value", 150, pointer)
        self.text(obj.get("description"), 75, f"{pointer}/description", required=False)
        self.string(obj, "url", 3000, pointer)

    # ---- elements ---------------------------------------------------------------------------
    def element(self, el: Any, pointer: str) -> str | None:
        """Check one block element; return its action_id (None if it has none)."""
        if not isinstance(el, dict):
            self.fail("must be an object", pointer)
            return None
        kind = el.get("type")
        if kind not in ELEMENT_TYPES:
            self.fail("failed to match all allowed schemas", pointer)
            self.fail(f"unsupported element type: {kind!r}", f"{pointer}/type")
            return None
        self.string(el, "action_id", ID_MAX, pointer)
        if kind == "button":
            # button-element: text plain_text max 75; value max 2000; url max 3000;
            # style "primary" or "danger"; accessibility_label max 75.
            self.text(el.get("text"), 75, f"{pointer}/text", plain_only=True)
            self.string(el, "value", 2000, pointer)
            self.string(el, "url", 3000, pointer)
            self.string(el, "accessibility_label", 75, pointer)
            if "style" in el and el["style"] not in ("primary", "danger"):
                self.fail("must be one of primary, danger", f"{pointer}/style")
        elif kind == "image":
            # image-element: image_url max 3000, alt_text required.
            self.string(el, "alt_text", 2000, pointer, required=True)
            self.string(el, "image_url", 3000, pointer)
        else:
            # select menus, inputs, pickers: placeholder plain_text max 150; options max 100.
            placeholder = el.get("placeholder")
            self.text(placeholder, 150, f"{pointer}/placeholder", plain_only=True, required=False)
            if "options" in el:
                for i, opt in enumerate(self.items(el["options"], 100, f"{pointer}/options")):
                    self.option(opt, f"{pointer}/options/{i}")
        if "confirm" in el:
            self.confirm(el["confirm"], f"{pointer}/confirm")
        action_id = el.get("action_id")
        return action_id if isinstance(action_id, str) else None

    # ---- blocks -----------------------------------------------------------------------------
    def block(self, block: Any, pointer: str) -> None:
        if not isinstance(block, dict):
            self.fail("must be an object", pointer)
            return
        kind = block.get("type")
        if kind not in BLOCK_TYPES:
            self.fail("failed to match all allowed schemas", pointer)
            self.fail(f"unsupported block type: {kind!r}", f"{pointer}/type")
            return
        self.string(block, "block_id", ID_MAX, pointer)
        if kind == "section":
            # section-block: text max 3000; fields max 10 items, each text max 2000;
            # one of text / fields (or text in an expanded section) is required.
            if "text" not in block and "fields" not in block:
                self.fail("must define either `text` or `fields`", pointer)
            if "text" in block:
                self.text(block["text"], 3000, f"{pointer}/text")
            if "fields" in block:
                fields = self.items(block["fields"], 10, f"{pointer}/fields", minimum=1)
                for i, field in enumerate(fields):
                    self.text(field, 2000, f"{pointer}/fields/{i}")
            if "accessory" in block:
                self.element(block["accessory"], f"{pointer}/accessory")
        elif kind == "header":
            # header-block: text is a plain_text object, max 150 characters.
            self.text(block.get("text"), 150, f"{pointer}/text", plain_only=True)
        elif kind == "context":
            # context-block: elements max 10, each an image element or a text object.
            elements = self.items(block.get("elements"), 10, f"{pointer}/elements", minimum=1)
            for i, el in enumerate(elements):
                at = f"{pointer}/elements/{i}"
                if isinstance(el, dict) and el.get("type") == "image":
                    self.element(el, at)
                else:
                    self.text(el, 3000, at)
        elif kind == "actions":
            # actions-block: elements max 25. button-element (and every interactive element),
            # action_id: "Should be unique among all other action_ids in the containing block."
            elements = self.items(block.get("elements"), 25, f"{pointer}/elements", minimum=1)
            seen: set[str] = set()
            for i, el in enumerate(elements):
                action_id = self.element(el, f"{pointer}/elements/{i}")
                if action_id is not None:
                    if action_id in seen:
                        self.fail(f"duplicate action_id: {action_id}", f"{pointer}/elements/{i}")
                    seen.add(action_id)
        elif kind == "image":
            # image-block: image_url max 3000 (or slack_file), alt_text max 2000 required,
            # title plain_text max 2000.
            self.string(block, "alt_text", 2000, pointer, required=True)
            self.string(block, "image_url", 3000, pointer)
            title = block.get("title")
            self.text(title, 2000, f"{pointer}/title", plain_only=True, required=False)
        elif kind == "input":
            # input-block: label plain_text max 2000 (required), element required,
            # hint plain_text max 2000.
            self.text(block.get("label"), 2000, f"{pointer}/label", plain_only=True)
            if "element" not in block:
                self.fail("missing required field: element", pointer)
            else:
                self.element(block["element"], f"{pointer}/element")
            hint = block.get("hint")
            self.text(hint, 2000, f"{pointer}/hint", plain_only=True, required=False)
        elif kind == "markdown":
            # markdown-block: text (a string) required; cumulative limit 12,000 characters.
            self.string(block, "text", 12_000, pointer, required=True)
        elif kind == "rich_text":
            # rich-text-block: elements required (its inner elements are not checked here).
            self.items(block.get("elements"), 10_000, f"{pointer}/elements")

    def blocks(self, blocks: Any, surface: str, pointer: str) -> None:
        limit = SURFACE_MAX_BLOCKS[surface]
        items = self.items(blocks, limit, pointer)
        seen: set[str] = set()
        for i, block in enumerate(items):
            self.block(block, f"{pointer}/{i}")
            block_id = block.get("block_id") if isinstance(block, dict) else None
            # section-block & co: "block_id should be unique for each message and each
            # iteration of a message"; Slack refuses a repeated block_id in one payload.
            if isinstance(block_id, str):
                if block_id in seen:
                    self.fail(f"duplicate block_id: {block_id}", f"{pointer}/{i}/block_id")
                seen.add(block_id)


def message_errors(blocks: Any) -> list[str]:
    """Why Slack would refuse `blocks` (a message's), empty if it would not."""
    check = _Check()
    check.blocks(blocks, "message", "/blocks")
    return check.errors


def view_errors(view: Any, method: str) -> list[str]:
    """Why Slack would refuse `view` for views.open / .push / .update / .publish."""
    check = _Check()
    if not isinstance(view, dict):
        check.fail("must be an object", "/view")
        return check.errors
    kind = view.get("type")
    # views.publish publishes a Home tab; views.open / views.push open modals; views.update
    # updates either (https://docs.slack.dev/reference/methods/views.publish, .../views.open).
    allowed = {
        "views.publish": ("home",),
        "views.open": ("modal",),
        "views.push": ("modal",),
    }.get(method, ("modal", "home"))
    if kind not in allowed:
        check.fail(f"must be one of {', '.join(allowed)}", "/view/type")
        return check.errors
    # views reference (view object): private_metadata max 3000; callback_id max 255;
    # external_id max 255; blocks max 100.
    check.string(view, "private_metadata", 3000, "/view")
    check.string(view, "callback_id", 255, "/view")
    check.string(view, "external_id", 255, "/view")
    if kind == "modal":
        # modal view: title plain_text max 24 (required); close and submit plain_text max 24;
        # submit is required when the blocks hold an input block.
        check.text(view.get("title"), 24, "/view/title", plain_only=True)
        check.text(view.get("close"), 24, "/view/close", plain_only=True, required=False)
        check.text(view.get("submit"), 24, "/view/submit", plain_only=True, required=False)
        blocks = view.get("blocks") if isinstance(view.get("blocks"), list) else []
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if has_input and "submit" not in view:
            check.fail("missing required field: submit", "/view")
    if "blocks" not in view:  # view object: blocks is required
        check.fail("missing required field: blocks", "/view")
    else:
        check.blocks(view["blocks"], kind, "/view/blocks")
    return check.errors


def slack_messages(errors: list[str]) -> list[str]:
    """The ``response_metadata.messages`` form of `errors`."""
    return [f"[ERROR] {e}" for e in errors]
