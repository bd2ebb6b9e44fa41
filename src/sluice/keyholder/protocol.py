"""The signer's wire format, shared by the server (`sluice.keyholder.app`) and its client
(`sluice.signers.remote`). Amounts and fees are decimal strings; bytes are 0x-hex."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from sluice.domain.fees import FeeModel
from sluice.domain.transaction import AttemptPurpose, TransactionKind

Hex = Annotated[StrictStr, Field(pattern=r"^0x([0-9a-fA-F]{2})*$", max_length=200_000)]
Decimal = Annotated[StrictStr, Field(pattern=r"^[0-9]{1,78}$")]
AddressText = Annotated[StrictStr, Field(pattern=r"^0x[0-9a-fA-F]{40}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SignRequest(_Strict):
    """A transaction to sign, and what it is for: type 2 (EIP-1559), or a legacy (type 0,
    EIP-155) one whose gas price is ``max_fee_per_gas`` when ``fee_model`` says so."""

    network: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    wallet: AddressText
    chain_id: int = Field(gt=0)
    nonce: int = Field(ge=0)
    to: AddressText
    value: Decimal
    data: Hex
    gas: int = Field(gt=0)
    max_fee_per_gas: Decimal
    max_priority_fee_per_gas: Decimal
    fee_model: FeeModel = FeeModel.EIP1559
    transaction_id: Annotated[StrictStr, Field(min_length=1, max_length=40)]
    kind: TransactionKind
    purpose: AttemptPurpose
    withdrawal_ids: list[Annotated[StrictStr, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=1000
    )


class SignResponse(_Strict):
    """The signed transaction."""

    raw: Hex
    hash: Annotated[StrictStr, Field(pattern=r"^0x[0-9a-f]{64}$")]


class WalletOut(_Strict):
    """A hot wallet the signer holds."""

    network: str
    address: AddressText
    draining: bool


class Refusal(_Strict):
    """Why the signer would not sign (problem+json's essentials)."""

    code: str
    detail: str
