"""Ledger rules: available and held never go negative, and every unit is accounted for."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sluice.domain.ledger import Balance, EntryKind
from sluice.errors import InsufficientFundsError

K = EntryKind


def test_a_new_balance_is_empty() -> None:
    assert Balance() == Balance(available=0, held=0)


@pytest.mark.parametrize(
    ("before", "kind", "amount", "after"),
    [
        pytest.param(Balance(), K.CREDIT, 5, Balance(5, 0), id="credit-an-empty-balance"),
        pytest.param(Balance(10, 3), K.CREDIT, 5, Balance(15, 3), id="credit-adds-to-available"),
        pytest.param(Balance(10, 3), K.HOLD, 4, Balance(6, 7), id="hold-moves-available-to-held"),
        pytest.param(Balance(10, 3), K.HOLD, 10, Balance(0, 13), id="hold-all-that-is-available"),
        pytest.param(Balance(1, 5), K.RELEASE, 2, Balance(3, 3), id="release-returns-to-available"),
        pytest.param(Balance(1, 5), K.RELEASE, 5, Balance(6, 0), id="release-the-whole-hold"),
        pytest.param(Balance(1, 5), K.SETTLE, 2, Balance(1, 3), id="settle-removes-from-held"),
        pytest.param(Balance(1, 5), K.SETTLE, 5, Balance(1, 0), id="settle-the-whole-hold"),
    ],
)
def test_each_entry_kind_moves_the_amount_where_it_belongs(
    before: Balance, kind: EntryKind, amount: int, after: Balance
) -> None:
    snapshot = Balance(before.available, before.held)
    assert before.apply(kind, amount) == after
    assert before == snapshot, "apply returns a new balance and leaves the old one alone"


@pytest.mark.parametrize(
    ("before", "amount"),
    [
        pytest.param(Balance(10, 0), 11, id="one-more-than-available"),
        pytest.param(Balance(0, 50), 1, id="held-funds-do-not-count"),
    ],
)
def test_holding_more_than_is_available_is_insufficient_funds(before: Balance, amount: int) -> None:
    with pytest.raises(InsufficientFundsError, match="does not cover"):
        before.apply(K.HOLD, amount)


@pytest.mark.parametrize(
    ("kind", "before", "amount"),
    [
        pytest.param(K.RELEASE, Balance(100, 5), 6, id="release-beyond-held"),
        pytest.param(K.RELEASE, Balance(100, 0), 1, id="release-with-nothing-held"),
        pytest.param(K.SETTLE, Balance(100, 5), 6, id="settle-beyond-held"),
        pytest.param(K.SETTLE, Balance(100, 0), 1, id="settle-with-nothing-held"),
    ],
)
def test_releasing_or_settling_more_than_is_held_is_a_value_error(
    kind: EntryKind, before: Balance, amount: int
) -> None:
    with pytest.raises(ValueError, match=f"cannot {kind.value} more than is held") as raised:
        before.apply(kind, amount)
    assert not isinstance(raised.value, InsufficientFundsError)


@pytest.mark.parametrize("kind", list(K), ids=[k.value for k in K])
@pytest.mark.parametrize("amount", [0, -1], ids=["zero", "negative"])
def test_a_non_positive_amount_is_a_value_error(kind: EntryKind, amount: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        Balance(10, 10).apply(kind, amount)


@pytest.mark.parametrize(
    ("available", "held"),
    [
        pytest.param(-1, 0, id="negative-available"),
        pytest.param(0, -1, id="negative-held"),
        pytest.param(-1, -1, id="both-negative"),
    ],
)
def test_a_negative_balance_cannot_be_built(available: int, held: int) -> None:
    with pytest.raises(ValueError, match="never negative"):
        Balance(available, held)


AMOUNTS = st.integers(min_value=1, max_value=10**30)


class LedgerMachine(RuleBasedStateMachine):
    """Applies random valid entries, tracking credits and settlements on the side."""

    def __init__(self) -> None:
        super().__init__()
        self.balance = Balance()
        self.credited = 0
        self.settled = 0

    @rule(amount=AMOUNTS)
    def credit(self, amount: int) -> None:
        self.balance = self.balance.apply(K.CREDIT, amount)
        self.credited += amount

    @precondition(lambda self: self.balance.available > 0)
    @rule(data=st.data())
    def hold(self, data: st.DataObject) -> None:
        amount = data.draw(st.integers(1, self.balance.available))
        self.balance = self.balance.apply(K.HOLD, amount)

    @precondition(lambda self: self.balance.held > 0)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        amount = data.draw(st.integers(1, self.balance.held))
        self.balance = self.balance.apply(K.RELEASE, amount)

    @precondition(lambda self: self.balance.held > 0)
    @rule(data=st.data())
    def settle(self, data: st.DataObject) -> None:
        amount = data.draw(st.integers(1, self.balance.held))
        self.balance = self.balance.apply(K.SETTLE, amount)
        self.settled += amount

    @rule(extra=AMOUNTS)
    def overdraw_is_refused(self, extra: int) -> None:
        with pytest.raises(InsufficientFundsError):
            self.balance.apply(K.HOLD, self.balance.available + extra)

    @rule(extra=AMOUNTS, kind=st.sampled_from([K.RELEASE, K.SETTLE]))
    def over_release_is_refused(self, extra: int, kind: EntryKind) -> None:
        with pytest.raises(ValueError, match="more than is held"):
            self.balance.apply(kind, self.balance.held + extra)

    @invariant()
    def parts_are_never_negative(self) -> None:
        assert self.balance.available >= 0
        assert self.balance.held >= 0

    @invariant()
    def every_unit_is_accounted_for(self) -> None:
        assert self.balance.available + self.balance.held == self.credited - self.settled


LedgerMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=30, deadline=None, database=None
)
TestRandomLedgerSequences = LedgerMachine.TestCase
