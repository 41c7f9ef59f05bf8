"""The tables: watches, shared poll state, the outbox, events seen and the action log."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# Times are stored as UNIX seconds (float): portable across both databases and free of
# time-zone surprises.

metadata = MetaData()

ACTIVE, PAUSED, ENDED = "active", "paused", "ended"

watches = Table(
    "watches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(64), nullable=False),
    Column("instance_id", String(64), nullable=False),  # "" for none, so uniqueness works
    Column("channel_id", String(32), nullable=False),
    Column("created_by", String(32), nullable=False),  # Slack user ID, for DMs
    Column("created_by_name", String(100), nullable=False),  # shown in listings, no ping
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("only_states", String(200), nullable=False),  # comma-separated; "" = all
    Column("quiet", Boolean, nullable=False),
    Column("card_ts", String(32)),
    Column("told_status", String(32)),  # the last status this channel was told
    Column("card_status", String(32)),  # the status its card shows (None: as told_status)
    Column("state", String(16), nullable=False),
    Column("note", Text),  # why it is paused or ended
    Column("ended_at", Float),
    # v3: an alert on the failure rate ("failed>5%" or "failed>20") and whom it notifies
    # (Slack user and user group IDs a person typed, comma-separated).
    Column("alert_rule", String(40)),
    Column("notify", String(400)),
    Column("alerting", Boolean),  # above the threshold at the last count
    Column("alerts_sent", Integer),  # how many times it crossed: keys each alert post
    # v5: the language of the person who set it up, for the DMs only they read
    Column("created_by_language", String(16)),
)
# At most one live (not ended) watch of a job per channel.
Index(
    "one_live_watch_per_channel",
    watches.c.job_id,
    watches.c.instance_id,
    watches.c.channel_id,
    unique=True,
    sqlite_where=watches.c.state != ENDED,
    postgresql_where=watches.c.state != ENDED,
)

# The poll loop asks "does an active watch want this job?" for every due poll.
watches_by_job = Index("watches_by_job", watches.c.job_id, watches.c.instance_id, watches.c.state)

polls = Table(
    "polls",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("instance_id", String(64), primary_key=True),
    Column("status", String(32)),
    Column("job_json", Text),  # the last Data read, for listings and card updates
    Column("polled_at", Float),
    Column("next_poll_at", Float, nullable=False, index=True),
    Column("errors", Integer, nullable=False, default=0),
    Column("counts_json", Text),  # v3: the last device counts read, for the Home tab
    Column("counted_at", Float),
)

# v3: Events API deliveries already handled (Slack retries them), by event_id.
events_seen = Table(
    "events_seen",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("seen_at", Float, nullable=False, index=True),
)

# v3: every write action a person took: who, when, what, and Alibaba Cloud's answer.
action_log = Table(
    "action_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("team_id", String(32)),
    Column("user_id", String(32), nullable=False),
    Column("user_name", String(100), nullable=False),
    Column("action", String(32), nullable=False),  # cancel | reupgrade
    Column("job_id", String(64), nullable=False),
    Column("instance_id", String(64), nullable=False),
    Column("detail", Text, nullable=False),  # JSON: what was asked for, what was done
    Column("request_ids", Text, nullable=False),  # comma-separated
    # started (written before the first write) | done | partial | failed | interrupted
    Column("outcome", String(16), nullable=False),
    Column("error", Text),
    Column("channel_id", String(32)),  # where it was taken: where an interruption is told
    Column("alive_at", Float),  # refreshed while it runs; a stale one was interrupted
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("watch_id", Integer, ForeignKey("watches.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # card | transition | note | dm
    Column("key", String(80), nullable=False),
    Column("state", String(16), nullable=False),  # pending | posted
    Column("ts", String(32)),
    Column("created_at", Float, nullable=False),
    Column("posted_at", Float),
    UniqueConstraint("watch_id", "kind", "key"),
)

# v5: per-channel settings: the language posts everyone in the channel sees are written in
# (`/otajob language ja`); no row, or a NULL language: the workspace's OTAJOB_LANGUAGE.
channel_settings = Table(
    "channel_settings",
    metadata,
    Column("channel_id", String(32), primary_key=True),
    Column("language", String(16)),
    Column("set_by", String(32), nullable=False),
    Column("set_at", Float, nullable=False),
)

# v6: the account's API quota shared by replicas on PostgreSQL (bot/db/shared_quota.py):
# one row per call holding a place in the window, until expires_at (the database's clock).
quota_slots = Table(
    "quota_slots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("expires_at", Float, nullable=False, index=True),
    Column("priority", Integer, nullable=False),
)

# v7: short-lived claims every replica sees (bot/db/leases.py): one re-upgrade of a batch
# at a time, the Home tab's re-reads at most once per person a few seconds.
leases = Table(
    "leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("until", Float, nullable=False),  # the database's clock (UNIX seconds)
)

# v8: job reads shared by replicas on PostgreSQL (bot/db/shared_reads.py): the last answer
# for a key and when it was read, or who is reading it now (both on the database's clock).
job_reads = Table(
    "job_reads",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("body", Text),
    Column("read_at", Float),
    Column("reading_until", Float),
)

# The versions applied so far, one row each (see bot.db.migrations).
schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))
