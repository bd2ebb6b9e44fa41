"""Withdrawal statuses: the allowed moves, and what a move records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sluice.domain.addresses import Address
from sluice.domain.withdrawal import (
    CANCELLABLE,
    ENGINE_CANCELLABLE,
    ErrorCode,
    StatusChange,
    Withdrawal,
    WithdrawalStatus,
    ensure_transition,
    move,
    note,
)
from sluice.errors import InsufficientFundsError, InvalidAddressError, InvalidStateError

W = WithdrawalStatus

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
DESTINATION = Address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")

#: Written by hand from the diagram in the docstring of `sluice.domain.withdrawal`.
EXPECTED_TARGETS: dict[WithdrawalStatus, set[WithdrawalStatus]] = {
    W.PENDING: {W.VALIDATING, W.FAILED, W.CANCELLED},
    W.VALIDATING: {W.SIGNED, W.PENDING_APPROVAL, W.CANCELLED, W.FAILED},
    W.PENDING_APPROVAL: {W.VALIDATING, W.FAILED, W.CANCELLED},
    W.SIGNED: {W.BROADCASTING},
    W.BROADCASTING: {W.CONFIRMING, W.COMPLETED, W.FAILED, W.CANCELLED, W.VALIDATING},
    # A batch that reverted: its withdrawals are paid again, each on its own.
    W.CONFIRMING: {W.BROADCASTING, W.COMPLETED, W.FAILED, W.CANCELLED, W.VALIDATING},
    W.COMPLETED: set(),
    W.FAILED: set(),
    W.CANCELLED: set(),
}


def _pair(current: WithdrawalStatus, target: WithdrawalStatus) -> object:
    return pytest.param(current, target, id=f"{current}->{target}")


def make_withdrawal(status: WithdrawalStatus, *, request_id: str | None = "req-1") -> Withdrawal:
    return Withdrawal(
        id="wd_1",
        user_id="user-1",
        network="ethereum",
        asset_key="native",
        token_address=None,
        amount=10**18,
        to_address=DESTINATION,
        status=status,
        created_at=T0,
        updated_at=T0,
        fingerprint="fp-1",
        request_id=request_id,
    )


def test_the_expected_table_names_every_status() -> None:
    assert set(EXPECTED_TARGETS) == set(WithdrawalStatus)
    assert len(WithdrawalStatus) == 9


@pytest.mark.parametrize(
    ("current", "target"), [_pair(current, target) for current in W for target in W]
)
def test_only_the_moves_in_the_status_diagram_are_allowed(
    current: WithdrawalStatus, target: WithdrawalStatus
) -> None:
    withdrawal = make_withdrawal(current)
    if target in EXPECTED_TARGETS[current]:
        change = move(withdrawal, target, at=T1, reason="test")
        assert (change.from_status, change.to_status) == (current, target)
        assert withdrawal.status is target
    else:
        with pytest.raises(InvalidStateError, match=f"a {current} withdrawal cannot become"):
            move(withdrawal, target, at=T1, reason="test", error_code="x")
        assert withdrawal == make_withdrawal(current), "a refused move changes nothing"


@pytest.mark.parametrize(
    ("current", "target"),
    [
        pytest.param(W.SIGNED, W.CANCELLED, id="signed-cannot-be-cancelled"),
        pytest.param(W.COMPLETED, W.FAILED, id="completed-cannot-fail"),
        pytest.param(W.FAILED, W.FAILED, id="no-move-to-the-same-status"),
    ],
)
def test_ensure_transition_raises_invalid_state_for_a_refused_move(
    current: WithdrawalStatus, target: WithdrawalStatus
) -> None:
    with pytest.raises(InvalidStateError) as raised:
        ensure_transition(current, target)
    assert raised.value.code == "invalid_state"
    assert raised.value.detail == f"a {current} withdrawal cannot become {target}"


@pytest.mark.parametrize(
    ("status", "is_final", "holds_funds"),
    [
        pytest.param(W.PENDING, False, False, id="pending"),
        pytest.param(W.VALIDATING, False, True, id="validating"),
        pytest.param(W.PENDING_APPROVAL, False, True, id="pending-approval"),
        pytest.param(W.SIGNED, False, True, id="signed"),
        pytest.param(W.BROADCASTING, False, True, id="broadcasting"),
        pytest.param(W.CONFIRMING, False, True, id="confirming"),
        pytest.param(W.COMPLETED, True, False, id="completed"),
        pytest.param(W.FAILED, True, False, id="failed"),
        pytest.param(W.CANCELLED, True, False, id="cancelled"),
    ],
)
def test_each_status_says_whether_it_is_final_and_whether_it_holds_funds(
    status: WithdrawalStatus, is_final: bool, holds_funds: bool
) -> None:
    assert status.is_final is is_final
    assert status.holds_funds is holds_funds


def test_only_statuses_before_signing_are_cancellable() -> None:
    assert frozenset({W.PENDING, W.VALIDATING, W.PENDING_APPROVAL}) == CANCELLABLE


def test_an_operator_may_ask_the_engine_to_cancel_only_signed_or_broadcasting_ones() -> None:
    assert frozenset({W.SIGNED, W.BROADCASTING}) == ENGINE_CANCELLABLE
    assert not CANCELLABLE & ENGINE_CANCELLABLE


#: Statuses the engine may cancel from when a no-op replacement is mined (not a caller's cancel).
MINED_CANCEL = {W.BROADCASTING, W.CONFIRMING}


@pytest.mark.parametrize("status", list(W), ids=[s.value for s in W])
def test_a_status_may_move_to_cancelled_exactly_when_cancellable_or_a_no_op_can_be_mined(
    status: WithdrawalStatus,
) -> None:
    withdrawal = make_withdrawal(status)
    if status in CANCELLABLE or status in MINED_CANCEL:
        move(withdrawal, W.CANCELLED, at=T1, reason="cancelled by the user")
        assert withdrawal.status is W.CANCELLED
    else:
        with pytest.raises(InvalidStateError):
            move(withdrawal, W.CANCELLED, at=T1, reason="cancelled by the user")


@pytest.mark.parametrize(
    ("request_id", "error_code", "data"),
    [
        pytest.param("req-1", None, None, id="bare"),
        pytest.param(None, None, {"nonce": "7"}, id="with-data-without-request-id"),
        pytest.param("req-2", "odd", {"a": "b"}, id="error-code-on-a-non-failing-move"),
    ],
)
def test_move_records_the_change_and_updates_status_and_time(
    request_id: str | None, error_code: str | None, data: dict[str, str] | None
) -> None:
    withdrawal = make_withdrawal(W.PENDING, request_id=request_id)

    change = move(
        withdrawal, W.VALIDATING, at=T1, reason="funds held", error_code=error_code, data=data
    )

    assert change == StatusChange(
        withdrawal_id="wd_1",
        from_status=W.PENDING,
        to_status=W.VALIDATING,
        at=T1,
        reason="funds held",
        error_code=error_code,
        request_id=request_id,
        data=data,
    )
    assert withdrawal.status is W.VALIDATING
    assert withdrawal.updated_at == T1
    assert withdrawal.created_at == T0
    assert withdrawal.error is None, "only a move to FAILED sets the error"
    assert withdrawal.error_code is None


@pytest.mark.parametrize(
    ("current", "error_code"),
    [
        pytest.param(W.PENDING, ErrorCode.INSUFFICIENT_FUNDS.value, id="pending-insufficient"),
        pytest.param(W.PENDING, ErrorCode.INVALID_ADDRESS.value, id="pending-invalid-address"),
        pytest.param(W.BROADCASTING, ErrorCode.REVERTED.value, id="broadcasting-reverted"),
        pytest.param(W.PENDING, None, id="without-an-error-code"),
    ],
)
def test_moving_to_failed_sets_error_and_error_code(
    current: WithdrawalStatus, error_code: str | None
) -> None:
    withdrawal = make_withdrawal(current)

    change = move(withdrawal, W.FAILED, at=T1, reason="it went wrong", error_code=error_code)

    assert (change.from_status, change.to_status) == (current, W.FAILED)
    assert change.error_code == error_code
    assert change.reason == "it went wrong"
    assert withdrawal.status is W.FAILED
    assert withdrawal.updated_at == T1
    assert withdrawal.error == "it went wrong"
    assert withdrawal.error_code == error_code


def test_cancelling_does_not_set_an_error() -> None:
    withdrawal = make_withdrawal(W.VALIDATING)
    move(withdrawal, W.CANCELLED, at=T1, reason="cancelled", error_code="cancelled")
    assert (withdrawal.error, withdrawal.error_code) == (None, None)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        pytest.param(ErrorCode.INSUFFICIENT_FUNDS, InsufficientFundsError, id="insufficient"),
        pytest.param(ErrorCode.INVALID_ADDRESS, InvalidAddressError, id="invalid-address"),
    ],
)
def test_failure_codes_match_the_codes_of_the_errors_that_cause_them(
    code: ErrorCode, error: type[InsufficientFundsError | InvalidAddressError]
) -> None:
    assert code.value == error.code


def test_a_reverted_transaction_has_its_own_failure_code() -> None:
    assert ErrorCode.REVERTED.value == "reverted"


def test_a_note_records_an_event_without_a_change_of_status() -> None:
    withdrawal = make_withdrawal(W.BROADCASTING)

    change = note(withdrawal, at=T1, reason="replaced by attempt 2", data={"attempt": "2"})

    assert (change.from_status, change.to_status) == (W.BROADCASTING, W.BROADCASTING)
    assert change.reason == "replaced by attempt 2"
    assert change.data == {"attempt": "2"}
    assert change.request_id == "req-1"
    assert withdrawal.status is W.BROADCASTING
    assert withdrawal.updated_at == T1
