"""A contract creation (``to`` None) is signed with an empty ``to`` by every in-process path,
byte for byte as eth_account signs it; the remote signer never asks `sluice signer` for one,
whose request format cannot even carry one."""

from __future__ import annotations

from typing import cast

import pytest
from eth_account import Account
from eth_account._utils.legacy_transactions import serializable_unsigned_transaction_from_dict
from pydantic import ValidationError

from sluice.devnet.anvil import DEV_ACCOUNTS
from sluice.domain.fees import FeeModel, Fees
from sluice.domain.transaction import AttemptPurpose, TransactionKind, UnsignedTransaction
from sluice.errors import SigningRefusedError
from sluice.keyholder.protocol import SignRequest
from sluice.ports import SigningContext
from sluice.signers.eip1559 import (
    sign_with_account,
    signed_serialization,
    signing_hash,
    transaction_fields,
    unsigned_serialization,
)
from sluice.signers.remote import RemoteSigner, SignerClient

ACCOUNT = Account.from_key(DEV_ACCOUNTS[2].private_key)
INIT_CODE = bytes.fromhex("6080604052348015600f57600080fd5b50")


def _creation(model: FeeModel) -> UnsignedTransaction:
    fees = Fees.legacy(5 * 10**9) if model is FeeModel.LEGACY else Fees(3 * 10**9, 10**9)
    return UnsignedTransaction(
        chain_id=31337,
        nonce=3,
        to=None,
        value=0,
        data=INIT_CODE,
        gas=400_000,
        fees=fees,
        fee_model=model,
    )


@pytest.mark.parametrize("model", list(FeeModel))
def test_a_creation_has_no_to_in_the_dictionary_and_an_empty_to_in_the_encoding(
    model: FeeModel,
) -> None:
    transaction = _creation(model)
    fields = transaction_fields(transaction)

    assert "to" not in fields
    # The digest eth_account computes from the dictionary is that of our own RLP encoding.
    expected = bytes(serializable_unsigned_transaction_from_dict(fields).hash())
    assert signing_hash(transaction) == expected
    assert b"\x80" in unsigned_serialization(transaction)  # the empty string, where `to` goes


@pytest.mark.parametrize("model", list(FeeModel))
def test_a_creation_signed_from_a_digest_is_the_one_signed_with_the_key(model: FeeModel) -> None:
    transaction = _creation(model)
    signed = sign_with_account(ACCOUNT, transaction)
    reference = ACCOUNT.sign_transaction(transaction_fields(transaction))
    y_parity = reference.v - 31337 * 2 - 35 if model is FeeModel.LEGACY else reference.v

    # A KMS signer encodes from a signature over `signing_hash`: the same bytes.
    assert signed_serialization(transaction, y_parity, reference.r, reference.s) == signed.raw
    assert Account.recover_transaction(signed.raw) == ACCOUNT.address


async def test_the_remote_signer_refuses_a_creation_without_asking_the_signer() -> None:
    # No client at all: a refusal that reached for it would fail otherwise.
    signer = RemoteSigner(cast(SignerClient, None), "devnet", ACCOUNT.address)
    context = SigningContext(
        network="devnet",
        transaction_id="tx_1",
        kind=TransactionKind.PAYOUT,
        purpose=AttemptPurpose.PAYLOAD,
    )

    with pytest.raises(SigningRefusedError, match="never a contract creation"):
        await signer.sign(_creation(FeeModel.EIP1559), context)


@pytest.mark.parametrize("to", [None, "", "0x"])
def test_a_sign_request_cannot_name_no_recipient(to: str | None) -> None:
    fields: dict[str, object] = {
        "network": "devnet",
        "wallet": ACCOUNT.address,
        "chain_id": 31337,
        "nonce": 3,
        "value": "0",
        "data": "0x" + INIT_CODE.hex(),
        "gas": 400_000,
        "max_fee_per_gas": "3000000000",
        "max_priority_fee_per_gas": "1000000000",
        "transaction_id": "tx_1",
        "kind": "PAYOUT",
        "purpose": "PAYLOAD",
    }
    if to is not None:
        fields["to"] = to

    with pytest.raises(ValidationError, match="to"):
        SignRequest.model_validate(fields)
