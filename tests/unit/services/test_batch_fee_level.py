"""The fee level a batch is priced at: never below what any of its withdrawals would get alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sluice.domain.addresses import Address
from sluice.domain.fees import FeeLevel
from sluice.domain.withdrawal import Withdrawal, WithdrawalStatus
from sluice.services.signing import Ready

T0 = datetime(2026, 12, 3, tzinfo=UTC)


def _withdrawal(priority: FeeLevel | None) -> Withdrawal:
    return Withdrawal(
        id=f"wd_{priority}",
        user_id="alice",
        network="ethereum",
        asset_key="native",
        token_address=None,
        amount=1,
        to_address=Address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
        status=WithdrawalStatus.VALIDATING,
        created_at=T0,
        updated_at=T0,
        fingerprint="f",
        priority=priority,
    )


@pytest.mark.parametrize(
    ("asked", "level"),
    [
        pytest.param([FeeLevel.SLOW, None], FeeLevel.NORMAL, id="one-asks-none: the default"),
        pytest.param([FeeLevel.SLOW, FeeLevel.SLOW], FeeLevel.SLOW, id="all-slow"),
        pytest.param([None, FeeLevel.FAST], FeeLevel.FAST, id="the-most-urgent"),
        pytest.param([None], FeeLevel.NORMAL, id="none-asks"),
    ],
)
def test_a_batch_is_priced_at_the_most_urgent_level_counting_the_default(
    asked: list[FeeLevel | None], level: FeeLevel
) -> None:
    ready = Ready(withdrawals=tuple(_withdrawal(p) for p in asked), in_flight={})
    assert ready.level(FeeLevel.NORMAL) is level
