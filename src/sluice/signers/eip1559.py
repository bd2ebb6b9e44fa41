"""What every signer adapter shares: the transaction it signs, type 2 (EIP-1559) or type 0
(legacy, EIP-155) as the transaction's ``fee_model`` says, and the signed result.

`transaction_fields` is the one place a `UnsignedTransaction` becomes eth_account's transaction
dictionary, so a keystore, a Secrets Manager and a KMS signer sign byte-identical payloads. A
signer that gets only a signature over a digest (KMS) hashes with `signing_hash` and encodes
with `signed_serialization`; `unsigned_serialization` is what an OP Stack chain's GasPriceOracle
prices (`sluice.ports.ChainClient.l1_fee`).

A contract creation (``to`` None: `sluice contracts deploy`) has an empty ``to``: no key in
the dictionary, the empty string in the RLP encodings.

The module keeps its name from when every transaction was type 2.

Legacy transactions are EIP-155's: the signature covers ``rlp([nonce, gasPrice, gas, to, value,
data, chainId, 0, 0])`` and ``v`` is ``chainId * 2 + 35 + y_parity``, so the signed bytes are
valid on one chain only. eth_account has no public encoder of a legacy transaction from its
fields and a signature, so those are RLP-encoded here with pyrlp (`rlp`, the Ethereum
Foundation's encoder that eth_account itself depends on); the unit tests hold every encoding
here to eth_account's own signing, byte for byte.
"""

from __future__ import annotations

from typing import Final

import rlp
from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_account.types import TransactionDictType
from eth_typing import HexStr
from eth_utils.crypto import keccak

from sluice.domain.fees import FeeModel
from sluice.domain.transaction import SignedTransaction, UnsignedTransaction

__all__ = [
    "EIP155_V_OFFSET",
    "EIP1559_TYPE",
    "sign_with_account",
    "signed_serialization",
    "signed_transaction",
    "signing_hash",
    "transaction_fields",
    "unsigned_serialization",
]

#: EIP-2718 type of an EIP-1559 (dynamic fee) transaction.
EIP1559_TYPE: Final = 2

#: EIP-155: a legacy transaction's ``v`` is ``chainId * 2 + 35`` plus the signature's y parity.
EIP155_V_OFFSET: Final = 35

RlpItem = int | bytes | list["RlpItem"]


def transaction_fields(transaction: UnsignedTransaction) -> TransactionDictType:
    """The unsigned transaction as eth_account's dictionary: type 2 (no access list), or a
    legacy EIP-155 one (``gasPrice`` is ``fees.max_fee_per_gas``; no type field, which is what
    eth_account signs as type 0). A contract creation has no ``to`` key."""
    fields: TransactionDictType
    if transaction.fee_model is FeeModel.LEGACY:
        fields = {
            "chainId": transaction.chain_id,
            "nonce": transaction.nonce,
            "value": transaction.value,
            "data": transaction.data,
            "gas": transaction.gas,
            "gasPrice": transaction.fees.max_fee_per_gas,
        }
    else:
        fields = {
            "type": EIP1559_TYPE,
            "chainId": transaction.chain_id,
            "nonce": transaction.nonce,
            "value": transaction.value,
            "data": transaction.data,
            "gas": transaction.gas,
            "maxFeePerGas": transaction.fees.max_fee_per_gas,
            "maxPriorityFeePerGas": transaction.fees.max_priority_fee_per_gas,
        }
    if transaction.to is not None:
        fields["to"] = HexStr(transaction.to)
    return fields


def unsigned_serialization(transaction: UnsignedTransaction) -> bytes:
    """The transaction's unsigned encoding, the preimage of its signing hash: ``0x02 ||
    rlp([chainId, nonce, tip, feeCap, gas, to, value, data, []])``, or for a legacy one
    ``rlp([nonce, gasPrice, gas, to, value, data, chainId, 0, 0])``."""
    if transaction.fee_model is FeeModel.LEGACY:
        return _rlp([*_legacy_fields(transaction), transaction.chain_id, 0, 0])
    return bytes([EIP1559_TYPE]) + _rlp(_eip1559_fields(transaction))


def signing_hash(transaction: UnsignedTransaction) -> bytes:
    """The 32-byte digest the wallet's key signs."""
    if transaction.fee_model is FeeModel.LEGACY:
        return keccak(unsigned_serialization(transaction))
    return bytes(TypedTransaction.from_dict(transaction_fields(transaction)).hash())


def signed_serialization(transaction: UnsignedTransaction, y_parity: int, r: int, s: int) -> bytes:
    """The signed transaction's raw bytes, from a signature over `signing_hash` (``y_parity``
    0 or 1, low ``s``)."""
    if y_parity not in {0, 1}:
        raise ValueError("the y parity of a signature is 0 or 1")
    if transaction.fee_model is FeeModel.LEGACY:
        v = transaction.chain_id * 2 + EIP155_V_OFFSET + y_parity
        return _rlp([*_legacy_fields(transaction), v, r, s])
    # TypedTransaction (eth_account's public typed-transaction module) encodes a signed
    # transaction from its fields plus v, r, s; it is what eth_account's own signing does.
    fields = transaction_fields(transaction)
    return bytes(TypedTransaction.from_dict({**fields, "v": y_parity, "r": r, "s": s}).encode())


def signed_transaction(raw: bytes) -> SignedTransaction:
    """A signed transaction from its raw bytes; the hash is keccak(raw), 0x-prefixed lowercase."""
    return SignedTransaction(raw=raw, hash="0x" + keccak(raw).hex())


def sign_with_account(account: LocalAccount, transaction: UnsignedTransaction) -> SignedTransaction:
    """Sign with a key held in this process (keystore and Secrets Manager signers)."""
    signed = account.sign_transaction(transaction_fields(transaction))
    return signed_transaction(bytes(signed.raw_transaction))


def _legacy_fields(transaction: UnsignedTransaction) -> list[RlpItem]:
    return [
        transaction.nonce,
        transaction.fees.max_fee_per_gas,
        transaction.gas,
        _to(transaction),
        transaction.value,
        transaction.data,
    ]


def _eip1559_fields(transaction: UnsignedTransaction) -> list[RlpItem]:
    return [
        transaction.chain_id,
        transaction.nonce,
        transaction.fees.max_priority_fee_per_gas,
        transaction.fees.max_fee_per_gas,
        transaction.gas,
        _to(transaction),
        transaction.value,
        transaction.data,
        [],  # no access list
    ]


def _to(transaction: UnsignedTransaction) -> bytes:
    """The ``to`` field's bytes: the 20-byte address, or empty for a contract creation."""
    return b"" if transaction.to is None else bytes.fromhex(transaction.to[2:])


def _rlp(item: RlpItem) -> bytes:
    """Recursive Length Prefix encoding (pyrlp: integers big-endian without leading zeros)."""
    return bytes(rlp.encode(item))
