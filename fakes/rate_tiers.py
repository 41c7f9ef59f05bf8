"""Slack Web API rate limits for the fake, per method, from Slack's documentation.

Source for the tiers: "Rate limits", https://docs.slack.dev/apis/web-api/rate-limits
("applied on a per API method per workspace/team per app basis"):
  Tier 1  1+ per minute     Tier 2  20+ per minute
  Tier 3  50+ per minute    Tier 4  100+ per minute
Each method's tier is the one its reference page lists (https://docs.slack.dev/reference/
methods/<method>, "Rate limits"); they are cited beside each entry. The fake uses the floor of
each tier ("N+ per minute" means at least N are allowed) as a sliding window of 60 seconds.

chat.postMessage is in the "Special" tier: "generally allows posting one message per second per
channel, while also maintaining a workspace-wide limit"; "Posting messages: 1 per second. Short
bursts >1 allowed" (same page). Slack publishes no burst size, so the fake chooses one:
``POST_BURST`` messages within any ``POST_BURST`` seconds per channel, i.e. a burst of 5 at once
is accepted and the sustained rate stays at 1 per second. The workspace-wide limit has no
published number and is not modelled.

Over a limit Slack answers HTTP 429 with ``{"ok": false, "error": "ratelimited"}`` and a
``Retry-After`` header "indicating how many seconds to wait" (same page, "Responding to rate
limiting conditions"); the fake counts it in whole seconds until the oldest request in the
window leaves it.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque

TIER = {1: 1, 2: 20, 3: 50, 4: 100}  # requests per minute, the floor of each tier

# method -> requests per minute (None: not rate limited by the fake)
PER_MINUTE: dict[str, int | None] = {
    "auth.test": None,  # Special tier (no published number): not limited
    "chat.getPermalink": None,  # Special tier (no published number): not limited
    "chat.postEphemeral": TIER[4],  # reference/methods/chat.postEphemeral: Tier 4
    "chat.update": TIER[3],  # reference/methods/chat.update: Tier 3
    "chat.delete": TIER[3],  # reference/methods/chat.delete: Tier 3
    # reference/methods/conversations.history: Tier 3 for Marketplace and internal apps;
    # commercially distributed non-Marketplace apps: 1 per minute (set PER_MINUTE to 1).
    "conversations.history": TIER[3],
    "conversations.replies": TIER[3],  # reference/methods/conversations.replies: as history
    "conversations.info": TIER[3],  # reference/methods/conversations.info: Tier 3
    "conversations.join": TIER[3],  # reference/methods/conversations.join: Tier 3
    "conversations.leave": TIER[3],  # reference/methods/conversations.leave: Tier 3
    "conversations.members": TIER[4],  # reference/methods/conversations.members: Tier 4
    "conversations.open": TIER[3],  # reference/methods/conversations.open: Tier 3
    "files.getUploadURLExternal": TIER[4],  # reference/methods/files.getUploadURLExternal: T4
    "files.completeUploadExternal": TIER[4],  # .../files.completeUploadExternal: Tier 4
    "usergroups.users.list": TIER[2],  # reference/methods/usergroups.users.list: Tier 2
    "users.info": TIER[4],  # reference/methods/users.info: Tier 4
    "users.conversations": TIER[3],  # reference/methods/users.conversations: Tier 3
    "views.open": TIER[4],  # reference/methods/views.open: Tier 4
    "views.push": TIER[4],  # reference/methods/views.push: Tier 4
    "views.update": TIER[4],  # reference/methods/views.update: Tier 4
    "views.publish": TIER[4],  # reference/methods/views.publish: Tier 4
}
DEFAULT_PER_MINUTE = TIER[2]  # rate limits page: "Most methods allow at least 20 requests
# per minute" - the fake's limit for a method not listed above

POST_BURST = 5  # chat.postMessage: at most 5 per channel within any 5 seconds (see above)
WINDOW = 60.0


class RateLimiter:
    """Sliding windows on an injected clock: one per method, one per channel for
    chat.postMessage. ``check`` answers None (allowed, and counted) or the Retry-After."""

    def __init__(self, per_minute: dict[str, int | None] | None = None) -> None:
        self.per_minute = dict(PER_MINUTE if per_minute is None else per_minute)
        self.post_burst = POST_BURST
        self._seen: dict[tuple[str, str], deque[float]] = defaultdict(deque)

    def check(self, method: str, channel: str | None, now: float) -> int | None:
        if method == "chat.postMessage":
            key, limit, window = (method, str(channel)), self.post_burst, float(self.post_burst)
        else:
            limit = self.per_minute.get(method, DEFAULT_PER_MINUTE)
            if limit is None:
                return None
            key, window = (method, ""), WINDOW
        seen = self._seen[key]
        while seen and seen[0] <= now - window:
            seen.popleft()
        if len(seen) >= limit:
            return max(1, math.ceil(seen[0] + window - now))
        seen.append(now)
        return None

    def reset(self) -> None:
        self._seen.clear()
