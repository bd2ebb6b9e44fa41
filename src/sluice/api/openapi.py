"""The OpenAPI document as clients see it: names, tags and the shared error schemas.

FastAPI derives the document from the routes; this module finishes it once, on first request:
it adds the `Problem` and `FieldError` schemas every error response refers to, gives the
components the names an integrator reads (and a generated client turns into classes:
`Withdrawal`, not `WithdrawalOut`), and describes the tags.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from sluice.api.problems import FIELD_ERROR_SCHEMA, PROBLEM_SCHEMA
from sluice.request_signing import NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER

#: Python class → component name in the document. The classes keep their suffixes in the code,
#: where `Withdrawal` is the domain's.
PUBLIC_NAMES = {
    "WithdrawalCreate": "WithdrawalRequest",
    "WithdrawalOut": "Withdrawal",
    "EventOut": "Event",
    "AttemptOut": "Attempt",
    "TransactionOut": "Transaction",
    "BatchOut": "Batch",
    "HotWalletOut": "HotWallet",
    "BalanceOut": "Balance",
    "CreditCreate": "CreditRequest",
    "CreditOut": "CreditResult",
    "DeadLetterOut": "DeadLetter",
    "Check": "ReadinessCheck",
    "NetworkOut": "Network",
    "AssetOut": "NetworkAsset",
    "FinalityOut": "NetworkFinality",
    "FeeOut": "FeeLevelPrice",
    "FeeLimitsOut": "FeeLimits",
    "RpcHealthOut": "RpcHealth",
    "NetworkWalletOut": "NetworkHotWallet",
    "ExplorerOut": "Explorer",
    "BatchingOut": "NetworkBatching",
    "OperatorCreate": "OperatorRequest",
    "OperatorOut": "Operator",
    "OperatorKeyOut": "OperatorKey",
    "AuditEntryOut": "AuditEntry",
    "ApprovalOut": "Approval",
    "VoteOut": "ApprovalVote",
    "PolicyOut": "Policy",
    "PolicyVersionOut": "PolicyVersion",
    "PolicyReloadOut": "PolicyReload",
    "BlockedOut": "BlockedAddress",
    "AddressBookCreate": "AddressBookRequest",
    "AddressBookEntryOut": "AddressBookEntry",
    "PauseOut": "Pause",
    "NetworkPauseOut": "NetworkPause",
    "CircuitBreakerOut": "CircuitBreaker",
    "WebhookCreate": "WebhookRequest",
    "WebhookUpdate": "WebhookChange",
    "WebhookOut": "Webhook",
    "WebhookCreated": "WebhookWithSecret",
    "DeliveryOut": "WebhookDelivery",
    "DeliveryPage": "WebhookDeliveryPage",
    "ReplaySince": "WebhookReplayRequest",
    "ReplayOut": "WebhookReplayResult",
}

TAGS = [
    {"name": "withdrawals", "description": "Request, follow and cancel withdrawals."},
    {
        "name": "networks",
        "description": "The networks paid on: assets, finality, fees now, RPC health.",
    },
    {"name": "ledger", "description": "Users' balances, and credits by an operator."},
    {
        "name": "admin",
        "description": "Operators' work: dead letters, hot wallets, cancels at any stage.",
    },
    {
        "name": "operators",
        "description": "Operators, their keys, and the audit log; operators' own keys only.",
    },
    {
        "name": "policy",
        "description": "The withdrawal policy, the blocklist, users' address books.",
    },
    {
        "name": "webhooks",
        "description": "Endpoints that receive every status change, signed (docs/webhooks.md).",
    },
    {"name": "health", "description": "Liveness and readiness, without an API key."},
]

_REF = "#/components/schemas/"

#: The headers of a signed request (docs/api.md, "Signed requests"), on every operation that
#: takes an API key: required only of keys registered with a public key. Their formats are in
#: the descriptions, not in patterns: a key that does not sign ignores them, which a fuzzer
#: sending a malformed one would otherwise report as a schema violation accepted.
SIGNATURE_PARAMETERS = [
    {
        "name": TIMESTAMP_HEADER,
        "in": "header",
        "required": False,
        "description": "Signing keys only: Unix time in seconds (decimal digits)",
        "schema": {"type": "string"},
    },
    {
        "name": NONCE_HEADER,
        "in": "header",
        "required": False,
        "description": (
            "Signing keys only: 16-64 random characters of A-Z a-z 0-9 _ -, new per request"
        ),
        "schema": {"type": "string"},
    },
    {
        "name": SIGNATURE_HEADER,
        "in": "header",
        "required": False,
        "description": (
            "Signing keys only: base64 Ed25519 signature of timestamp, nonce, method, target"
            " and body, each but the body followed by a newline"
        ),
        "schema": {"type": "string"},
    },
]


def document(app: FastAPI) -> None:
    """Finish the app's OpenAPI document the first time it is asked for (then cached)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = generate()
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            schemas["Problem"] = PROBLEM_SCHEMA
            schemas["FieldError"] = FIELD_ERROR_SCHEMA
            doc["tags"] = TAGS
            for item in doc["paths"].values():
                for operation in item.values():
                    if operation.get("security"):
                        operation.setdefault("parameters", []).extend(SIGNATURE_PARAMETERS)
            app.openapi_schema = _renamed(doc, PUBLIC_NAMES)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _renamed(doc: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """The document with components renamed, every ``$ref`` to them and their titles too."""
    schemas = doc["components"]["schemas"]
    doc["components"]["schemas"] = {
        names.get(name, name): _retitled(schema, names.get(name))
        for name, schema in schemas.items()
    }
    refs = {f"{_REF}{old}": f"{_REF}{new}" for old, new in names.items()}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: refs.get(value, value) if key == "$ref" else walk(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    renamed: dict[str, Any] = walk(doc)
    return renamed


def _retitled(schema: dict[str, Any], title: str | None) -> dict[str, Any]:
    return schema if title is None else {**schema, "title": title}
