"""Batch payouts in the domain: the batch contract's calls written and read back, its events,
the fee shares, and what a batch transaction does to the withdrawals it carries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from eth_abi.abi import encode

from sluice.domain.addresses import Address
from sluice.domain.assets import Asset, Batching, Network
from sluice.domain.batches import (
    MAX_TRANSACTION_GAS,
    PAY_NATIVE,
    PAY_TOKEN,
    UnreadableBatchError,
    batch_payload,
    failed_index,
    fee_shares,
    paid_indices,
    read_batch,
    saves_gas,
)
from sluice.domain.fees import Fees
from sluice.domain.payments import Payment, UnreadablePayloadError, payments_of
from sluice.domain.receipts import Log
from sluice.domain.transaction import (
    BATCH_SELECTORS,
    Attempt,
    AttemptPurpose,
    ChainTransaction,
    Payload,
    TransactionStatus,
)
from sluice.domain.withdrawal import ErrorCode, Withdrawal, WithdrawalStatus

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
WALLET = Address("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
OTHER_WALLET = Address("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
CONTRACT = Address("0x5FbDB2315678afecb367f032d93F642f64180aa3")
OTHER_CONTRACT = Address("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512")
TOKEN = Address("0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0")
ALICE = Address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
BOB = Address("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359")
FEES = Fees(max_fee_per_gas=30, max_priority_fee_per_gas=2)

NETWORK = Network(
    name="ethereum",
    chain_id=1,
    native=Asset(network="ethereum", symbol="ETH", decimals=18),
    tokens=(Asset(network="ethereum", symbol="USDT", decimals=6, token_address=TOKEN),),
    batching=Batching(contracts=((WALLET, CONTRACT),)),
)


# ── The calls ─────────────────────────────────────────────────────────────────────────────────


def test_a_native_batch_sends_the_sum_of_its_amounts_and_reads_back_to_its_payments() -> None:
    payload = batch_payload(CONTRACT, None, [(ALICE, 5), (BOB, 7)])
    assert payload.to == CONTRACT
    assert payload.value == 12
    assert payload.data[:4] == PAY_NATIVE
    batch = read_batch(payload)
    assert batch.token is None
    assert batch.payments == ((ALICE, 5), (BOB, 7))


def test_a_token_batch_sends_no_coin_and_names_its_token() -> None:
    payload = batch_payload(CONTRACT, TOKEN, [(ALICE, 5), (ALICE, 5)])
    assert payload.value == 0
    assert payload.data[:4] == PAY_TOKEN
    batch = read_batch(payload)
    assert batch.token == TOKEN
    assert batch.payments == ((ALICE, 5), (ALICE, 5))


def test_both_selectors_are_the_ones_a_transaction_knows_as_batches() -> None:
    assert {PAY_NATIVE, PAY_TOKEN} == BATCH_SELECTORS


@pytest.mark.parametrize(
    ("data", "value", "match"),
    [
        pytest.param(b"\x12\x34\x56\x78", 0, "neither payNative nor payToken", id="selector"),
        pytest.param(PAY_NATIVE + b"\x00" * 40, 0, "does not decode", id="truncated"),
        pytest.param(
            PAY_NATIVE + encode(["address[]", "uint256[]"], [[ALICE], [1, 2]]),
            3,
            "differ in length",
            id="lengths",
        ),
        pytest.param(
            batch_payload(CONTRACT, None, [(ALICE, 5)]).data + b"\x00" * 32,
            5,
            "not canonically encoded",
            id="trailing-bytes",
        ),
        pytest.param(
            batch_payload(CONTRACT, None, [(ALICE, 5)]).data, 6, "sends 6 wei", id="value"
        ),
        pytest.param(
            batch_payload(CONTRACT, TOKEN, [(ALICE, 5)]).data, 1, "sends 1 wei", id="token-value"
        ),
    ],
)
def test_a_batch_call_that_is_not_exactly_a_batch_is_unreadable(
    data: bytes, value: int, match: str
) -> None:
    with pytest.raises(UnreadableBatchError, match=match):
        read_batch(Payload(to=CONTRACT, value=value, data=data))


def test_the_index_a_payment_failed_revert_names_is_read() -> None:
    assert failed_index(bytes.fromhex("1e67017f") + (3).to_bytes(32, "big")) == 3


@pytest.mark.parametrize(
    "data",
    [
        b"",
        bytes.fromhex("30cd7471"),  # NotOwner()
        bytes.fromhex("1e67017f") + b"\x00" * 31,  # too short
        bytes.fromhex("08c379a0") + (3).to_bytes(32, "big"),  # another selector
    ],
)
def test_any_other_revert_names_no_payment(data: bytes) -> None:
    assert failed_index(data) is None


def _paid(index: int, address: Address = CONTRACT, topics: tuple[str, ...] = ()) -> Log:
    return Log(address=address, topics=topics, data=index.to_bytes(4, "big"))


def test_paid_events_count_only_from_the_batch_contract_itself() -> None:
    logs = [
        _paid(0),
        _paid(2, address=OTHER_CONTRACT),  # anyone can emit the same event
        _paid(3, topics=("0x" + "11" * 32,)),  # a named event: not Paid
        Log(address=CONTRACT, topics=(), data=(5).to_bytes(32, "big")),  # not 4 bytes
        _paid(1, address=Address(CONTRACT.lower())),
    ]
    assert paid_indices(logs, CONTRACT) == {0, 1}


def test_fee_shares_add_up_to_the_fee() -> None:
    assert fee_shares(100, 3) == [34, 33, 33]
    assert fee_shares(99, 3) == [33, 33, 33]
    assert sum(fee_shares(10**18 + 7, 50)) == 10**18 + 7


def test_a_fee_is_shared_by_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least one"):
        fee_shares(100, 0)


def test_a_batch_saves_gas_only_when_it_uses_less_than_the_single_transactions() -> None:
    assert saves_gas(41_999, [21_000, 21_000])
    assert not saves_gas(42_000, [21_000, 21_000])


def test_the_gas_cap_is_eip_7825s() -> None:
    assert MAX_TRANSACTION_GAS == 2**24


# ── The network's settings ────────────────────────────────────────────────────────────────────


def test_batching_names_each_wallets_own_contract() -> None:
    batching = NETWORK.batching
    assert batching.on
    assert batching.contract_of(WALLET) == CONTRACT
    assert batching.contract_of(Address(WALLET.lower())) == CONTRACT
    assert batching.contract_of(OTHER_WALLET) is None
    assert batching.is_contract(CONTRACT.lower())
    assert not batching.is_contract(OTHER_CONTRACT)


def test_batching_is_off_when_disabled_without_contracts_or_with_room_for_one() -> None:
    assert not Batching().on
    off = Batching(contracts=((WALLET, CONTRACT),), enabled=False)
    assert not off.on
    assert off.contract_of(WALLET) is None
    assert not Batching(contracts=((WALLET, CONTRACT),), max_size=1).on


def test_a_wallets_configured_contract_stays_known_with_batching_off() -> None:
    off = Batching(contracts=((WALLET, CONTRACT),), enabled=False)
    assert off.configured(WALLET) == CONTRACT  # its batches in flight are still its own
    assert off.configured(OTHER_WALLET) is None


# ── What a signer reads ───────────────────────────────────────────────────────────────────────


def test_a_batch_reads_to_one_payment_per_position_of_the_coin_or_token() -> None:
    native = batch_payload(CONTRACT, None, [(ALICE, 5), (BOB, 7)])
    assert payments_of(native, NETWORK) == [Payment("native", ALICE, 5), Payment("native", BOB, 7)]
    token = batch_payload(CONTRACT, TOKEN, [(BOB, 9)])
    assert payments_of(token, NETWORK) == [Payment(TOKEN.lower(), BOB, 9)]


def test_a_batch_of_a_token_not_configured_is_unreadable() -> None:
    payload = batch_payload(CONTRACT, OTHER_CONTRACT, [(BOB, 9)])
    with pytest.raises(UnreadablePayloadError, match="no token configured"):
        payments_of(payload, NETWORK)


def test_a_malformed_batch_is_unreadable_to_the_signer() -> None:
    with pytest.raises(UnreadablePayloadError, match="does not decode"):
        payments_of(Payload(to=CONTRACT, value=0, data=PAY_TOKEN + b"\x01"), NETWORK)


# ── A batch transaction ───────────────────────────────────────────────────────────────────────


def _withdrawal(wid: str, seq: int, token: Address | None = None) -> Withdrawal:
    return Withdrawal(
        id=wid,
        user_id="alice",
        network="ethereum",
        asset_key="native" if token is None else token.lower(),
        token_address=token,
        amount=5,
        to_address=ALICE,
        status=WithdrawalStatus.VALIDATING,
        created_at=T0,
        updated_at=T0,
        fingerprint="f",
        seq=seq,
    )


def _attempt(seq: int, purpose: AttemptPurpose = AttemptPurpose.PAYLOAD) -> Attempt:
    return Attempt(
        id=f"at_{seq}",
        transaction_id="tx_b",
        seq=seq,
        fees=FEES,
        raw=b"\x02",
        hash="0x" + f"{seq:064x}",
        created_at=T0,
        purpose=purpose,
    )


def _batch(*wids: str, token: Address | None = None) -> ChainTransaction:
    withdrawals = [_withdrawal(w, i + 1, token) for i, w in enumerate(wids)]
    transaction = ChainTransaction(
        id="tx_b",
        network="ethereum",
        from_address=WALLET,
        nonce=3,
        payload=batch_payload(CONTRACT, token, [(w.to_address, w.amount) for w in withdrawals]),
        gas_limit=200_000,
        status=TransactionStatus.SIGNED,
        created_at=T0,
        updated_at=T0,
    )
    transaction.signed(_attempt(1), withdrawals)
    transaction.sent(transaction.latest, note_=None, at=T0)
    return transaction


def _settle(
    transaction: ChainTransaction,
    *,
    succeeded: bool = True,
    unpaid: frozenset[str] = frozenset(),
    seq: int = 1,
) -> None:
    transaction.settle(
        block_number=100,
        block_hash="0x" + "b" * 64,
        transaction_hash=_attempt(seq).hash,
        succeeded=succeeded,
        unpaid=unpaid,
        at=T0,
        fee_paid=90,
    )


def test_a_batch_knows_each_withdrawals_position() -> None:
    transaction = _batch("wd_a", "wd_b", "wd_c")
    assert transaction.is_batch
    assert [transaction.position(w) for w in ("wd_a", "wd_b", "wd_c")] == [0, 1, 2]
    with pytest.raises(ValueError, match="does not carry"):
        transaction.position("wd_z")


def test_a_reverted_batch_puts_each_withdrawal_back_to_be_paid_on_its_own() -> None:
    transaction = _batch("wd_a", "wd_b")
    transaction.settle(
        block_number=100,
        block_hash="0x" + "b" * 64,
        transaction_hash=_attempt(1).hash,
        succeeded=False,
        at=T0,
        fee_paid=90,
    )
    assert transaction.status is TransactionStatus.REVERTED
    for withdrawal in transaction.carried:
        assert withdrawal.status is WithdrawalStatus.VALIDATING
        assert withdrawal.unbatched
        assert withdrawal.transaction_id is None
        assert withdrawal.fee_paid is None


def test_a_reverted_batch_moves_no_funds_and_signs_each_again() -> None:
    transaction = _batch("wd_a", "wd_b")
    effects = transaction.settle(
        block_number=100,
        block_hash="0x" + "b" * 64,
        transaction_hash=_attempt(1).hash,
        succeeded=False,
        at=T0,
    )
    assert effects.moves == []
    assert effects.resign == ["wd_a", "wd_b"]
    assert "reverted in block 100" in effects.changes[-1].reason


def test_a_batch_a_node_refused_for_good_is_paid_again_on_its_own_after_its_no_op() -> None:
    transaction = _batch("wd_a", "wd_b")
    transaction.refused("intrinsic gas too low", at=T0)
    transaction.replaced(_attempt(2, AttemptPurpose.CANCEL), at=T0, stuck_after_s=60)
    effects = transaction.settle(
        block_number=100,
        block_hash="0x" + "b" * 64,
        transaction_hash=_attempt(2).hash,
        succeeded=True,
        at=T0,
    )
    assert transaction.status is TransactionStatus.CANCELLED
    assert effects.resign == ["wd_a", "wd_b"]
    assert all(w.status is WithdrawalStatus.VALIDATING for w in transaction.carried)
    assert "refused the batch of 2 for good" in effects.changes[-1].reason


def test_a_split_leaves_withdrawals_already_final_alone() -> None:
    transaction = _batch("wd_a", "wd_b")
    transaction.mined(
        block_number=100, block_hash="0x" + "b" * 64, transaction_hash=_attempt(1).hash, at=T0
    )
    transaction.carried[1].status = WithdrawalStatus.CANCELLED  # final before: left alone
    effects = transaction.settle(
        block_number=100,
        block_hash="0x" + "b" * 64,
        transaction_hash=_attempt(1).hash,
        succeeded=False,
        at=T0,
    )
    assert effects.resign == ["wd_a"]
    assert transaction.carried[1].status is WithdrawalStatus.CANCELLED


def test_a_batch_payment_without_its_paid_event_fails_and_the_others_complete() -> None:
    transaction = _batch("wd_a", "wd_b")
    _settle(transaction, unpaid=frozenset({"wd_b"}))
    first, second = transaction.carried
    assert first.status is WithdrawalStatus.COMPLETED
    assert second.status is WithdrawalStatus.FAILED
    assert second.error_code == ErrorCode.PAYMENT_NOT_FOUND
    assert [first.fee_paid, second.fee_paid] == [45, 45]


def test_a_token_batch_payment_without_its_transfer_fails_as_a_token_transfer() -> None:
    transaction = _batch("wd_a", "wd_b", token=TOKEN)
    _settle(transaction, unpaid=frozenset({"wd_a"}))
    assert transaction.carried[0].error_code == ErrorCode.TOKEN_TRANSFER_FAILED
    assert transaction.carried[1].status is WithdrawalStatus.COMPLETED


def test_a_single_payout_is_no_batch() -> None:
    transaction = ChainTransaction(
        id="tx_s",
        network="ethereum",
        from_address=WALLET,
        nonce=1,
        payload=Payload(to=ALICE, value=5, data=b""),
        gas_limit=21_000,
        status=TransactionStatus.SIGNED,
        created_at=T0,
        updated_at=T0,
    )
    assert not transaction.is_batch
