"""The transaction aggregate: its transition table, and what each transition does to the
withdrawals it carries, the ledger and the engine's events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sluice.domain.addresses import Address
from sluice.domain.effects import Effects, EngineEvent, LedgerMove
from sluice.domain.fees import FeeLevel, Fees
from sluice.domain.ledger import EntryKind
from sluice.domain.transaction import (
    FOLLOWED,
    IN_FLIGHT,
    NATIVE_TRANSFER_GAS,
    TRANSACTION_TRANSITIONS,
    UNMINED,
    Attempt,
    AttemptPurpose,
    ChainTransaction,
    Payload,
    TransactionStatus,
)
from sluice.domain.withdrawal import ErrorCode, Withdrawal, WithdrawalStatus
from sluice.errors import InvalidStateError

T = TransactionStatus
W = WithdrawalStatus
T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(seconds=30)
WALLET = Address("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
DESTINATION = Address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
FEES = Fees(max_fee_per_gas=30, max_priority_fee_per_gas=2)
BLOCK_HASH = "0x" + "b" * 64
OTHER_BLOCK_HASH = "0x" + "c" * 64


def _withdrawal(
    wid: str, status: WithdrawalStatus = W.VALIDATING, priority: FeeLevel | None = None
) -> Withdrawal:
    return Withdrawal(
        id=wid,
        user_id="alice",
        network="ethereum",
        asset_key="ETH",
        token_address=None,
        amount=1_000,
        to_address=DESTINATION,
        status=status,
        created_at=T0,
        updated_at=T0,
        fingerprint="f",
        priority=priority,
    )


def _attempt(seq: int, purpose: AttemptPurpose = AttemptPurpose.PAYLOAD) -> Attempt:
    return Attempt(
        id=f"at_{seq}",
        transaction_id="tx_1",
        seq=seq,
        fees=FEES,
        raw=b"\x02",
        hash="0x" + f"{seq:064x}",
        created_at=T0,
        purpose=purpose,
    )


def _transaction(*wids: str, priority: FeeLevel | None = None) -> tuple[ChainTransaction, Effects]:
    transaction = ChainTransaction(
        id="tx_1",
        network="ethereum",
        from_address=WALLET,
        nonce=7,
        payload=Payload(to=DESTINATION, value=1_000, data=b""),
        gas_limit=NATIVE_TRANSFER_GAS,
        status=T.SIGNED,
        created_at=T0,
        updated_at=T0,
        priority=priority,
    )
    withdrawals = [_withdrawal(w, priority=priority) for w in wids or ("wd_a",)]
    effects = transaction.signed(_attempt(1), withdrawals)
    return transaction, effects


def _broadcast(*wids: str) -> ChainTransaction:
    transaction, _ = _transaction(*wids)
    transaction.sent(transaction.latest, note_=None, at=T0)
    return transaction


def _mined(*wids: str, seq: int = 1, fee_paid: int | None = None) -> ChainTransaction:
    transaction = _broadcast(*wids)
    if seq != 1:
        transaction.replaced(_attempt(seq, AttemptPurpose.CANCEL), at=T0, stuck_after_s=60)
    transaction.mined(
        block_number=100,
        block_hash=BLOCK_HASH,
        transaction_hash=_attempt(seq).hash,
        at=T0,
        fee_paid=fee_paid,
    )
    return transaction


def _statuses(transaction: ChainTransaction) -> list[WithdrawalStatus]:
    return [w.status for w in transaction.carried]


# ── The table ─────────────────────────────────────────────────────────────────────────────────

DIAGRAM = {
    T.SIGNED: {T.BROADCAST},
    T.BROADCAST: {T.MINED, T.SUPERSEDED},
    T.MINED: {T.BROADCAST, T.CONFIRMED, T.REVERTED, T.CANCELLED},
    T.CONFIRMED: set(),
    T.REVERTED: set(),
    T.CANCELLED: set(),
    T.SUPERSEDED: set(),
}


def test_the_transition_table_is_the_status_diagram() -> None:
    assert {k: set(v) for k, v in TRANSACTION_TRANSITIONS.items()} == DIAGRAM


def test_final_statuses_allow_no_move_and_the_sets_partition_the_statuses() -> None:
    for status in T:
        assert status.is_final == (not TRANSACTION_TRANSITIONS[status])
        assert status.in_flight == (status in IN_FLIGHT)
    assert UNMINED | FOLLOWED == IN_FLIGHT
    assert {T.BROADCAST} == UNMINED & FOLLOWED


def test_a_move_outside_the_table_is_refused() -> None:
    transaction, _ = _transaction()
    with pytest.raises(InvalidStateError, match="SIGNED transaction cannot become MINED"):
        transaction.mined(
            block_number=1, block_hash=BLOCK_HASH, transaction_hash=_attempt(1).hash, at=T1
        )


def test_methods_that_need_the_children_refuse_a_row_read_on_its_own() -> None:
    transaction, _ = _transaction()
    transaction.withdrawals = None
    with pytest.raises(InvalidStateError, match="without its withdrawals"):
        transaction.sent(_attempt(1), note_=None, at=T1)
    transaction.attempts = None
    with pytest.raises(InvalidStateError, match="without its attempts"):
        _ = transaction.latest


# ── Signing and sending ───────────────────────────────────────────────────────────────────────


def test_signing_moves_every_carried_withdrawal_to_signed_with_the_nonce_and_fees() -> None:
    transaction, effects = _transaction("wd_a", "wd_b")
    assert _statuses(transaction) == [W.SIGNED, W.SIGNED]
    assert [c.withdrawal_id for c in effects.changes] == ["wd_a", "wd_b"]
    change = effects.changes[0]
    assert change.data is not None
    assert change.data["nonce"] == 7
    assert change.data["maxFeePerGas"] == "30"
    assert all(w.transaction_id == "tx_1" for w in transaction.carried)
    assert all(w.transaction_hash == _attempt(1).hash for w in transaction.carried)


def test_a_transaction_is_signed_once() -> None:
    transaction, _ = _transaction()
    with pytest.raises(InvalidStateError, match="signed already"):
        transaction.signed(_attempt(2), [])


def test_sending_moves_signed_withdrawals_to_broadcasting_and_keeps_the_nodes_answer() -> None:
    transaction, _ = _transaction("wd_a", "wd_b")
    effects = transaction.sent(transaction.latest, note_="already_known", at=T1)
    assert transaction.status is T.BROADCAST
    assert transaction.updated_at == T1
    assert _statuses(transaction) == [W.BROADCASTING, W.BROADCASTING]
    assert effects.events == [EngineEvent.SENT]
    assert "(already_known)" in effects.changes[0].reason


# ── Cancels, refusals, replacements ───────────────────────────────────────────────────────────


def test_a_cancel_request_notes_every_withdrawal_once() -> None:
    transaction = _broadcast("wd_a", "wd_b")
    effects = transaction.cancel_requested("operator", at=T1)
    assert transaction.cancel_requested_at == T1
    assert len(effects.changes) == 2
    assert all(c.from_status is c.to_status for c in effects.changes)
    assert effects.events == [EngineEvent.CANCEL_REQUESTED]
    assert not transaction.cancel_requested("again", at=T1)


def test_a_mined_transaction_cannot_be_cancelled() -> None:
    transaction = _mined()
    with pytest.raises(InvalidStateError, match="mined"):
        transaction.cancel_requested("operator", at=T1)


def test_a_refusal_for_good_asks_for_a_noop_once_and_only_before_mining() -> None:
    transaction = _broadcast()
    effects = transaction.refused("gas_too_low", at=T1)
    assert transaction.refusal == "gas_too_low"
    assert transaction.cancel_requested_at == T1
    assert effects.events == [EngineEvent.REFUSED]
    assert "gas_too_low" in effects.changes[0].reason
    assert not transaction.refused("gas_too_low", at=T1)
    assert not _mined().refused("gas_too_low", at=T1)


def test_a_refusal_skips_withdrawals_that_are_final() -> None:
    transaction = _broadcast("wd_a", "wd_b")
    transaction.carried[1].status = W.CANCELLED
    effects = transaction.refused("wrong_chain_id", at=T1)
    assert [c.withdrawal_id for c in effects.changes] == ["wd_a"]


def test_a_replacement_points_broadcasting_withdrawals_at_the_new_attempt() -> None:
    transaction = _broadcast("wd_a", "wd_b")
    transaction.carried[1].status = W.CANCELLED  # not broadcasting: untouched
    effects = transaction.replaced(_attempt(2), at=T1, stuck_after_s=90)
    assert transaction.latest.seq == 2
    assert transaction.carried[0].transaction_hash == _attempt(2).hash
    assert transaction.carried[1].transaction_hash == _attempt(1).hash
    assert effects.events == [EngineEvent.REPLACED]
    assert effects.changes[0].reason.startswith("no receipt after 90 s")
    assert effects.changes[0].data is not None
    assert effects.changes[0].data["replaces"] == _attempt(1).hash


def test_the_first_noop_is_a_cancel_and_names_a_refusal_when_there_was_one() -> None:
    transaction = _broadcast()
    effects = transaction.replaced(_attempt(2, AttemptPurpose.CANCEL), at=T1, stuck_after_s=60)
    assert effects.events == [EngineEvent.CANCEL_SENT]
    assert effects.changes[0].reason.startswith("cancel: no-op replacement (attempt 2)")
    assert transaction.cancel_sent
    again = transaction.replaced(_attempt(3, AttemptPurpose.CANCEL), at=T1, stuck_after_s=60)
    assert again.events == [EngineEvent.REPLACED]

    refused = _broadcast()
    refused.refused("gas_limit_too_high", at=T1)
    effects = refused.replaced(_attempt(2, AttemptPurpose.CANCEL), at=T1, stuck_after_s=60)
    assert "refused for good (gas_limit_too_high)" in effects.changes[0].reason


def test_only_a_sent_unmined_transaction_is_replaced() -> None:
    with pytest.raises(InvalidStateError, match="not replaced"):
        _mined().replaced(_attempt(2), at=T1, stuck_after_s=60)


def test_the_cost_of_an_attempt_is_its_value_and_gas_at_its_fee_cap() -> None:
    transaction = _broadcast()
    assert transaction.cost(FEES, AttemptPurpose.PAYLOAD) == 1_000 + 30 * NATIVE_TRANSFER_GAS
    assert transaction.cost(FEES, AttemptPurpose.CANCEL) == 30 * NATIVE_TRANSFER_GAS


# ── Mining, re-orgs, settling ─────────────────────────────────────────────────────────────────


def test_mining_moves_broadcasting_withdrawals_to_confirming_with_the_block() -> None:
    transaction = _mined("wd_a", "wd_b")
    assert transaction.status is T.MINED
    assert (transaction.block_number, transaction.block_hash) == (100, BLOCK_HASH)
    assert _statuses(transaction) == [W.CONFIRMING, W.CONFIRMING]
    assert all(w.block_number == 100 for w in transaction.carried)


def test_the_same_receipt_twice_changes_nothing() -> None:
    transaction = _mined()
    again = transaction.mined(
        block_number=100, block_hash=BLOCK_HASH, transaction_hash=_attempt(1).hash, at=T1
    )
    assert not again
    assert transaction.updated_at == T0


def test_a_receipt_in_another_block_is_a_reorg_noted_on_confirming_withdrawals() -> None:
    transaction = _mined("wd_a", "wd_b")
    transaction.carried[1].status = W.CANCELLED  # final: not touched
    effects = transaction.mined(
        block_number=101, block_hash=OTHER_BLOCK_HASH, transaction_hash=_attempt(1).hash, at=T1
    )
    assert transaction.status is T.MINED
    assert transaction.block_number == 101
    assert effects.events == [EngineEvent.REORGED]
    assert [c.withdrawal_id for c in effects.changes] == ["wd_a"]
    assert effects.changes[0].reason.startswith("re-org: block 100 replaced")


def test_a_noop_mined_is_named_as_such() -> None:
    transaction = _broadcast()
    transaction.replaced(_attempt(2, AttemptPurpose.CANCEL), at=T0, stuck_after_s=60)
    effects = transaction.mined(
        block_number=5, block_hash=BLOCK_HASH, transaction_hash=_attempt(2).hash, at=T1
    )
    assert effects.changes[0].reason.startswith("a no-op cancel (attempt 2) mined")


def test_an_unknown_hash_is_not_an_attempt() -> None:
    with pytest.raises(ValueError, match="no attempt"):
        _broadcast().attempt("0x" + "9" * 64)


def test_a_reorg_sends_the_mined_attempt_again_and_unmines_the_withdrawals() -> None:
    transaction = _mined("wd_a")
    effects, resend = transaction.reorged(at=T1)
    assert transaction.status is T.BROADCAST
    assert (transaction.block_number, transaction.block_hash, transaction.mined_hash) == (
        None,
        None,
        None,
    )
    assert resend == _attempt(1)
    assert _statuses(transaction) == [W.BROADCASTING]
    assert transaction.carried[0].block_number is None
    assert effects.events == [EngineEvent.REORGED]


def test_a_reorg_of_a_broadcast_transaction_is_refused() -> None:
    with pytest.raises(InvalidStateError):
        _broadcast().reorged(at=T1)


def _settle(
    transaction: ChainTransaction,
    *,
    seq: int = 1,
    succeeded: bool = True,
    unpaid: frozenset[str] = frozenset(),
    fee_paid: int | None = None,
) -> Effects:
    return transaction.settle(
        block_number=100,
        block_hash=BLOCK_HASH,
        transaction_hash=_attempt(seq).hash,
        succeeded=succeeded,
        unpaid=unpaid,
        at=T1,
        fee_paid=fee_paid,
    )


def test_a_final_success_completes_and_settles_each_hold() -> None:
    transaction = _broadcast("wd_a", "wd_b")
    effects = _settle(transaction)
    assert transaction.status is T.CONFIRMED
    assert _statuses(transaction) == [W.COMPLETED, W.COMPLETED]
    assert effects.moves == [LedgerMove(w, EntryKind.SETTLE, 1_000) for w in transaction.carried]
    assert effects.outcome == (_attempt(1).hash,)
    assert effects.events == [EngineEvent.MINED, EngineEvent.SETTLED]


def test_a_final_revert_fails_and_releases() -> None:
    transaction = _mined()
    effects = _settle(transaction, succeeded=False)
    assert transaction.status is T.REVERTED
    withdrawal = transaction.carried[0]
    assert (withdrawal.status, withdrawal.error_code) == (W.FAILED, ErrorCode.REVERTED)
    assert effects.moves == [LedgerMove(withdrawal, EntryKind.RELEASE, 1_000)]


def test_a_final_noop_cancels_and_releases() -> None:
    transaction = _mined(seq=2)
    effects = _settle(transaction, seq=2)
    assert transaction.status is T.CANCELLED
    assert _statuses(transaction) == [W.CANCELLED]
    assert effects.moves[0].kind is EntryKind.RELEASE


def test_a_final_noop_after_a_refusal_fails_the_withdrawal_as_rejected() -> None:
    transaction = _broadcast()
    transaction.refused("gas_too_low", at=T0)
    transaction.replaced(_attempt(2, AttemptPurpose.CANCEL), at=T0, stuck_after_s=60)
    effects = _settle(transaction, seq=2)
    withdrawal = transaction.carried[0]
    assert (withdrawal.status, withdrawal.error_code) == (W.FAILED, ErrorCode.REJECTED)
    assert "gas_too_low" in (withdrawal.error or "")
    assert effects.moves[0].kind is EntryKind.RELEASE


def test_a_success_that_did_not_pay_a_withdrawal_fails_only_that_one() -> None:
    transaction = _mined("wd_a", "wd_b")
    effects = _settle(transaction, unpaid=frozenset({"wd_b"}))
    assert transaction.status is T.CONFIRMED
    paid, unpaid = transaction.carried
    assert paid.status is W.COMPLETED
    assert (unpaid.status, unpaid.error_code) == (W.FAILED, ErrorCode.TOKEN_TRANSFER_FAILED)
    assert [m.kind for m in effects.moves] == [EntryKind.SETTLE, EntryKind.RELEASE]


def test_settling_skips_withdrawals_that_are_not_confirming() -> None:
    transaction = _mined("wd_a", "wd_b")
    transaction.carried[1].status = W.CANCELLED
    effects = _settle(transaction)
    assert [m.withdrawal.id for m in effects.moves] == ["wd_a"]


# ── Superseded nonces ─────────────────────────────────────────────────────────────────────────


def test_a_superseded_transaction_sends_its_withdrawals_back_to_be_signed_again() -> None:
    transaction = _broadcast("wd_a", "wd_b")
    transaction.carried[1].status = W.CANCELLED
    effects = transaction.superseded(head=200, at=T1)
    assert transaction.status is T.SUPERSEDED
    first = transaction.carried[0]
    assert first.status is W.VALIDATING
    assert (first.transaction_id, first.transaction_hash) == (None, None)
    assert effects.resign == ["wd_a"]
    assert effects.outcome == (None,)
    assert effects.events == [EngineEvent.SUPERSEDED]


def test_a_nonce_seen_used_is_remembered_once_and_forgotten_after_a_reorg() -> None:
    transaction = _broadcast()
    assert transaction.nonce_seen_used(50)
    assert not transaction.nonce_seen_used(51)
    assert transaction.nonce_used_at_block == 50
    assert transaction.nonce_free_again()
    assert not transaction.nonce_free_again()
    assert transaction.nonce_used_at_block is None


# ── Effects ───────────────────────────────────────────────────────────────────────────────────


def test_effects_extend_in_order_and_keep_the_latest_outcome() -> None:
    first = Effects(events=[EngineEvent.MINED], resign=["a"])
    second = Effects(events=[EngineEvent.SETTLED], outcome=("0x1",), resign=["b"])
    assert first.extend(second) is first
    assert first.events == [EngineEvent.MINED, EngineEvent.SETTLED]
    assert first.resign == ["a", "b"]
    assert first.outcome == ("0x1",)
    assert first.extend(Effects()).outcome == ("0x1",)
    assert not Effects()


def test_sending_leaves_a_withdrawal_that_moved_on_alone() -> None:
    transaction, _ = _transaction("wd_a", "wd_b")
    transaction.carried[1].status = W.CANCELLED
    effects = transaction.sent(transaction.latest, note_=None, at=T1)
    assert [c.withdrawal_id for c in effects.changes] == ["wd_a"]


def test_a_refusal_keeps_an_operators_earlier_cancel_time() -> None:
    transaction = _broadcast()
    transaction.cancel_requested("operator", at=T0)
    transaction.refused("gas_too_low", at=T1)
    assert transaction.cancel_requested_at == T0


def test_a_reorg_leaves_withdrawals_that_are_not_confirming_alone() -> None:
    transaction = _mined("wd_a", "wd_b")
    transaction.carried[1].status = W.CANCELLED
    effects, _ = transaction.reorged(at=T1)
    assert [c.withdrawal_id for c in effects.changes] == ["wd_a"]


# ── Fees paid and priority ────────────────────────────────────────────────────────────────────

FEE_PAID = 21_000 * 25
OTHER_FEE_PAID = 21_000 * 27


def _fees_paid(transaction: ChainTransaction) -> list[int | None]:
    return [w.fee_paid for w in transaction.carried]


def test_nothing_is_paid_before_a_receipt() -> None:
    transaction = _broadcast("wd_a")
    assert transaction.fee_paid is None
    assert _fees_paid(transaction) == [None]


def test_mining_records_the_fee_paid_on_the_transaction_and_each_withdrawals_share() -> None:
    transaction = _mined("wd_a", "wd_b", fee_paid=FEE_PAID)
    assert transaction.fee_paid == FEE_PAID
    assert _fees_paid(transaction) == [FEE_PAID // 2, FEE_PAID // 2]


def test_shares_of_an_uneven_fee_add_up_to_it_the_first_a_wei_more() -> None:
    transaction = _mined("wd_a", "wd_b", "wd_c", fee_paid=100)
    assert _fees_paid(transaction) == [34, 33, 33]


def test_a_receipt_without_a_fee_records_none() -> None:
    transaction = _mined("wd_a")
    assert transaction.fee_paid is None
    assert _fees_paid(transaction) == [None]


def test_a_receipt_in_another_block_records_what_that_receipt_paid() -> None:
    transaction = _mined("wd_a", "wd_b", fee_paid=FEE_PAID)
    transaction.carried[1].status = W.CANCELLED  # final: not touched
    transaction.mined(
        block_number=101,
        block_hash=OTHER_BLOCK_HASH,
        transaction_hash=_attempt(1).hash,
        at=T1,
        fee_paid=OTHER_FEE_PAID,
    )
    assert transaction.fee_paid == OTHER_FEE_PAID
    assert _fees_paid(transaction) == [OTHER_FEE_PAID // 2, FEE_PAID // 2]


def test_a_reorg_forgets_the_fee_paid_on_the_transaction_and_confirming_withdrawals() -> None:
    transaction = _mined("wd_a", "wd_b", fee_paid=FEE_PAID)
    transaction.carried[1].status = W.CANCELLED  # not confirming: left alone
    transaction.reorged(at=T1)
    assert transaction.fee_paid is None
    assert _fees_paid(transaction) == [None, FEE_PAID // 2]


def test_settling_a_broadcast_transaction_records_the_fee_paid() -> None:
    transaction = _broadcast("wd_a", "wd_b")
    _settle(transaction, fee_paid=FEE_PAID)
    assert transaction.status is T.CONFIRMED
    assert transaction.fee_paid == FEE_PAID
    assert _fees_paid(transaction) == [FEE_PAID // 2, FEE_PAID // 2]


@pytest.mark.parametrize("succeeded", [True, False], ids=["confirmed", "reverted"])
def test_settling_a_mined_transaction_keeps_the_fee_its_receipt_paid(succeeded: bool) -> None:
    transaction = _mined("wd_a", fee_paid=FEE_PAID)
    _settle(transaction, succeeded=succeeded, fee_paid=FEE_PAID)
    assert transaction.status is (T.CONFIRMED if succeeded else T.REVERTED)
    assert transaction.fee_paid == FEE_PAID
    assert _fees_paid(transaction) == [FEE_PAID]


def test_a_noop_that_is_final_records_what_it_paid() -> None:
    transaction = _mined("wd_a", seq=2, fee_paid=FEE_PAID)
    _settle(transaction, seq=2, fee_paid=FEE_PAID)
    assert transaction.status is T.CANCELLED
    assert _statuses(transaction) == [W.CANCELLED]
    assert (transaction.fee_paid, _fees_paid(transaction)) == (FEE_PAID, [FEE_PAID])


def test_settling_in_another_block_than_the_one_mined_records_the_new_receipts_fee() -> None:
    transaction = _mined("wd_a", fee_paid=FEE_PAID)
    transaction.settle(
        block_number=101,
        block_hash=OTHER_BLOCK_HASH,
        transaction_hash=_attempt(1).hash,
        succeeded=True,
        at=T1,
        fee_paid=OTHER_FEE_PAID,
    )
    assert transaction.fee_paid == OTHER_FEE_PAID
    assert _fees_paid(transaction) == [OTHER_FEE_PAID]


@pytest.mark.parametrize("priority", [None, *FeeLevel], ids=["default", *FeeLevel])
def test_the_priority_is_carried_through_every_step(priority: FeeLevel | None) -> None:
    transaction, _ = _transaction("wd_a", "wd_b", priority=priority)
    transaction.sent(transaction.latest, note_=None, at=T0)
    transaction.replaced(_attempt(2), at=T0, stuck_after_s=60)
    transaction.mined(
        block_number=100, block_hash=BLOCK_HASH, transaction_hash=_attempt(2).hash, at=T0
    )
    transaction.reorged(at=T1)
    _settle(transaction, seq=2)
    assert transaction.status is T.CONFIRMED
    assert transaction.priority is priority
    assert [w.priority for w in transaction.carried] == [priority, priority]


def test_a_transaction_mined_before_fees_were_kept_records_its_fee_when_it_settles() -> None:
    transaction = _mined("wd_a", "wd_b")  # no fee: mined by a version that kept none
    effects = transaction.settle(
        block_number=100,
        block_hash=BLOCK_HASH,
        transaction_hash=_attempt(1).hash,
        succeeded=True,
        at=T0,
        fee_paid=FEE_PAID,
    )
    assert transaction.fee_paid == FEE_PAID
    assert _fees_paid(transaction) == [FEE_PAID // 2, FEE_PAID // 2]
    # Settling changes both withdrawals, so the fee is saved with them.
    assert {c.withdrawal_id for c in effects.changes} == {"wd_a", "wd_b"}


def test_a_transaction_waits_from_its_latest_attempt_or_its_last_resend_whichever_is_later() -> (
    None
):
    transaction = _broadcast("wd_a")
    assert transaction.stuck_since == transaction.latest.created_at == T0
    effects = transaction.resent(at=T1)
    assert effects.events == [EngineEvent.RESENT]
    assert effects.changes == []
    assert transaction.stuck_since == T1  # stuck again only stuck_after_s after the re-send
