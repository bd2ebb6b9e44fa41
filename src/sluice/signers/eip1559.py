"""What every signer adapter shares: the EIP-1559 transaction it signs, and the signed result.

`transaction_fields` is the one place a `UnsignedTransaction` becomes eth_account's transaction
dictionary, so a keystore, a Secrets Manager and a KMS signer sign byte-identical payloads.
"""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from eth_account.types import TransactionDictType
from eth_typing import HexStr
from eth_utils.crypto import keccak

from sluice.domain.transaction import SignedTransaction, UnsignedTransaction

__all__ = ["sign_with_account", "signed_transaction", "transaction_fields"]

#: EIP-2718 type of an EIP-1559 (dynamic fee) transaction.
EIP1559_TYPE = 2


def transaction_fields(transaction: UnsignedTransaction) -> TransactionDictType:
    """The unsigned type-2 transaction as eth_account's dictionary (no access list)."""
    return {
        "type": EIP1559_TYPE,
        "chainId": transaction.chain_id,
        "nonce": transaction.nonce,
        "to": HexStr(transaction.to),
        "value": transaction.value,
        "data": transaction.data,
        "gas": transaction.gas,
        "maxFeePerGas": transaction.fees.max_fee_per_gas,
        "maxPriorityFeePerGas": transaction.fees.max_priority_fee_per_gas,
    }


def signed_transaction(raw: bytes) -> SignedTransaction:
    """A signed transaction from its raw bytes; the hash is keccak(raw), 0x-prefixed lowercase."""
    return SignedTransaction(raw=raw, hash="0x" + keccak(raw).hex())


def sign_with_account(account: LocalAccount, transaction: UnsignedTransaction) -> SignedTransaction:
    """Sign with a key held in this process (keystore and Secrets Manager signers)."""
    signed = account.sign_transaction(transaction_fields(transaction))
    return signed_transaction(bytes(signed.raw_transaction))
