"""`sluice.signers.eip1559`: the fields, digests and encodings every signer shares, for type-2
and legacy (type 0, EIP-155) transactions, held byte for byte to eth_account's own signing."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account
from eth_account._utils.legacy_transactions import (
    Transaction as LegacyTransaction,
)
from eth_account._utils.legacy_transactions import (
    serializable_unsigned_transaction_from_dict,
)
from eth_utils.crypto import keccak
from hypothesis import given
from hypothesis import strategies as st

from sluice.devnet.anvil import DEV_ACCOUNTS
from sluice.domain.addresses import Address
from sluice.domain.fees import FeeModel, Fees
from sluice.domain.transaction import NATIVE_TRANSFER_GAS, UnsignedTransaction
from sluice.signers.eip1559 import (
    sign_with_account,
    signed_serialization,
    signing_hash,
    transaction_fields,
    unsigned_serialization,
)

KEY = DEV_ACCOUNTS[2].private_key
ACCOUNT = Account.from_key(KEY)
TO = Address(DEV_ACCOUNTS[1].address)
CHAIN_ID = 56


def _transaction(model: FeeModel, **changes: object) -> UnsignedTransaction:
    fees = Fees.legacy(5 * 10**9) if model is FeeModel.LEGACY else Fees(3 * 10**9, 10**9)
    transaction = UnsignedTransaction(
        chain_id=CHAIN_ID,
        nonce=7,
        to=TO,
        value=10**15,
        data=b"",
        gas=NATIVE_TRANSFER_GAS,
        fees=fees,
        fee_model=model,
    )
    return dataclasses.replace(transaction, **changes)  # type: ignore[arg-type]


def test_a_legacy_transaction_is_an_eip155_dictionary_without_type_2_fields() -> None:
    fields = transaction_fields(_transaction(FeeModel.LEGACY))

    assert fields == {
        "chainId": CHAIN_ID,
        "nonce": 7,
        "to": TO,
        "value": 10**15,
        "data": b"",
        "gas": NATIVE_TRANSFER_GAS,
        "gasPrice": 5 * 10**9,
    }


def test_an_eip1559_transaction_is_a_type_2_dictionary() -> None:
    fields = transaction_fields(_transaction(FeeModel.EIP1559))

    assert fields == {
        "type": 2,
        "chainId": CHAIN_ID,
        "nonce": 7,
        "to": TO,
        "value": 10**15,
        "data": b"",
        "gas": NATIVE_TRANSFER_GAS,
        "maxFeePerGas": 3 * 10**9,
        "maxPriorityFeePerGas": 10**9,
    }


def test_a_signed_legacy_transaction_is_type_0_with_an_eip155_v() -> None:
    signed = sign_with_account(ACCOUNT, _transaction(FeeModel.LEGACY))

    assert signed.raw[0] >= 0xC0  # an RLP list, not an EIP-2718 type byte
    decoded = LegacyTransaction.from_bytes(signed.raw)
    assert decoded.v in {CHAIN_ID * 2 + 35, CHAIN_ID * 2 + 36}
    assert (decoded.nonce, decoded.gasPrice, decoded.gas) == (7, 5 * 10**9, NATIVE_TRANSFER_GAS)
    assert Account.recover_transaction(signed.raw) == ACCOUNT.address
    assert signed.hash == "0x" + keccak(signed.raw).hex()


# Values around the RLP length boundaries: 0 (the empty string), single bytes below and at
# 0x80, 55- and 56-byte strings (one-byte and multi-byte length prefixes), large calldata.
quantities = st.one_of(
    st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, 0x100, 2**64 - 1, 2**256 - 1]),
    st.integers(min_value=0, max_value=2**256 - 1),
)
payloads = st.one_of(
    st.sampled_from([b"", b"\x00", b"\x7f", b"\x80", b"x" * 55, b"x" * 56, b"y" * 1100]),
    st.binary(max_size=300),
)


@given(
    model=st.sampled_from(FeeModel),
    chain_id=st.sampled_from([1, 56, 137, 31337, 2**32]),
    nonce=st.integers(min_value=0, max_value=2**64 - 2),
    value=quantities,
    data=payloads,
    gas=st.integers(min_value=21_000, max_value=30_000_000),
    fee=st.integers(min_value=0, max_value=10**15),
    tip=st.integers(min_value=0, max_value=10**15),
)
def test_digests_and_encodings_are_eth_accounts(
    *,
    model: FeeModel,
    chain_id: int,
    nonce: int,
    value: int,
    data: bytes,
    gas: int,
    fee: int,
    tip: int,
) -> None:
    fees = Fees.legacy(fee) if model is FeeModel.LEGACY else Fees(fee + tip, tip)
    transaction = _transaction(
        model, chain_id=chain_id, nonce=nonce, value=value, data=data, gas=gas, fees=fees
    )
    fields = transaction_fields(transaction)
    expected_digest = bytes(serializable_unsigned_transaction_from_dict(fields).hash())

    assert signing_hash(transaction) == expected_digest
    assert keccak(unsigned_serialization(transaction)) == expected_digest
    signed = ACCOUNT.sign_transaction(fields)
    y_parity = signed.v - chain_id * 2 - 35 if model is FeeModel.LEGACY else signed.v
    assert signed_serialization(transaction, y_parity, signed.r, signed.s) == bytes(
        signed.raw_transaction
    )


def test_the_unsigned_serialization_of_each_type() -> None:
    eip1559 = unsigned_serialization(_transaction(FeeModel.EIP1559))
    legacy = unsigned_serialization(_transaction(FeeModel.LEGACY))

    assert eip1559[0] == 2  # 0x02 || rlp([...])
    assert legacy[0] >= 0xC0
    # EIP-155's preimage ends with chainId, 0, 0 (56 = 0x38; the empty string is 0x80).
    assert legacy.endswith(bytes([0x38, 0x80, 0x80]))


def test_a_y_parity_is_0_or_1() -> None:
    with pytest.raises(ValueError, match="y parity"):
        signed_serialization(_transaction(FeeModel.LEGACY), 27, 1, 1)
