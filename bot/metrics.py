"""What an operator watches, in Prometheus' format (``GET /metrics``, prometheus-client).

One registry per runtime (not the library's global one), so two runtimes in one process
(the tests) never mix their numbers. The layers record what happens through the methods
here; what lives in the database (watches by state, how late the oldest due poll is) is
read when Prometheus scrapes (bot/server.py).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Quick answers: an ack within Slack's three seconds, a quota wait, a poll's lag.
ACK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.iot_calls = Counter(
            "otajob_iot_calls",
            "IoT API call attempts, by action and outcome (ok, throttled, refused, "
            "unavailable, timeout, connection, bad_response, credentials)",
            ["action", "outcome"],
            registry=r,
        )
        self.quota_wait = Histogram(
            "otajob_quota_wait_seconds",
            "Time a call waited for a place in the account's IOT_QPS window, by priority",
            ["priority"],
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.job_reads = Counter(
            "otajob_job_reads",
            "Job reads (QueryOTAJob) by how they were answered: call, cache_hit, coalesced, "
            "and shared (another replica's answer)",
            ["how"],
            registry=r,
        )
        self.slack_calls = Counter(
            "otajob_slack_calls",
            "Slack Web API calls by method and outcome (ok, or Slack's error code)",
            ["method", "outcome"],
            registry=r,
        )
        self.ack_seconds = Histogram(
            "otajob_ack_seconds",
            "Time to acknowledge Slack's HTTP requests, by request kind",
            ["kind"],
            buckets=ACK_BUCKETS,
            registry=r,
        )
        self.watches = Gauge(
            "otajob_watches", "Watches by state (active, paused)", ["state"], registry=r
        )
        self.poll_lag = Gauge(
            "otajob_poll_lag_seconds",
            "How long the oldest due poll has been due (0: none is late)",
            registry=r,
        )
        self.push_state = Gauge(
            "otajob_push_state",
            "The push subscription's state: 1 for the current one",
            ["state"],
            registry=r,
        )

    # --- recorded by the layers ----------------------------------------------------------
    def iot_call(self, action: str, outcome: str) -> None:
        self.iot_calls.labels(action, outcome).inc()

    def quota_waited(self, priority: str, seconds: float) -> None:
        self.quota_wait.labels(priority).observe(seconds)

    def job_read(self, how: str) -> None:
        self.job_reads.labels(how).inc()

    def slack_call(self, method: str, outcome: str) -> None:
        self.slack_calls.labels(method, outcome).inc()

    def acked(self, kind: str, seconds: float) -> None:
        self.ack_seconds.labels(kind).observe(seconds)

    # --- read at scrape time -------------------------------------------------------------
    def set_state(self, watches: dict[str, int], poll_lag: float, push: str) -> None:
        for state in ("active", "paused"):
            self.watches.labels(state).set(watches.get(state, 0))
        self.poll_lag.set(max(poll_lag, 0.0))
        self.push_state.clear()  # one series: the state it is in now
        self.push_state.labels(push).set(1)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
