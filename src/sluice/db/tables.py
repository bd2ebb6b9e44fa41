"""The schema. Alembic migrations in `migrations/` create exactly this."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from sluice.db.types import BaseUnits, UTCDateTime

#: 64-bit surrogate keys on PostgreSQL (events outgrow 2^31); on SQLite an INTEGER PRIMARY KEY,
#: which is already 64-bit and is what makes SQLite autoincrement it.
SurrogateKey = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# One row per on-chain transaction: one nonce of one hot wallet. Several withdrawals may point at
# one transaction (batch payouts); a transaction has one or more signed attempts.
chain_transactions = Table(
    "chain_transactions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("network", String(64), nullable=False),
    Column("from_address", String(42), nullable=False),
    Column("nonce", BigInteger, nullable=False),
    Column("to_address", String(42), nullable=False),
    Column("value", BaseUnits, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("gas_limit", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("request_id", String(128)),
    Column("block_number", BigInteger),
    Column("block_hash", String(66)),
    Column("mined_hash", String(66)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("kind", String(16), nullable=False, server_default="PAYOUT"),
    Column("cancel_requested_at", UTCDateTime),
    Column("nonce_used_at_block", BigInteger),
    # The confirmation chain following the transaction: only jobs carrying this token act, and
    # the chain renews the lease; a lapsed lease means the chain was lost (see recovery).
    Column("watch", String(40)),
    Column("watch_until", UTCDateTime),
    Column("refusal", String(64)),
    Column("priority", String(8)),
    Column("fee_paid", BaseUnits),
    # The database itself refuses a second payload for a nonce.
    UniqueConstraint("network", "from_address", "nonce"),
    Index(None, "status", "created_at"),
)

transaction_attempts = Table(
    "transaction_attempts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("transaction_id", ForeignKey("chain_transactions.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("max_fee_per_gas", BaseUnits, nullable=False),
    Column("max_priority_fee_per_gas", BaseUnits, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("hash", String(66), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("purpose", String(16), nullable=False, server_default="PAYLOAD"),
    Column("outcome", String(16)),
    Column("note", String(64)),
    UniqueConstraint("transaction_id", "seq"),
)

nonce_counters = Table(
    "nonce_counters",
    metadata,
    Column("network", String(64), primary_key=True),
    Column("address", String(42), primary_key=True),
    Column("next_nonce", BigInteger, nullable=False),
)

withdrawals = Table(
    "withdrawals",
    metadata,
    # seq orders withdrawals and serves as the keyset-pagination cursor; id is the client's id.
    Column("seq", SurrogateKey, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("user_id", String(128), nullable=False),
    Column("network", String(64), nullable=False),
    Column("asset_key", String(42), nullable=False),
    Column("token_address", String(42)),
    Column("amount", BaseUnits, nullable=False),
    Column("to_address", String(42), nullable=False),
    Column("status", String(24), nullable=False),
    Column("error", Text),
    Column("error_code", String(64)),
    Column("fingerprint", String(64), nullable=False),
    Column("request_id", String(128)),
    Column("transaction_id", ForeignKey("chain_transactions.id")),
    # Denormalised from the transaction for reads: the latest attempt's hash, then the mined one.
    Column("transaction_hash", String(66)),
    Column("block_number", BigInteger),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("waiting_reason", Text),
    Column("priority", String(8)),
    Column("fee_paid", BaseUnits),
    Column("unbatched", Boolean, nullable=False, server_default=false()),
    # The policy (0017): the fee held with the amount, the key that asked, what decided it,
    # and when a wait for approval expires.
    Column("fee", BaseUnits),
    Column("api_key_id", String(32)),
    Column("policy_version", String(64)),
    Column("policy_rule", String(64)),
    Column("approval_expires_at", UTCDateTime),
    Index(None, "user_id", "seq"),
    # Velocity windows: a user's, a destination's, a network's withdrawals since a time.
    Index(None, "user_id", "created_at"),
    Index(None, "to_address", "created_at"),
    Index(None, "network", "created_at"),
    Index(None, "status", "seq"),
    Index(None, "transaction_id"),
    # `GET /v1/withdrawals?updatedSince=`: a platform catching up, oldest change first.
    Index(None, "updated_at", "seq"),
)

withdrawal_events = Table(
    "withdrawal_events",
    metadata,
    Column("id", SurrogateKey, primary_key=True, autoincrement=True),
    Column("withdrawal_id", String(64), nullable=False),
    Column("from_status", String(24)),
    Column("to_status", String(24), nullable=False),
    Column("reason", Text, nullable=False),
    Column("error_code", String(64)),
    Column("request_id", String(128)),
    Column("data", JSON),
    Column("at", UTCDateTime, nullable=False),
    Index(None, "withdrawal_id", "id"),
)

balances = Table(
    "balances",
    metadata,
    Column("user_id", String(128), primary_key=True),
    Column("network", String(64), primary_key=True),
    Column("asset_key", String(42), primary_key=True),
    Column("available", BaseUnits, nullable=False),
    Column("held", BaseUnits, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Append-only: every change to a balance is explained by one entry here.
ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", SurrogateKey, primary_key=True, autoincrement=True),
    Column("user_id", String(128), nullable=False),
    Column("network", String(64), nullable=False),
    Column("asset_key", String(42), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("amount", BaseUnits, nullable=False),
    Column("withdrawal_id", String(64)),
    Column("reference", String(128), unique=True),
    Column("at", UTCDateTime, nullable=False),
    Index(None, "user_id", "network", "asset_key"),
    Index(None, "withdrawal_id"),
)

# Messages written in the same transaction as the state they point at, and deleted once
# published: a process that dies between its commit and its publish loses nothing, because the
# relay publishes what is left here (see sluice.db.outbox).
outbox = Table(
    "outbox",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("job", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("request_id", String(128)),
    Column("delay_s", Float, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "created_at"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("scopes", String(256), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    # A JSON list of user ids (NULL: every user); user ids may hold any printable character.
    Column("user_ids", JSON),
    # Comma-separated CIDR ranges (NULL: anywhere).
    Column("ip_ranges", Text),
    Column("require_signature", Boolean, nullable=False, server_default=false()),
    # Requests a second (NULL: SLUICE_RATE_LIMIT_PER_S; 0: unlimited).
    Column("rate_limit_per_s", Integer),
    # The caller's Ed25519 public key, hex of its 32 bytes (NULL: not a signing key).
    Column("signing_public_key", String(64)),
    # The operator whose own key this is (NULL: a platform's service key) (0014).
    Column("operator_id", ForeignKey("operators.id")),
    Index(None, "operator_id"),
)

#: Payload signatures granted by `sluice signer` (written by the signer only; give it its own
#: database role with write access to this table and read access to the others).
signer_grants = Table(
    "signer_grants",
    metadata,
    # One row per signature and withdrawal it pays: a transaction may pay several (0011).
    Column("hash", String(66), primary_key=True),
    Column("withdrawal_id", String(64), primary_key=True),
    Column("network", String(64), nullable=False),
    Column("wallet", String(42), nullable=False),
    Column("nonce", BigInteger, nullable=False),
    Column("transaction_id", String(40), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_signer_grants_withdrawal_id", "withdrawal_id"),
)

# --- Operators and the audit log (0014) ---

operators = Table(
    "operators",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: Append-only (triggers refuse UPDATE and DELETE); each row carries the hash of the one before
#: (`sluice.domain.audit`). ``seq`` is dense: assigned under the lock of `audit_head`.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(160), nullable=False),
    Column("api_key_id", String(32)),
    Column("address", String(64)),
    Column("action", String(64), nullable=False),
    Column("subject", String(160), nullable=False),
    Column("before", JSON),
    Column("after", JSON),
    Column("detail", JSON),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index(None, "action", "seq"),
    Index(None, "subject", "seq"),
    Index(None, "actor", "seq"),
    Index(None, "at"),
)

#: One row: the last entry's seq and hash. Appending locks it, so appends are serialized and
#: the chain has one line; `sluice audit verify` also checks the log still reaches it.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

# --- The policy engine (0017) ---

#: Every policy file loaded, in order; the last is the one in force (`sluice.services.policy`).
policy_versions = Table(
    "policy_versions",
    metadata,
    Column("seq", SurrogateKey, primary_key=True, autoincrement=True),
    Column("version", String(64), nullable=False),
    Column("label", String(128), nullable=False),
    Column("body", Text, nullable=False),
    Column("loaded_at", UTCDateTime, nullable=False),
    Column("loaded_by", String(160), nullable=False),
    Index(None, "version"),
)

address_book = Table(
    "address_book",
    metadata,
    Column("user_id", String(128), primary_key=True),
    Column("network", String(64), primary_key=True),
    Column("address", String(42), primary_key=True),
    Column("label", String(128)),
    Column("added_at", UTCDateTime, nullable=False),
)

#: Addresses nothing is ever paid to, checked at validation and again just before signing.
blocklist = Table(
    "blocklist",
    metadata,
    Column("address", String(42), primary_key=True),
    Column("source", String(64), nullable=False),
    Column("reason", Text),
    Column("added_at", UTCDateTime, nullable=False),
)

#: Operators' decisions on withdrawals waiting for approval; one per operator and withdrawal.
approvals = Table(
    "approvals",
    metadata,
    Column("withdrawal_id", String(64), primary_key=True),
    Column("operator_id", ForeignKey("operators.id"), primary_key=True),
    Column("vote", String(8), nullable=False),
    Column("revision", String(16), nullable=False),
    Column("reason", Text),
    Column("api_key_id", String(32)),
    Column("address", String(64)),
    Column("at", UTCDateTime, nullable=False),
)

#: One row per velocity window owner (``user:…``, ``destination:…``, ``hot_wallet:…``), locked
#: while a decision totals its window, so racing decisions see each other's withdrawals.
velocity_locks = Table(
    "velocity_locks",
    metadata,
    Column("key", String(200), primary_key=True),
)

# --- Network pauses and the circuit breaker (0016) ---

#: One row per network that was ever paused, resumed or checked by a breaker, and one for every
#: network at once (``network = "*"``, the freeze). ``paused_at`` NULL: the network runs. Signing
#: a new payout locks its network's row (and the freeze row), so a pause, a resume and a
#: breaker's sum of the outflow are serialized with the signatures they govern
#: (`sluice.services.pauses`).
network_pauses = Table(
    "network_pauses",
    metadata,
    Column("network", String(64), primary_key=True),
    Column("paused_at", UTCDateTime),
    # `manual` or `circuit_breaker` (`sluice.domain.pauses.PauseKind`).
    Column("kind", String(16)),
    Column("reason", Text),
    # Who paused it (`Actor.label`).
    Column("actor", String(160)),
    # The breaker's window starts no earlier than the last resume.
    Column("resumed_at", UTCDateTime),
    Column("resumed_by", String(160)),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: The breaker sums a network's payouts signed within its window (0016).
Index(None, chain_transactions.c.network, chain_transactions.c.created_at)

# ── Webhooks (docs/webhooks.md) ──────────────────────────────────────────────────────────────

#: A platform's URLs that receive events. The secret is stored as is: Sluice signs with it (it
#: is a shared signing key, not a password to compare).
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("url", Text, nullable=False),
    # A JSON list of event types; empty: every type.
    Column("event_types", JSON, nullable=False),
    Column("description", Text, nullable=False),
    Column("secret", String(128), nullable=False),
    Column("previous_secret", String(128)),
    Column("previous_secret_until", UTCDateTime),
    Column("disabled_at", UTCDateTime),
    Column("disabled_reason", Text),
    Column("failing_since", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: Every status change of a withdrawal, written in the transaction that made it (the unit of
#: work's commit); fanned out to the subscribed endpoints by the workers (``dispatched``).
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("seq", SurrogateKey, primary_key=True, autoincrement=True),
    Column("id", String(40), nullable=False, unique=True),
    Column("type", String(64), nullable=False),
    Column("withdrawal_id", String(64), nullable=False),
    Column("data", JSON, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("dispatched", Boolean, nullable=False, server_default=false()),
    Index(None, "dispatched", "seq"),
    Index(None, "at"),
)

#: One event to one endpoint. A worker claims a due row (``claim``, ``claimed_until``: a lease),
#: sends outside any transaction, and writes the outcome only if its claim still holds; a worker
#: killed mid-delivery leaves the row to be claimed again once the lease lapses.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("seq", SurrogateKey, primary_key=True, autoincrement=True),
    Column("id", String(40), nullable=False, unique=True),
    Column("endpoint_id", ForeignKey("webhook_endpoints.id"), nullable=False),
    Column("event_seq", ForeignKey("webhook_events.seq"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime),
    Column("claim", String(32)),
    Column("claimed_until", UTCDateTime),
    Column("last_attempt_at", UTCDateTime),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("delivered_at", UTCDateTime),
    Column("replay_of", String(40)),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "status", "next_attempt_at"),
    Index(None, "endpoint_id", "seq"),
)
