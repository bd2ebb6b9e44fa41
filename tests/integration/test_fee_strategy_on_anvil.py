"""The fee strategy against Anvil with a base fee under the test's control (issue 11, must-hold 3).

Levels, floors and caps: blocks filled with transactions whose tips the test chose, the next
base fee set with ``anvil_setNextBlockBaseFeePerGas``, read through the real `EvmChainClient`
(`read_market`) and priced by `FeePolicy.price`, on an EIP-1559 node and a legacy one
(``anvil --hardfork berlin``, whose ``eth_gasPrice`` the test sets).

Bumping: the engine's own services and stage handlers (`build_services`, as in production) over
a real node, a real signer and a `FakeClock`, driven one delivery of each job at a time; the node
mines only when the test says, so a sent withdrawal waits in its pool, and moving the clock past
``stuck_after_s`` makes the next confirmation round re-price it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.bootstrap import Services, build_services
from sluice.chains.evm import EvmChainClient
from sluice.db.unit_of_work import SqlUnitOfWorkFactory
from sluice.devnet.anvil import DEV_ACCOUNTS, AnvilProcess
from sluice.domain.addresses import Address
from sluice.domain.assets import Asset, Network
from sluice.domain.fees import (
    GWEI,
    LEVELS,
    FeeLevel,
    FeeMarket,
    FeeModel,
    FeePolicy,
    Fees,
    least_replacement,
    raised,
)
from sluice.domain.presets import preset
from sluice.domain.transaction import (
    NATIVE_TRANSFER_GAS,
    Attempt,
    AttemptOutcome,
    AttemptPurpose,
    ChainTransaction,
)
from sluice.domain.withdrawal import Withdrawal, WithdrawalStatus
from sluice.services.fee_markets import read_market
from sluice.services.registry import NetworkEntry, NetworkRegistry
from sluice.services.withdrawals import WithdrawalRequest
from sluice.testing.anvil_control import AnvilControl
from sluice.testing.fakes import FakeClock, LocalSigner, RecordingQueue

CHAIN_ID = 31337
NET = "anvil"
ETH = 10**18

#: The next block's base fee the market tests set.
BASE_FEE = 10 * GWEI
#: BASE_FEE after six full blocks (the default ``base_fee_blocks``), +12.5 % each (EIP-1559's
#: largest step), rounded up at each step: 10 → 11.25 → 12.65625 → 14.23828125 → 16.018066407
#: → 18.020324708 → 20.272865297 gwei.
PROJECTED = 20_272_865_297

#: The tips (gwei) of the transactions in blocks 1 to 5, 21 000 gas each: the default fee
#: history (5 blocks) sees all of them, and leaves the empty blocks out of its averages.
TIPPED_BLOCKS: tuple[tuple[int, ...], ...] = ((1, 2, 3), (), (3, 5, 8), (4,), ())
#: The default levels' percentiles (10, 50, 85) in the three blocks that paid tips, averaged
#: and rounded up: (1 + 3 + 4) / 3, (2 + 5 + 4) / 3, (3 + 8 + 4) / 3 gwei.
SLOW_TIP = 2_666_666_667
NORMAL_TIP = 3_666_666_667
FAST_TIP = 5 * GWEI

#: The legacy node's ``eth_gasPrice``, as started.
GAS_PRICE = 2 * GWEI


def _node(*args: str) -> Iterator[AnvilProcess]:
    node = AnvilProcess()
    node.start(extra_args=list(args))
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def unmined(anvil: AnvilProcess) -> Iterator[AnvilProcess]:
    """A London-or-later node of this test's own that mines only when told (``anvil`` is asked
    for its skip rule and mark)."""
    yield from _node("--no-mining")


@pytest.fixture
def berlin(anvil: AnvilProcess) -> Iterator[AnvilProcess]:
    """A node of this test's own without EIP-1559, at a gas price of 2 gwei, mining only when
    told."""
    yield from _node("--hardfork", "berlin", "--gas-price", str(GAS_PRICE), "--no-mining")


def _network(policy: FeePolicy, *hot_wallets: Address) -> Network:
    return Network(
        name=NET,
        chain_id=CHAIN_ID,
        native=Asset(NET, "ETH", 18),
        poll_interval_s=0.01,
        hot_wallets=hot_wallets,
        fees=policy,
        block_time_s=1.0,
    )


def _tipped(private_key: str, nonce: int, tip: int) -> bytes:
    transaction = {
        "type": 2,
        "chainId": CHAIN_ID,
        "nonce": nonce,
        "to": Account.create().address,
        "value": 1,
        "gas": NATIVE_TRANSFER_GAS,
        "maxFeePerGas": 100 * GWEI,
        "maxPriorityFeePerGas": tip,
    }
    return bytes(Account.from_key(private_key).sign_transaction(transaction).raw_transaction)


async def _fill_blocks(node: AnvilProcess) -> None:
    """Mine `TIPPED_BLOCKS` (each sender's transactions in nonce order), then set the next
    block's base fee to `BASE_FEE`."""
    nonces = [0] * len(DEV_ACCOUNTS)
    async with AnvilControl(node.rpc_url) as control:
        for tips in TIPPED_BLOCKS:
            for sender, tip in enumerate(tips):
                await control.send_raw(
                    _tipped(DEV_ACCOUNTS[sender].private_key, nonces[sender], tip * GWEI)
                )
                nonces[sender] += 1
            await control.mine()
        await control.set_next_block_base_fee(BASE_FEE)


async def _market(node: AnvilProcess, policy: FeePolicy) -> FeeMarket:
    chain = EvmChainClient(node.rpc_url)
    try:
        return await read_market(_network(policy), chain)
    finally:
        await chain.close()


def _levels(*fees: Fees) -> dict[FeeLevel, Fees]:
    return dict(zip(LEVELS, fees, strict=True))


# ── each level ─────────────────────────────────────────────────────────────────────────────────


async def test_each_level_tips_its_percentiles_average_over_the_projected_base_fee(
    unmined: AnvilProcess,
) -> None:
    await _fill_blocks(unmined)
    policy = FeePolicy()

    market = await _market(unmined, policy)

    assert market.base_fee == BASE_FEE  # the next block's, as set
    assert market.rewards == (SLOW_TIP, NORMAL_TIP, FAST_TIP)
    assert policy.levels(market) == _levels(
        Fees(max_fee_per_gas=PROJECTED + SLOW_TIP, max_priority_fee_per_gas=SLOW_TIP),
        Fees(max_fee_per_gas=PROJECTED + NORMAL_TIP, max_priority_fee_per_gas=NORMAL_TIP),
        Fees(max_fee_per_gas=PROJECTED + FAST_TIP, max_priority_fee_per_gas=FAST_TIP),
    )
    assert policy.price(market) == policy.price(market, FeeLevel.NORMAL)  # the default level


async def test_a_networks_own_percentiles_window_and_projection_price_its_levels(
    unmined: AnvilProcess,
) -> None:
    await _fill_blocks(unmined)
    # The last three blocks: (3, 5, 8), (4) and an empty one, left out.
    policy = FeePolicy(
        percentiles=(0, 50, 100),
        history_blocks=3,
        base_fee_blocks=1,
        default_level=FeeLevel.FAST,
    )

    market = await _market(unmined, policy)

    next_base_fee = BASE_FEE * 1125 // 1000
    assert market.rewards == (3_500_000_000, 4_500_000_000, 6 * GWEI)
    assert policy.levels(market) == _levels(
        Fees(max_fee_per_gas=next_base_fee + 3_500_000_000, max_priority_fee_per_gas=3_500_000_000),
        Fees(max_fee_per_gas=next_base_fee + 4_500_000_000, max_priority_fee_per_gas=4_500_000_000),
        Fees(max_fee_per_gas=next_base_fee + 6 * GWEI, max_priority_fee_per_gas=6 * GWEI),
    )
    assert policy.price(market) == policy.price(market, FeeLevel.FAST)


async def test_without_tips_in_the_history_every_level_offers_the_nodes_suggestion(
    unmined: AnvilProcess,
) -> None:
    async with AnvilControl(unmined.rpc_url) as control:
        await control.mine(3)
        await control.set_next_block_base_fee(BASE_FEE)
        suggested = int(await control.call("eth_maxPriorityFeePerGas"), 16)

    market = await _market(unmined, FeePolicy())

    assert market.rewards == (0, 0, 0)
    assert market.priority_fee == suggested > 0
    assert FeePolicy().levels(market) == _levels(
        *[Fees(max_fee_per_gas=PROJECTED + suggested, max_priority_fee_per_gas=suggested)] * 3
    )


# ── floors and caps ────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param(
            preset("polygon").fees,
            _levels(*[Fees(PROJECTED + 30 * GWEI, 30 * GWEI)] * 3),
            id="polygon-minimum-tip-above-the-market",
        ),
        pytest.param(
            FeePolicy(max_fee_per_gas=15 * GWEI),
            _levels(
                Fees(15 * GWEI, SLOW_TIP), Fees(15 * GWEI, NORMAL_TIP), Fees(15 * GWEI, FAST_TIP)
            ),
            id="max-fee-below-the-projection",
        ),
        pytest.param(
            FeePolicy(max_fee_per_gas=3 * GWEI),
            _levels(Fees(3 * GWEI, SLOW_TIP), Fees(3 * GWEI, 3 * GWEI), Fees(3 * GWEI, 3 * GWEI)),
            id="max-fee-below-the-tip",
        ),
        pytest.param(
            FeePolicy(max_tip_per_gas=3 * GWEI),
            _levels(
                Fees(PROJECTED + SLOW_TIP, SLOW_TIP),
                Fees(PROJECTED + 3 * GWEI, 3 * GWEI),
                Fees(PROJECTED + 3 * GWEI, 3 * GWEI),
            ),
            id="max-tip",
        ),
        pytest.param(
            FeePolicy(min_tip_per_gas=30 * GWEI, max_fee_per_gas=20 * GWEI),
            _levels(*[Fees(20 * GWEI, 20 * GWEI)] * 3),
            id="a-cap-wins-over-a-floor",
        ),
        pytest.param(
            FeePolicy(min_tip_per_gas=4 * GWEI, max_tip_per_gas=30 * GWEI),
            _levels(
                Fees(PROJECTED + 4 * GWEI, 4 * GWEI),
                Fees(PROJECTED + 4 * GWEI, 4 * GWEI),
                Fees(PROJECTED + FAST_TIP, FAST_TIP),
            ),
            id="a-floor-between-the-levels",
        ),
    ],
)
async def test_floors_and_caps_apply_to_the_markets_levels(
    unmined: AnvilProcess, policy: FeePolicy, expected: dict[FeeLevel, Fees]
) -> None:
    await _fill_blocks(unmined)

    market = await _market(unmined, policy)

    assert policy.levels(market) == expected


async def test_a_legacy_network_prices_the_nodes_gas_price_times_each_levels_factor(
    berlin: AnvilProcess,
) -> None:
    legacy = FeePolicy(model=FeeModel.LEGACY)

    market = await _market(berlin, legacy)

    assert market == FeeMarket(gas_price=GAS_PRICE)  # no base fee, no history read
    assert legacy.levels(market) == _levels(
        Fees.legacy(2 * GWEI), Fees.legacy(2_500_000_000), Fees.legacy(3 * GWEI)
    )
    floored = FeePolicy(model=FeeModel.LEGACY, min_gas_price=2_600_000_000)
    assert floored.levels(market) == _levels(
        Fees.legacy(2_600_000_000), Fees.legacy(2_600_000_000), Fees.legacy(3 * GWEI)
    )
    capped = FeePolicy(model=FeeModel.LEGACY, max_fee_per_gas=2_800_000_000)
    assert capped.levels(market) == _levels(
        Fees.legacy(2 * GWEI), Fees.legacy(2_500_000_000), Fees.legacy(2_800_000_000)
    )
    both = FeePolicy(model=FeeModel.LEGACY, min_gas_price=5 * GWEI, max_fee_per_gas=4 * GWEI)
    assert both.levels(market) == _levels(*[Fees.legacy(4 * GWEI)] * 3)
    factors = FeePolicy(model=FeeModel.LEGACY, gas_price_percent=(100, 110, 333))
    assert factors.levels(market) == _levels(
        Fees.legacy(2 * GWEI), Fees.legacy(2_200_000_000), Fees.legacy(6_660_000_000)
    )

    async with AnvilControl(berlin.rpc_url) as control:
        await control.call("anvil_setMinGasPrice", [hex(7 * GWEI)])
    moved = await _market(berlin, legacy)

    assert moved == FeeMarket(gas_price=7 * GWEI)
    assert legacy.levels(moved) == _levels(
        Fees.legacy(7 * GWEI), Fees.legacy(8_750_000_000), Fees.legacy(10_500_000_000)
    )


# ── bumping a stuck transaction, through the engine ────────────────────────────────────────────

STUCK_S = 30.0


@dataclass
class Engine:
    """The engine's services over a real node, driven one delivery of each job at a time."""

    chain: EvmChainClient
    control: AnvilControl
    signer: LocalSigner
    clock: FakeClock
    network: Network
    uow: SqlUnitOfWorkFactory
    queue: RecordingQueue
    services: Services

    @property
    def policy(self) -> FeePolicy:
        return self.network.fees

    async def market_price(self, level: FeeLevel = FeeLevel.NORMAL) -> Fees:
        """What ``level`` offers now, read from the node."""
        return self.policy.price(await read_market(self.network, self.chain), level)

    async def pay(self, recipient: Address, *, priority: FeeLevel | None = None) -> str:
        """Credit, request, validate, sign and broadcast a withdrawal of 1 ETH."""
        async with self.uow() as uow:
            await self.services.ledger.credit(
                uow,
                user_id="alice",
                network=NET,
                token_address=None,
                amount="5",
                reference=f"credit-{recipient}",
            )
            withdrawal, _ = await self.services.withdrawals.submit(
                uow,
                WithdrawalRequest(
                    user_id="alice",
                    amount="1",
                    to_address=recipient,
                    network=NET,
                    priority=priority,
                ),
            )
            await uow.commit()
        handlers = self.services.handlers
        await handlers.validate({"withdrawalId": withdrawal.id})
        await handlers.sign({"withdrawalId": withdrawal.id})
        transaction_id = (await self.withdrawal(withdrawal.id)).transaction_id
        await handlers.broadcast({"transactionId": transaction_id})
        return withdrawal.id

    async def withdrawal(self, withdrawal_id: str) -> Withdrawal:
        async with self.uow() as uow:
            withdrawal = await uow.withdrawals.get(withdrawal_id)
        assert withdrawal is not None
        return withdrawal

    async def transaction(self, withdrawal_id: str) -> tuple[ChainTransaction, list[Attempt]]:
        transaction_id = (await self.withdrawal(withdrawal_id)).transaction_id
        assert transaction_id is not None
        async with self.uow() as uow:
            transaction = await uow.transactions.get(transaction_id)
            attempts = await uow.transactions.attempts(transaction_id)
        assert transaction is not None
        return transaction, attempts

    async def confirm(self, withdrawal_id: str) -> float | None:
        """One confirmation round of the withdrawal's transaction."""
        transaction, _ = await self.transaction(withdrawal_id)
        payload = {"transactionId": transaction.id}
        if transaction.watch is not None:
            payload["watch"] = transaction.watch
        return await self.services.handlers.confirm(payload)

    async def stuck_round(self, withdrawal_id: str) -> list[Attempt]:
        """Let the latest attempt wait past ``stuck_after_s``; one round; the attempts."""
        self.clock.advance(self.policy.stuck_after_s + 1)
        await self.confirm(withdrawal_id)
        return (await self.transaction(withdrawal_id))[1]

    async def pooled(self) -> list[str]:
        """The hashes of the hot wallet's transactions in the node's pool."""
        return [
            p.hash
            for p in await self.control.pending_transactions()
            if p.sender.lower() == self.signer.address.lower()
        ]

    async def mine_and_settle(self, withdrawal_id: str) -> Withdrawal:
        """Mine a block and follow the withdrawal until it is final."""
        await self.control.mine()
        for _ in range(20):
            await self.confirm(withdrawal_id)
            withdrawal = await self.withdrawal(withdrawal_id)
            if withdrawal.status.is_final:
                return withdrawal
            await asyncio.sleep(0.05)
        raise AssertionError(f"withdrawal {withdrawal_id} not final: {withdrawal.status}")


@pytest.fixture
def london(anvil: AnvilProcess) -> Iterator[AnvilProcess]:
    """An EIP-1559 node of this test's own, mining only when told."""
    yield from _node("--no-mining")


@asynccontextmanager
async def _engine(
    engine: AsyncEngine, node: AnvilProcess, policy: FeePolicy
) -> AsyncIterator[Engine]:
    signer = LocalSigner()
    network = _network(policy, signer.address)
    chain = EvmChainClient(node.rpc_url)
    registry = NetworkRegistry({NET: NetworkEntry(network=network, chain=chain, signers=(signer,))})
    queue = RecordingQueue()
    uow = SqlUnitOfWorkFactory(engine, queue)
    clock = FakeClock()
    try:
        async with AnvilControl(node.rpc_url) as control:
            await control.set_balance(signer.address, 100 * ETH)
            async with uow() as unit:
                await unit.transactions.reconcile_nonce(NET, signer.address, 0)
                await unit.commit()
            yield Engine(
                chain=chain,
                control=control,
                signer=signer,
                clock=clock,
                network=network,
                uow=uow,
                queue=queue,
                services=build_services(uow, registry, clock),
            )
    finally:
        await queue.close()
        await chain.close()


@pytest.fixture
async def on_london(engine: AsyncEngine, london: AnvilProcess) -> AsyncIterator[Engine]:
    async with AnvilControl(london.rpc_url) as control:
        await control.set_next_block_base_fee(GWEI)
    async with _engine(engine, london, FeePolicy(stuck_after_s=STUCK_S)) as wired:
        yield wired


@pytest.fixture
async def on_berlin(engine: AsyncEngine, berlin: AnvilProcess) -> AsyncIterator[Engine]:
    policy = FeePolicy(model=FeeModel.LEGACY, stuck_after_s=STUCK_S)
    async with _engine(engine, berlin, policy) as wired:
        yield wired


def _bumped(previous: Fees, percent: int) -> Fees:
    return Fees(
        max_fee_per_gas=raised(previous.max_fee_per_gas, percent),
        max_priority_fee_per_gas=raised(previous.max_priority_fee_per_gas, percent),
    )


def _accepted_as_replacement(previous: Fees, new: Fees) -> bool:
    """Whether a node takes ``new`` in place of ``previous`` (both fees +10 % at least)."""
    return new.max_fee_per_gas >= least_replacement(
        previous.max_fee_per_gas
    ) and new.max_priority_fee_per_gas >= least_replacement(previous.max_priority_fee_per_gas)


async def _assert_paid_once(
    wired: Engine, withdrawal_id: str, recipient: Address, mined: Attempt
) -> dict[str, Any]:
    """The withdrawal COMPLETED once by ``mined``, its fee the receipt's; the receipt."""
    withdrawal = await wired.withdrawal(withdrawal_id)
    transaction, attempts = await wired.transaction(withdrawal_id)
    receipt = await wired.control.receipt(mined.hash)
    assert receipt is not None
    assert withdrawal.status is WithdrawalStatus.COMPLETED
    assert transaction.mined_hash == mined.hash
    assert [a.outcome for a in attempts].count(AttemptOutcome.MINED) == 1
    assert await wired.chain.balance(recipient) == ETH  # paid exactly once
    assert await wired.chain.transaction_count(wired.signer.address) == transaction.nonce + 1
    paid = int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
    assert withdrawal.fee_paid == paid
    async with wired.uow() as uow:
        statuses = [event.to_status for event in await uow.withdrawals.events(withdrawal_id)]
    assert statuses.count(WithdrawalStatus.COMPLETED) == 1
    return receipt


async def test_a_stuck_eip1559_transaction_is_bumped_then_rises_to_its_level_and_is_mined_once(
    on_london: Engine,
) -> None:
    wired = on_london
    recipient = Address(Account.create().address)
    level = FeeLevel.FAST

    withdrawal_id = await wired.pay(recipient, priority=level)
    _, attempts = await wired.transaction(withdrawal_id)
    first = attempts[0].fees
    market_before = await wired.market_price(level)
    assert len(attempts) == 1
    assert first == market_before  # the fast level now
    assert await wired.pooled() == [attempts[0].hash]

    # Not stuck yet: nothing changes.
    wired.clock.advance(STUCK_S - 1)
    await wired.confirm(withdrawal_id)
    assert len((await wired.transaction(withdrawal_id))[1]) == 1

    # Stuck, the market unchanged: +bump_percent (20) on both fees.
    attempts = await wired.stuck_round(withdrawal_id)
    assert len(attempts) == 2
    second = attempts[1].fees
    assert second == _bumped(first, wired.policy.bump_percent)
    assert _accepted_as_replacement(first, second)
    assert await wired.pooled() == [attempts[1].hash]  # the node took it in place of the first

    # The base fee jumps above every cap so far: the next replacement rises to the level's price.
    await wired.control.set_next_block_base_fee(60 * GWEI)
    market_after = await wired.market_price(level)
    assert market_after.max_fee_per_gas > raised(second.max_fee_per_gas, 20)
    attempts = await wired.stuck_round(withdrawal_id)
    assert len(attempts) == 3
    third = attempts[2].fees
    assert third == wired.policy.replacement(second, market_after)
    assert third.max_fee_per_gas == market_after.max_fee_per_gas
    assert third.max_priority_fee_per_gas == max(
        raised(second.max_priority_fee_per_gas, 20), market_after.max_priority_fee_per_gas
    )
    assert _accepted_as_replacement(second, third)
    assert await wired.pooled() == [attempts[2].hash]

    withdrawal = await wired.mine_and_settle(withdrawal_id)

    assert withdrawal.status is WithdrawalStatus.COMPLETED
    receipt = await _assert_paid_once(wired, withdrawal_id, recipient, attempts[2])
    block = await wired.control.get_block(int(receipt["blockNumber"], 16))
    assert block is not None
    assert block.base_fee_per_gas == 60 * GWEI
    assert int(receipt["effectiveGasPrice"], 16) == 60 * GWEI + third.max_priority_fee_per_gas


async def test_a_stuck_legacy_transaction_is_bumped_then_rises_to_its_level_and_is_mined_once(
    on_berlin: Engine,
) -> None:
    wired = on_berlin
    recipient = Address(Account.create().address)

    withdrawal_id = await wired.pay(recipient)  # the default level: normal, 125 %
    _, attempts = await wired.transaction(withdrawal_id)
    first = attempts[0].fees
    assert first == Fees.legacy(2_500_000_000) == await wired.market_price()
    assert await wired.pooled() == [attempts[0].hash]

    attempts = await wired.stuck_round(withdrawal_id)
    assert [a.fees for a in attempts[1:]] == [Fees.legacy(3 * GWEI)]  # +20 %
    assert await wired.pooled() == [attempts[1].hash]

    # The node's gas price rises: the level's price (125 % of it) is above another +20 %.
    await wired.control.call("anvil_setMinGasPrice", [hex(20 * GWEI)])
    assert await wired.market_price() == Fees.legacy(25 * GWEI)
    attempts = await wired.stuck_round(withdrawal_id)
    assert [a.fees for a in attempts[2:]] == [Fees.legacy(25 * GWEI)]
    assert await wired.pooled() == [attempts[2].hash]

    await wired.mine_and_settle(withdrawal_id)

    receipt = await _assert_paid_once(wired, withdrawal_id, recipient, attempts[2])
    mined = await wired.control.transaction(attempts[2].hash)
    assert mined is not None
    assert mined["type"] == "0x0"
    assert int(mined["gasPrice"], 16) == 25 * GWEI
    assert int(receipt["effectiveGasPrice"], 16) == 25 * GWEI  # a legacy price is paid whole


def _resent() -> float:
    value = REGISTRY.get_sample_value(
        "sluice_transaction_events_total", {"network": NET, "event": "resent"}
    )
    return value or 0.0


@pytest.mark.parametrize("model", [FeeModel.EIP1559, FeeModel.LEGACY])
async def test_when_the_cap_leaves_no_room_the_same_bytes_are_sent_again(
    engine: AsyncEngine, request: pytest.FixtureRequest, model: FeeModel
) -> None:
    if model is FeeModel.LEGACY:
        node: AnvilProcess = request.getfixturevalue("berlin")
        cap = 2_200_000_000  # below the normal level's 2.5 gwei
    else:
        node = request.getfixturevalue("london")
        async with AnvilControl(node.rpc_url) as control:
            await control.set_next_block_base_fee(GWEI)
        cap = 2 * GWEI  # below the projected base fee (2.03 gwei) plus the tip
    policy = FeePolicy(model=model, max_fee_per_gas=cap, stuck_after_s=STUCK_S)
    async with _engine(engine, node, policy) as wired:
        recipient = Address(Account.create().address)
        withdrawal_id = await wired.pay(recipient)
        _, attempts = await wired.transaction(withdrawal_id)
        only = attempts[0]
        assert only.fees.max_fee_per_gas == cap
        assert wired.policy.replacement(only.fees, await wired.market_price()) is None

        # The node forgets it; each stuck round sends the stored attempt again, unchanged.
        assert await wired.control.drop_transaction(only.hash)
        resent = _resent()
        for _ in range(2):
            attempts = await wired.stuck_round(withdrawal_id)
            assert [a.hash for a in attempts] == [only.hash]
            assert await wired.pooled() == [only.hash]
        assert _resent() == resent + 2
        # Right after a re-send, the next look waits: stuck again only stuck_after_s later.
        await wired.confirm(withdrawal_id)
        assert _resent() == resent + 2
        pooled = await wired.control.transaction(only.hash)
        assert pooled is not None
        assert int(pooled.get("maxFeePerGas") or pooled["gasPrice"], 16) == cap

        await wired.mine_and_settle(withdrawal_id)

        await _assert_paid_once(wired, withdrawal_id, recipient, only)


async def test_an_operators_cancel_of_a_stuck_legacy_payout_is_a_type_0_no_op_that_pays_nobody(
    on_berlin: Engine,
) -> None:
    wired = on_berlin
    recipient = Address(Account.create().address)
    withdrawal_id = await wired.pay(recipient)
    _, (payout,) = await wired.transaction(withdrawal_id)

    async with wired.uow() as uow:
        await wired.services.cancellation.cancel(uow, withdrawal_id, reason="operator")
        await uow.commit()
    await wired.confirm(withdrawal_id)  # the no-op replaces the payout at its nonce
    _, attempts = await wired.transaction(withdrawal_id)
    assert [a.purpose for a in attempts] == [AttemptPurpose.PAYLOAD, AttemptPurpose.CANCEL]
    noop = attempts[1]
    # A legacy replacement: one gas price, at least 10 % above the payout's.
    assert noop.fees.max_fee_per_gas == noop.fees.max_priority_fee_per_gas
    assert noop.fees.max_fee_per_gas >= payout.fees.max_fee_per_gas * 110 // 100
    assert await wired.pooled() == [noop.hash]

    settled = await wired.mine_and_settle(withdrawal_id)
    assert settled.status is WithdrawalStatus.CANCELLED
    mined = await wired.control.transaction(noop.hash)
    assert mined is not None
    assert mined["type"] == "0x0"
    assert await wired.chain.balance(recipient) == 0
    async with wired.uow() as uow:
        balance = await uow.ledger.balance("alice", NET, "native")
    assert balance.held == 0  # the hold is released
