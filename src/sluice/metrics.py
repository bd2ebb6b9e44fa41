"""Prometheus metrics, exposed at ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

JOBS = Counter(
    "sluice_jobs_total",
    "Queue messages handled, by job and outcome (done, rescheduled, retried, dead_lettered).",
    ["job", "outcome"],
)
JOB_SECONDS = Histogram(
    "sluice_job_seconds",
    "Time spent handling one queue message, by job.",
    ["job"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WITHDRAWALS_REQUESTED = Counter(
    "sluice_withdrawals_requested_total", "Withdrawals accepted by the API.", ["network"]
)
HOT_WALLET_WAITS = Counter(
    "sluice_hot_wallet_waits_total",
    "Signings put off because a hot wallet could not pay (underfunded) or had too many "
    "transactions in flight (in_flight), by network and reason. A rising underfunded count "
    "means the hot wallet needs topping up.",
    ["network", "reason"],
)
TRANSACTION_EVENTS = Counter(
    "sluice_transaction_events_total",
    "Transaction engine events by network and kind: sent, mined, settled, replaced (fees "
    "bumped), resent, cancel_requested, cancel_sent, refused (a node refused a payload for "
    "good), reorged, superseded, gap_filled, unclear_send.",
    ["network", "event"],
)
BULKHEAD_DEFERRALS = Counter(
    "sluice_bulkhead_deferrals_total",
    "Jobs put back for later by their network's bulkhead, by network and reason: closed (the "
    "network is down, misconfigured or not verified yet), busy (its share of the worker's "
    "consumers is taken), unavailable (its node stopped answering during the job).",
    ["network", "reason"],
)
CIRCUIT_BREAKER_TRIPS = Counter(
    "sluice_circuit_breaker_trips_total",
    "Times a network's circuit breaker paused its signing: an asset's outflow over the window "
    "would have passed its limit (docs/circuit-breaker.md).",
    ["network"],
)
NETWORK_PAUSED = Gauge(
    "sluice_network_paused",
    "1 while the network's automatic signing is paused (by an operator or its circuit "
    'breaker), else 0; network "*" is the freeze of every network. Each process reports '
    "what it last read or did: take the max over processes.",
    ["network"],
)
POLICY_DECISIONS = Counter(
    "sluice_policy_decisions_total",
    "Withdrawals the policy decided, by network, verdict (allow, require_approval, deny) and the "
    "rule that decided (its name in the policy file; default; blocklist).",
    ["network", "verdict", "rule"],
)
APPROVAL_OUTCOMES = Counter(
    "sluice_approval_outcomes_total",
    "Withdrawals that waited for approval and moved on, by outcome: approved, rejected, "
    "expired, denied (the policy asked again at the last approval refused it).",
    ["outcome"],
)
WEBHOOK_ATTEMPTS = Counter(
    "sluice_webhook_attempts_total",
    "Webhook delivery attempts by outcome: ok (a 2xx answer) or failed (anything else).",
    ["outcome"],
)
