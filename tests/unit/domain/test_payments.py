"""Payments read back from payloads (`payments_of`), and matched against withdrawals
(`match_withdrawals`): exactly the withdrawals named, each once, nothing else."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from eth_utils.address import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from sluice.domain.addresses import Address
from sluice.domain.assets import NATIVE, Asset, Network
from sluice.domain.payments import (
    Payment,
    PaymentMismatchError,
    UnreadablePayloadError,
    match_withdrawals,
    owed,
    payments_of,
)
from sluice.domain.transaction import TRANSFER_SELECTOR, Payload, transfer_payload
from sluice.domain.withdrawal import Withdrawal, WithdrawalStatus

FAST = settings(max_examples=200, deadline=None, database=None)

TOKEN = Address("0x5FbDB2315678afecb367f032d93F642f64180aa3")
OTHER_CONTRACT = Address("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512")
ALICE = Address("0x90F79bf6EB2c4f870365E785982E1f101E93b906")
BOB = Address("0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65")
NET = Network(
    name="devnet",
    chain_id=31337,
    native=Asset(network="devnet", symbol="ETH", decimals=18),
    tokens=(Asset(network="devnet", symbol="USDC", decimals=6, token_address=TOKEN),),
)
USDC = NET.tokens[0]
AT = datetime(2026, 12, 1, tzinfo=UTC)


def withdrawal(
    wid: str, to: Address = ALICE, amount: int = 10**18, asset: Asset = NET.native
) -> Withdrawal:
    return Withdrawal(
        id=wid,
        user_id="alice",
        network=NET.name,
        asset_key=asset.key,
        token_address=asset.token_address,
        amount=amount,
        to_address=to,
        status=WithdrawalStatus.VALIDATING,
        created_at=AT,
        updated_at=AT,
        fingerprint=wid,
    )


# ── payments_of ──────────────────────────────────────────────────────────────────────────────


def test_a_native_transfer_is_one_payment_of_its_value() -> None:
    assert payments_of(transfer_payload(NET.native, ALICE, 5), NET) == [Payment(NATIVE, ALICE, 5)]


def test_a_token_transfer_is_one_payment_of_the_token_to_its_recipient() -> None:
    payload = transfer_payload(USDC, BOB, 2_500_000)

    assert payments_of(payload, NET) == [Payment(USDC.key, BOB, 2_500_000)]


def test_a_transfer_of_nothing_pays_nobody() -> None:
    assert payments_of(Payload(to=ALICE, value=0, data=b""), NET) == []


def test_addresses_are_read_in_checksum_form_whatever_their_case() -> None:
    lower = Payload(to=Address(ALICE.lower()), value=7, data=b"")
    token_lower = Payload(
        to=Address(TOKEN.lower()), value=0, data=transfer_payload(USDC, BOB, 1).data
    )

    assert payments_of(lower, NET) == [Payment(NATIVE, ALICE, 7)]
    assert payments_of(token_lower, NET) == [Payment(USDC.key, BOB, 1)]


@given(
    amount=st.integers(min_value=0, max_value=2**256 - 1),
    recipient=st.binary(min_size=20, max_size=20),
    token=st.booleans(),
)
@FAST
def test_what_transfer_payload_builds_reads_back_as_its_payment(
    amount: int, recipient: bytes, token: bool
) -> None:
    to = Address(to_checksum_address(recipient))
    asset = USDC if token else NET.native

    payments = payments_of(transfer_payload(asset, to, amount), NET)

    assert payments == ([] if amount == 0 and not token else [Payment(asset.key, to, amount)])


def _transfer_data(word: bytes, amount: int = 1) -> bytes:
    return TRANSFER_SELECTOR + word + amount.to_bytes(32, "big")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param(
            Payload(to=OTHER_CONTRACT, value=0, data=transfer_payload(USDC, BOB, 1).data),
            "no token configured",
            id="unknown-contract",
        ),
        pytest.param(
            Payload(to=TOKEN, value=1, data=transfer_payload(USDC, BOB, 1).data),
            "also sends the native coin",
            id="value-with-token-call",
        ),
        pytest.param(
            Payload(to=TOKEN, value=0, data=bytes.fromhex("095ea7b3") + bytes(64)),
            "not transfer",
            id="approve",
        ),
        pytest.param(
            Payload(to=TOKEN, value=0, data=transfer_payload(USDC, BOB, 1).data + bytes(32)),
            "not transfer",
            id="trailing-word",
        ),
        pytest.param(
            Payload(to=TOKEN, value=0, data=transfer_payload(USDC, BOB, 1).data[:-1]),
            "not transfer",
            id="short",
        ),
        pytest.param(
            Payload(to=TOKEN, value=0, data=_transfer_data(b"\x01" + bytes(11) + bytes(20))),
            "not an address",
            id="dirty-address-word",
        ),
    ],
)
def test_a_payload_that_is_no_known_payment_is_unreadable(payload: Payload, reason: str) -> None:
    with pytest.raises(UnreadablePayloadError, match=reason):
        payments_of(payload, NET)


# ── match_withdrawals ────────────────────────────────────────────────────────────────────────


def test_the_payment_a_withdrawal_calls_for() -> None:
    assert owed(withdrawal("w1", BOB, 3, USDC)) == Payment(USDC.key, BOB, 3)


def test_payments_that_pay_each_withdrawal_once_match_in_any_order() -> None:
    w1, w2, w3 = withdrawal("w1"), withdrawal("w2", BOB, 5, USDC), withdrawal("w3", amount=1)

    match_withdrawals([owed(w3), owed(w1), owed(w2)], [w1, w2, w3])


def test_two_identical_withdrawals_need_two_identical_payments() -> None:
    w1, w2 = withdrawal("w1"), withdrawal("w2")  # same destination, amount and asset

    match_withdrawals([owed(w1), owed(w2)], [w1, w2])
    with pytest.raises(PaymentMismatchError, match=r"withdrawal w2 .* is not paid"):
        match_withdrawals([owed(w1)], [w1, w2])


def test_a_withdrawal_named_twice_is_refused_before_anything_else() -> None:
    w1 = withdrawal("w1")

    with pytest.raises(PaymentMismatchError, match="withdrawal w1 is named more than once"):
        match_withdrawals([owed(w1), owed(w1)], [w1, w1])


def test_naming_no_withdrawal_is_refused() -> None:
    with pytest.raises(PaymentMismatchError, match="none was named"):
        match_withdrawals([Payment(NATIVE, ALICE, 1)], [])


def test_a_payment_no_withdrawal_calls_for_is_refused() -> None:
    w1 = withdrawal("w1")
    extra = Payment(NATIVE, BOB, 1)

    with pytest.raises(PaymentMismatchError) as excinfo:
        match_withdrawals([owed(w1), extra], [w1])

    assert (
        str(excinfo.value)
        == f"the payload pays 1 of native to {BOB}, which no named withdrawal calls for"
    )


def test_a_named_withdrawal_the_payload_does_not_pay_is_refused() -> None:
    w1, w2 = withdrawal("w1"), withdrawal("w2", BOB)

    with pytest.raises(PaymentMismatchError) as excinfo:
        match_withdrawals([owed(w1)], [w1, w2])

    assert (
        str(excinfo.value)
        == f"withdrawal w2 (1000000000000000000 of native to {BOB}) is not paid by the payload"
    )


def test_a_wrong_amount_names_the_withdrawal_and_both_amounts() -> None:
    w1 = withdrawal("w1", amount=10)

    with pytest.raises(PaymentMismatchError) as excinfo:
        match_withdrawals([Payment(NATIVE, ALICE, 11)], [w1])

    assert (
        str(excinfo.value) == f"withdrawal w1 is for 10 of native to {ALICE}, the payload pays 11"
    )


@pytest.mark.parametrize(
    "payment",
    [
        pytest.param(Payment(USDC.key, ALICE, 10), id="other-asset"),
        pytest.param(Payment(NATIVE, BOB, 10), id="other-destination"),
    ],
)
def test_another_asset_or_destination_is_an_unpaid_withdrawal_and_an_extra_payment(
    payment: Payment,
) -> None:
    w1 = withdrawal("w1", amount=10)

    with pytest.raises(PaymentMismatchError) as excinfo:
        match_withdrawals([payment], [w1])

    assert str(excinfo.value).split("; ") == [
        f"withdrawal w1 (10 of native to {ALICE}) is not paid by the payload",
        f"the payload pays {payment}, which no named withdrawal calls for",
    ]


@given(
    amounts=st.lists(st.integers(min_value=1, max_value=10**30), min_size=1, max_size=8),
    drop=st.integers(min_value=0),
    data=st.data(),
)
@FAST
def test_matching_is_exact_as_multisets(amounts: list[int], drop: int, data: st.DataObject) -> None:
    withdrawals = [withdrawal(f"w{i}", amount=a) for i, a in enumerate(amounts)]
    payments = data.draw(st.permutations([owed(w) for w in withdrawals]))
    match_withdrawals(payments, withdrawals)

    fewer = [p for i, p in enumerate(payments) if i != drop % len(payments)]
    with pytest.raises(PaymentMismatchError):
        match_withdrawals(fewer, withdrawals)
    with pytest.raises(PaymentMismatchError):
        match_withdrawals([*payments, payments[drop % len(payments)]], withdrawals)
