"""The policy, case by case, through intake and validation on the session's database: every
condition (network, asset, amount, US dollar value, user, group, destination list, address book
and its cool-down, API key, velocity of a user, a destination and the hot wallets by sum, value
and count), every action, the blocklist before every rule, per-asset limits and fees."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.domain.address_lists import Blocked, BookEntry
from sluice.domain.addresses import Address
from sluice.domain.audit import SYSTEM
from sluice.domain.ledger import Balance
from sluice.domain.withdrawal import WithdrawalStatus
from sluice.errors import AmountLimitError
from sluice.testing.fakes import FakeChain, FakeClock, LocalSigner
from sluice.testing.pipeline import CHAIN_ID, ETH, HOT_KEY, NET, CountingSigner, Pipeline, wire

X = Address("0x1111111111111111111111111111111111111111")
Y = Address("0x2222222222222222222222222222222222222222")
LISTED = Address("0x3333333333333333333333333333333333333333")
BLOCKED = Address("0x4444444444444444444444444444444444444444")

POLICY = f"""
label = "table test"

[prices]
ETH = "2000"
TKN = "1"

[groups]
vip = ["vera"]

[address_book]
cool_down = "1h"

[approvals]
expire_after = "2h"

[[assets]]
asset = "TKN"
min_amount = "1"
max_amount = "100000"
fee = {{ percent = "1", min = "0.5" }}

[[assets]]
asset = "{NET}:ETH"
fee = {{ fixed = "0.001" }}

[[rules]]
name = "frozen user"
users = ["mallory"]
action = "deny"
code = "user_frozen"
message = "this account may not withdraw"

[[rules]]
name = "listed destination"
destinations = ["{LISTED}"]
action = "deny"
code = "destination_denied"

[[rules]]
name = "suspended key"
api_keys = ["key-suspended"]
action = "deny"
code = "key_suspended"

[[rules]]
name = "vip"
groups = ["vip"]
max_usd = "100000"
action = "allow"

[[rules]]
name = "daily cap"
velocity = {{ per = "user", window = "24h", max_usd = "10000" }}
action = "deny"
code = "daily_limit"

[[rules]]
name = "hourly count"
velocity = {{ per = "user", window = "1h", max_count = 5 }}
action = "require_approval"

[[rules]]
name = "destination velocity"
assets = ["{NET}:ETH"]
velocity = {{ per = "destination", window = "24h", max_amount = "2" }}
action = "require_approval"
approvals = 2

[[rules]]
name = "wallet velocity"
velocity = {{ per = "hot_wallet", window = "1h", max_usd = "8000" }}
action = "require_approval"
role = "admin"

[[rules]]
name = "new address"
in_address_book = false
min_usd = "500"
action = "require_approval"

[[rules]]
name = "cooling"
cooling = true
action = "require_approval"

[[rules]]
name = "big token"
assets = ["TKN"]
min_amount = "5000"
action = "require_approval"
approvals = 2

[[rules]]
name = "small"
networks = ["{NET}"]
max_usd = "1000"
action = "allow"

[default]
action = "require_approval"
approvals = 2
"""

OLD = timedelta(days=3)
FRESH = timedelta(minutes=10)


@dataclass(frozen=True)
class Prior:
    """A withdrawal decided ``ago`` before the case's (it counts in windows unless denied)."""

    user: str
    amount: str
    ago: timedelta
    to: Address = X
    token: bool = False


@dataclass(frozen=True)
class Case:
    id: str
    amount: str
    user: str = "alice"
    token: bool = False
    to: Address = X
    key: str | None = None
    book: timedelta | None = OLD
    """How long ago the destination entered the user's address book; None: it is not there."""
    prior: tuple[Prior, ...] = ()
    expect: WithdrawalStatus = WithdrawalStatus.VALIDATING
    rule: str | None = None
    code: str | None = None
    held: str | None = None
    """What the hold is (amount and fee), in token units, if the case checks it."""
    credit: str = "1000000"
    extra: dict[str, object] = field(default_factory=dict)


A, F, P = WithdrawalStatus.VALIDATING, WithdrawalStatus.FAILED, WithdrawalStatus.PENDING_APPROVAL
H = timedelta(hours=1)

CASES = [
    Case("small coin, allowed", "0.1", rule="small"),
    Case("a denied user", "0.1", user="mallory", expect=F, rule="frozen user", code="user_frozen"),
    Case("a listed destination", "0.1", to=LISTED, expect=F, code="destination_denied"),
    Case(
        "the blocklist before any rule",
        "1",
        user="vera",
        to=BLOCKED,
        expect=F,
        rule="blocklist",
        code="blocklisted",
    ),
    Case("a suspended API key", "0.1", key="key-suspended", expect=F, code="key_suspended"),
    Case("another API key", "0.1", key="key-ok", rule="small"),
    Case("a group member's large one", "40", user="vera", book=None, rule="vip"),
    Case("a group member at the bound", "50", user="vera", rule="vip"),
    Case(
        "a group member past the bound",
        "50.5",
        user="vera",
        expect=F,
        rule="daily cap",
        code="daily_limit",
    ),
    Case("not in the group", "40", expect=F, rule="daily cap", code="daily_limit"),
    Case("one alone past the daily value", "6", expect=F, code="daily_limit"),
    Case(
        "the day's earlier ones push it past",
        "1.5",
        prior=(Prior("alice", "4", 2 * H),),
        expect=F,
        code="daily_limit",
    ),
    Case(
        "yesterday's do not count",
        "1.5",
        book=None,
        prior=(Prior("alice", "4", 25 * H),),
        expect=P,
        rule="new address",
    ),
    Case(
        "another user's do not count",
        "1.5",
        book=None,
        prior=(Prior("bob", "4", 2 * H, to=Y),),
        expect=P,
        rule="new address",
    ),
    Case(
        "the sixth in an hour",
        "0.01",
        prior=tuple(Prior("alice", "0.01", FRESH) for _ in range(5)),
        expect=P,
        rule="hourly count",
    ),
    Case(
        "the fifth in an hour",
        "0.01",
        prior=tuple(Prior("alice", "0.01", FRESH) for _ in range(4)),
        rule="small",
    ),
    Case(
        "six, the first out of the hour",
        "0.01",
        prior=(Prior("alice", "0.01", 2 * H), *(Prior("alice", "0.01", FRESH) for _ in range(4))),
        rule="small",
    ),
    Case(
        "a destination's coin past its limit",
        "1",
        user="carol",
        prior=(Prior("vera", "1.5", H / 2),),
        expect=P,
        rule="destination velocity",
    ),
    Case(
        "another destination's do not count",
        "1",
        user="carol",
        book=None,
        prior=(Prior("vera", "1.5", H / 2, to=Y),),
        expect=P,
        rule="new address",
    ),
    Case(
        "a destination's tokens are not its coin",
        "1000",
        user="carol",
        token=True,
        prior=(Prior("vera", "1.5", H / 2),),
        rule="small",
        held="1010",
    ),
    Case(
        "the hot wallets past their hour",
        "1.5",
        user="dave",
        prior=(Prior("vera", "3", H / 2, to=Y),),
        expect=P,
        rule="wallet velocity",
    ),
    Case(
        "the hot wallets' earlier hour",
        "1.5",
        user="dave",
        prior=(Prior("vera", "3", 2 * H, to=Y),),
        expect=P,
        rule="default",
    ),
    Case("a new address above the value", "0.5", book=None, expect=P, rule="new address"),
    Case("a new address below the value", "0.2", book=None, rule="small"),
    Case("an address in its cool-down", "0.2", book=FRESH, expect=P, rule="cooling"),
    Case("an address past its cool-down", "0.2", book=2 * H, rule="small"),
    Case("tokens at the rule's minimum", "5000", token=True, expect=P, rule="big token"),
    Case("tokens below it", "100", token=True, rule="small", held="101"),
    Case("the minimum fee", "10", token=True, rule="small", held="10.5"),
    Case("a fixed fee", "0.1", rule="small", held="0.101"),
    Case("no rule matches", "2", expect=P, rule="default"),
    Case(
        "the fee is not covered",
        "1",
        credit="1",
        expect=F,
        rule="default",
        code="insufficient_funds",
    ),
    Case("the amount and fee covered exactly", "0.1", credit="0.101", rule="small", held="0.101"),
]


@pytest.fixture
async def pipeline(engine: AsyncEngine) -> AsyncIterator[Pipeline]:
    p = wire(
        engine, FakeChain(chain_id=CHAIN_ID), CountingSigner(LocalSigner(HOT_KEY)), FakeClock()
    )
    async with p.uow() as uow:
        await uow.transactions.reconcile_nonce(NET, p.signer.address, 0)
        await p.services.policy.load(uow, POLICY.encode(), source="test", actor=SYSTEM)
        await uow.policy.block([Blocked(BLOCKED, "test", "a sanctioned address", p.clock.now())])
        await uow.commit()
    try:
        yield p
    finally:
        await p.queue.close()


async def _withdraw(
    pipeline: Pipeline, user: str, amount: str, *, to: Address, token: bool, key: str | None
) -> str:
    withdrawal_id = await pipeline.submit(user, amount, to=to, token=token, api_key_id=key)
    await pipeline.validate(withdrawal_id)
    return withdrawal_id


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
async def test_the_policy_decides_each_case(pipeline: Pipeline, case: Case) -> None:
    users = {case.user, *(p.user for p in case.prior)}
    for user in sorted(users):
        credit = case.credit if user == case.user and not case.prior else "1000000"
        await pipeline.credit(user, credit)
        await pipeline.credit(user, credit, token=True)
    start = pipeline.clock.now()
    horizon = max([p.ago for p in case.prior] + [case.book or timedelta(0)])
    pipeline.clock.set(start - horizon)
    if case.book is not None:
        async with pipeline.uow() as uow:
            for user in sorted(users):
                entry = BookEntry(user, NET, case.to, None, start - case.book)
                await uow.policy.add_to_book(entry)
            await uow.commit()
    for prior in sorted(case.prior, key=lambda p: -p.ago):
        pipeline.clock.set(start - prior.ago)
        await _withdraw(
            pipeline, prior.user, prior.amount, to=prior.to, token=prior.token, key=None
        )
    pipeline.clock.set(start)

    withdrawal_id = await _withdraw(
        pipeline, case.user, case.amount, to=case.to, token=case.token, key=case.key
    )

    withdrawal = await pipeline.get(withdrawal_id)
    assert withdrawal.status is case.expect, withdrawal.error
    assert withdrawal.error_code == case.code
    if case.rule is not None:
        assert withdrawal.policy_rule == case.rule, withdrawal.error
    if case.code != "insufficient_funds":
        async with pipeline.uow() as uow:
            assert withdrawal.policy_version == (await uow.policy.current()).version  # type: ignore[union-attr]
    events = await pipeline.events(withdrawal_id)
    decided = [e for e in events if e.data and "policyRule" in e.data]
    if case.code != "insufficient_funds":
        assert decided, events
        assert decided[0].data["policyRule"] == withdrawal.policy_rule  # type: ignore[index]
    balance = await pipeline.balance(case.user, token=case.token)
    if case.held is not None:
        decimals = 6 if case.token else 18
        assert balance.held == _units(case.held, decimals)
        assert withdrawal.held == balance.held
    alone = not [p for p in case.prior if p.user == case.user]
    if case.expect is F and alone:
        assert balance.held == 0
    if case.expect is P:
        assert withdrawal.approval_expires_at == start + timedelta(hours=2)
        if alone:
            assert balance.held == withdrawal.held


def _units(text: str, decimals: int) -> int:
    whole, _, fraction = text.partition(".")
    return int(whole) * int(10**decimals) + int(fraction.ljust(decimals, "0") or "0")


@pytest.mark.parametrize(
    ("amount", "field_text"),
    [("0.5", "smallest TKN withdrawal is 1"), ("100001", "largest TKN withdrawal is 100000")],
)
async def test_an_amount_outside_the_assets_limits_is_refused_at_intake(
    pipeline: Pipeline, amount: str, field_text: str
) -> None:
    with pytest.raises(AmountLimitError, match=field_text) as refused:
        await pipeline.submit("alice", amount, token=True)
    assert refused.value.field == "amount"


async def test_a_paid_withdrawals_fee_goes_to_the_fee_account(pipeline: Pipeline) -> None:
    await pipeline.credit("alice", "1")
    withdrawal_id = await _withdraw(pipeline, "alice", "0.1", to=X, token=False, key=None)
    assert (await pipeline.get(withdrawal_id)).status is A
    await pipeline.sign(withdrawal_id)
    await pipeline.broadcast(withdrawal_id)
    pipeline.chain.mine_pending()
    for _ in range(3):
        await pipeline.confirm(withdrawal_id)
    assert (await pipeline.status(withdrawal_id)) is WithdrawalStatus.COMPLETED
    assert await pipeline.balance("alice") == Balance(available=ETH - ETH // 10 - ETH // 1000)
    assert await pipeline.balance("_fees") == Balance(available=ETH // 1000)


async def test_an_address_blocklisted_after_validation_fails_before_signing(
    pipeline: Pipeline,
) -> None:
    await pipeline.credit("alice", "1")
    withdrawal_id = await _withdraw(pipeline, "alice", "0.1", to=Y, token=False, key=None)
    assert (await pipeline.get(withdrawal_id)).status is A
    async with pipeline.uow() as uow:
        await uow.policy.block([Blocked(Y, "late", None, pipeline.clock.now())])
        await uow.commit()
    await pipeline.sign(withdrawal_id)
    failed = await pipeline.get(withdrawal_id)
    assert (failed.status, failed.error_code) == (F, "blocklisted")
    assert await pipeline.balance("alice") == Balance(available=ETH)
    assert pipeline.signer.signed == []


async def test_a_batch_member_blocklisted_after_validation_is_left_out_and_fails(
    engine: AsyncEngine,
) -> None:
    p = wire(
        engine,
        FakeChain(chain_id=CHAIN_ID),
        CountingSigner(LocalSigner(HOT_KEY)),
        FakeClock(),
        batch_window_s=1.0,
    )
    try:
        async with p.uow() as uow:
            await uow.transactions.reconcile_nonce(NET, p.signer.address, 0)
            await uow.commit()
        p.allow(10**30)
        for user in ("u1", "u2", "u3"):
            await p.credit(user, "100", token=True)
        ids = [
            await p.submit(user, "1", token=True, to=to)
            for user, to in (("u1", X), ("u2", Y), ("u3", LISTED))
        ]
        for withdrawal_id in ids:
            await p.validate(withdrawal_id)
        async with p.uow() as uow:
            await uow.policy.block([Blocked(Y, "late", None, p.clock.now())])
            await uow.commit()
        p.clock.advance(2)
        await p.sign(ids[0])
        statuses = [await p.status(i) for i in ids]
        assert statuses == [WithdrawalStatus.SIGNED, F, WithdrawalStatus.SIGNED], statuses
        blocked = await p.get(ids[1])
        assert blocked.error_code == "blocklisted"
        assert await p.balance("u2", token=True) == Balance(available=100 * 10**6)
        assert len(p.signer.signed) == 1
        assert sorted(await p.carried((await p.get(ids[0])).transaction_id or "")) == sorted(
            [ids[0], ids[2]]
        )
    finally:
        await p.queue.close()
