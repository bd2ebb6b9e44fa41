"""Request and response examples for the OpenAPI document (what `/docs` and clients show)."""

from __future__ import annotations

from typing import Any

RECIPIENT = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
HOT_WALLET = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
USDC = "0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238"
TX_HASH = "0x" + "3f" * 32
AT = "2026-12-02T10:15:30.123456Z"
LATER = "2026-12-02T10:16:02.654321Z"

WITHDRAWAL_REQUEST: dict[str, Any] = {
    "id": "payout-20261202-0042",
    "userId": "user-42",
    "amount": "250.5",
    "toAddress": RECIPIENT,
    "tokenAddress": USDC,
    "network": "sepolia",
}

WITHDRAWAL_REQUEST_EXAMPLES: dict[str, dict[str, Any]] = {
    "token": {"summary": "250.5 USDC on Sepolia", "value": WITHDRAWAL_REQUEST},
    "native": {
        "summary": "0.5 of the native coin, id from the Idempotency-Key header",
        "value": {
            "userId": "user-42",
            "amount": "0.5",
            "toAddress": RECIPIENT,
            "network": "sepolia",
        },
    },
}

WITHDRAWAL: dict[str, Any] = {
    "id": "payout-20261202-0042",
    "userId": "user-42",
    "amount": "250.5",
    "symbol": "USDC",
    "toAddress": RECIPIENT,
    "tokenAddress": USDC,
    "network": "sepolia",
    "status": "PENDING",
    "transactionHash": None,
    "blockNumber": None,
    "error": None,
    "errorCode": None,
    "waitingReason": None,
    "fee": "0.25",
    "policyVersion": None,
    "policyRule": None,
    "approvalExpiresAt": None,
    "createdAt": AT,
    "updatedAt": AT,
}

COMPLETED: dict[str, Any] = {
    **WITHDRAWAL,
    "status": "COMPLETED",
    "transactionHash": TX_HASH,
    "blockNumber": 7312044,
    "updatedAt": LATER,
}

PAGE: dict[str, Any] = {"items": [COMPLETED], "nextCursor": "eyJzIjo0Mn0"}

EVENTS: dict[str, Any] = {
    "withdrawalId": "payout-20261202-0042",
    "events": [
        {
            "fromStatus": None,
            "status": "PENDING",
            "at": AT,
            "reason": "accepted",
            "errorCode": None,
            "requestId": "req-7b1c",
            "data": None,
        },
        {
            "fromStatus": "VALIDATING",
            "status": "SIGNED",
            "at": "2026-12-02T10:15:31.002000Z",
            "reason": f"signed with nonce 17 by hot wallet {HOT_WALLET}",
            "errorCode": None,
            "requestId": "req-7b1c",
            "data": {
                "nonce": 17,
                "transactionHash": TX_HASH,
                "hotWallet": HOT_WALLET,
                "maxFeePerGas": "30000000000",
                "maxPriorityFeePerGas": "1500000000",
            },
        },
    ],
}

TRANSACTION: dict[str, Any] = {
    "id": "tx_6a0c9f3e2b7d4a1f8e5c0b9d7a3f2e1c",
    "network": "sepolia",
    "hotWallet": HOT_WALLET,
    "nonce": 17,
    "kind": "PAYOUT",
    "status": "CONFIRMED",
    "blockNumber": 7312044,
    "blockHash": "0x" + "9a" * 32,
    "minedHash": TX_HASH,
    "cancelRequestedAt": None,
    "feePaid": "1575000000000000",
    "batch": {"contract": "0x5FbDB2315678afecb367f032d93F642f64180aa3", "size": 50, "position": 7},
    "attempts": [
        {
            "seq": 1,
            "purpose": "PAYLOAD",
            "transactionHash": TX_HASH,
            "maxFeePerGas": "30000000000",
            "maxPriorityFeePerGas": "1500000000",
            "createdAt": "2026-12-02T10:15:31.002000Z",
            "sentAt": "2026-12-02T10:15:31.010000Z",
            "outcome": "MINED",
            "note": None,
        }
    ],
}

CANCEL_REQUEST: dict[str, Any] = {"reason": "the user reported a wrong address"}

CREDIT: dict[str, Any] = {
    "userId": "user-42",
    "network": "sepolia",
    "tokenAddress": USDC,
    "amount": "1000",
    "reference": "deposit-0x4e1f…:0",
}
CREDITED: dict[str, Any] = {"reference": "deposit-0x4e1f…:0", "credited": True}

BALANCES: list[dict[str, Any]] = [
    {
        "network": "sepolia",
        "tokenAddress": None,
        "symbol": "ETH",
        "available": "1.25",
        "held": "0",
    },
    {
        "network": "sepolia",
        "tokenAddress": USDC,
        "symbol": "USDC",
        "available": "749.5",
        "held": "250.5",
    },
]

HOT_WALLETS: list[dict[str, Any]] = [
    {
        "network": "sepolia",
        "address": HOT_WALLET,
        "state": "active",
        "inFlight": 2,
        "nativeSymbol": "ETH",
        "nativeBalance": "3.2",
    }
]

NETWORKS: list[dict[str, Any]] = [
    {
        "name": "sepolia",
        "displayName": "Sepolia",
        "preset": "sepolia",
        "chainId": 11155111,
        "assets": [
            {"symbol": "ETH", "decimals": 18, "tokenAddress": None},
            {"symbol": "USDC", "decimals": 6, "tokenAddress": USDC},
        ],
        "finality": {"rule": "finalized", "confirmations": 6},
        "blockTimeSeconds": 12.0,
        "feeModel": "eip1559",
        "defaultPriority": "normal",
        "feeLevels": {
            "slow": {"maxFeePerGas": "2530000000", "maxPriorityFeePerGas": "100000000"},
            "normal": {"maxFeePerGas": "3430000000", "maxPriorityFeePerGas": "1000000000"},
            "fast": {"maxFeePerGas": "4430000000", "maxPriorityFeePerGas": "2000000000"},
        },
        "feeLimits": {
            "maxFeePerGas": "500000000000",
            "maxTipPerGas": None,
            "minTipPerGas": "0",
            "minGasPrice": "0",
            "bumpPercent": 20,
        },
        "rpc": {"status": "up", "detail": "ok", "head": 7212345, "providers": 2},
        "hotWallets": [
            {
                "address": HOT_WALLET,
                "state": "active",
                "nativeBalance": "3.2",
                "batchContract": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            }
        ],
        "batching": {"enabled": True, "maxSize": 100, "windowSeconds": 12.0},
        "explorer": {
            "transaction": "https://sepolia.etherscan.io/tx/{hash}",
            "address": "https://sepolia.etherscan.io/address/{address}",
        },
        "circuitBreaker": {"windowSeconds": 3600, "maxOutflow": {"ETH": "50", "USDC": "250000"}},
        "paused": None,
    }
]

DEAD_LETTERS: list[dict[str, Any]] = [
    {
        "id": "1733134530123-0",
        "job": "transaction.broadcast",
        "payload": {"transactionId": "tx_6a0c9f3e2b7d4a1f8e5c0b9d7a3f2e1c"},
        "attempts": 8,
        "reason": "max attempts",
        "lastError": "chain_unavailable: every RPC endpoint failed",
        "deadAt": AT,
    }
]


def json_example(value: object, description: str) -> dict[str, Any]:
    """An OpenAPI response object with one JSON example."""
    return {"description": description, "content": {"application/json": {"example": value}}}
