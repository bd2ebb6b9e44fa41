"""The engine reads each node's answers right, on Anvil and on Hardhat's node.

Each refusal of `eth_sendRawTransaction` that issue 10 found misread ("Sender doesn't have
enough funds", a fee cap below the next block's base fee, 20 000 gas, gas above the cap, a tip
above the fee cap, another chain's id) is produced for real: a signer that corrupts only the
first signature of a payout (the engine stores the fees it asked for; the node sees the
corrupted bytes), or a hot wallet emptied between signing and sending. Each withdrawal must end
as the docs say (docs/reliability.md, "The transaction engine"), its hold right, and neither of
the network's two providers (two URLs of one node) benched.

The stages run by hand, one job at a time (as `sluice.testing.pipeline` does on the fake
chain), with a fake clock so that "stuck" is a step of the test, not a wait.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from eth_account import Account
from prometheus_client import REGISTRY

from sluice.bootstrap import Services, build_services
from sluice.chains.failover import FailoverChainClient
from sluice.db.engine import create_engine
from sluice.db.unit_of_work import SqlUnitOfWorkFactory
from sluice.devnet.anvil import LocalNode
from sluice.domain.addresses import Address
from sluice.domain.assets import NATIVE, Asset, Network
from sluice.domain.fees import FeePolicy
from sluice.domain.ledger import Balance
from sluice.domain.transaction import (
    Attempt,
    AttemptPurpose,
    ChainTransaction,
    SignedTransaction,
    UnsignedTransaction,
)
from sluice.domain.withdrawal import Withdrawal, WithdrawalStatus
from sluice.ports import SigningContext
from sluice.services.registry import NetworkEntry, NetworkRegistry
from sluice.services.withdrawals import WithdrawalRequest
from sluice.testing.anvil_control import NodeControl, control_for
from sluice.testing.contracts import (
    ChainSender,
    deploy_blocking_token,
    deploy_false_token,
    deploy_invalid_receiver,
    deploy_reverting_receiver,
    mint,
    set_blocked,
)
from sluice.testing.fakes import FakeClock, LocalSigner, RecordingQueue

W = WithdrawalStatus
ETH = 10**18
CHAIN_ID = 31337
STUCK_S = 60.0

Corruption = Callable[[UnsignedTransaction], UnsignedTransaction]


class CorruptingSigner:
    """A real signer that corrupts the first payout signature of each transaction."""

    def __init__(self, inner: LocalSigner, corrupt: Corruption | None) -> None:
        self._inner = inner
        self._corrupt = corrupt
        self._seen: set[str] = set()

    @property
    def address(self) -> Address:
        return self._inner.address

    async def sign(
        self, transaction: UnsignedTransaction, context: SigningContext | None = None
    ) -> SignedTransaction:
        if (
            self._corrupt is not None
            and context is not None
            and context.purpose is AttemptPurpose.PAYLOAD
            and context.transaction_id not in self._seen
        ):
            self._seen.add(context.transaction_id)
            transaction = self._corrupt(transaction)
        return await self._inner.sign(transaction, context)

    async def close(self) -> None:
        await self._inner.close()


@dataclass
class Engine:
    """The services over a real node, driven one job at a time."""

    services: Services
    uow: SqlUnitOfWorkFactory
    clock: FakeClock
    wallet: Address
    destination: Address
    network: str

    async def pay(self, amount: str = "0.001", *, token: Address | None = None) -> str:
        """Credit alice 1 unit and ask for a withdrawal of ``amount``; validated and signed."""
        wid = await self.request(amount, token=token)
        assert await self.sign(wid) is None, "signed at once"
        return wid

    async def request(self, amount: str, *, token: Address | None = None) -> str:
        """Credit alice 1 unit and ask for a withdrawal of ``amount``; validated."""
        async with self.uow() as uow:
            await self.services.ledger.credit(
                uow,
                user_id="alice",
                network=self.network,
                token_address=token,
                amount="1",
                reference=f"credit-{token}",
            )
            withdrawal, _ = await self.services.withdrawals.submit(
                uow,
                WithdrawalRequest(
                    user_id="alice",
                    amount=amount,
                    to_address=self.destination,
                    network=self.network,
                    token_address=token,
                ),
            )
            await uow.commit()
        await self.services.handlers.validate({"withdrawalId": withdrawal.id})
        return withdrawal.id

    async def sign(self, withdrawal_id: str) -> float | None:
        return await self.services.handlers.sign({"withdrawalId": withdrawal_id})

    async def get(self, withdrawal_id: str) -> Withdrawal:
        async with self.uow() as uow:
            withdrawal = await uow.withdrawals.get(withdrawal_id)
        assert withdrawal is not None
        return withdrawal

    async def transaction(self, withdrawal_id: str) -> tuple[ChainTransaction, list[Attempt]]:
        transaction_id = (await self.get(withdrawal_id)).transaction_id
        assert transaction_id is not None
        async with self.uow() as uow:
            transaction = await uow.transactions.get(transaction_id)
            attempts = await uow.transactions.attempts(transaction_id)
        assert transaction is not None
        return transaction, attempts

    async def broadcast(self, withdrawal_id: str) -> None:
        transaction, _ = await self.transaction(withdrawal_id)
        await self.services.handlers.broadcast({"transactionId": transaction.id})

    async def confirm(self, withdrawal_id: str) -> float | None:
        transaction, _ = await self.transaction(withdrawal_id)
        payload = {"transactionId": transaction.id, "watch": transaction.watch or ""}
        return await self.services.handlers.confirm(payload)

    async def balance(self, token: Address | None = None) -> Balance:
        key = NATIVE if token is None else token.lower()
        async with self.uow() as uow:
            return await uow.ledger.balance("alice", self.network, key)


def _benched(network: str) -> float:
    """How often any provider of ``network`` was benched, for any reason."""
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "sluice_rpc_failovers"
        for sample in metric.samples
        if sample.name == "sluice_rpc_failovers_total" and sample.labels["network"] == network
    )


@pytest.fixture
async def control(anvil: LocalNode) -> AsyncIterator[NodeControl]:
    async with control_for(anvil) as node_control:
        yield node_control


@asynccontextmanager
async def _engine(
    anvil: LocalNode,
    control: NodeControl,
    database_url: str,
    request: pytest.FixtureRequest,
    corrupt: Corruption | None,
    *,
    destination: Address | None = None,
    tokens: tuple[Address, ...] = (),
) -> AsyncIterator[Engine]:
    account = Account.create()
    await control.set_balance(account.address, 100 * ETH)
    network_name = f"answers-{abs(hash(request.node.nodeid)) % 10**8}"
    chain = FailoverChainClient.from_urls(
        [anvil.rpc_url, anvil.rpc_url.replace("127.0.0.1", "localhost")],
        network=network_name,
        expected_chain_id=CHAIN_ID,
    )
    signer = CorruptingSigner(LocalSigner(account.key.hex()), corrupt)
    network = Network(
        name=network_name,
        chain_id=CHAIN_ID,
        native=Asset(network_name, "ETH", 18),
        tokens=tuple(
            Asset(network_name, f"T{i}", 18, token_address=t) for i, t in enumerate(tokens)
        ),
        confirmations=1,
        poll_interval_s=0.01,
        hot_wallets=(signer.address,),
        fees=FeePolicy(stuck_after_s=STUCK_S),
    )
    registry = NetworkRegistry({network_name: NetworkEntry(network, chain, (signer,))})
    engine = create_engine(database_url)
    clock = FakeClock()
    uow = SqlUnitOfWorkFactory(engine, RecordingQueue())
    async with uow() as unit:
        await unit.transactions.reconcile_nonce(network_name, signer.address, 0)
        await unit.commit()
    try:
        yield Engine(
            services=build_services(uow, registry, clock),
            uow=uow,
            clock=clock,
            wallet=signer.address,
            destination=destination or Address(Account.create().address),
            network=network_name,
        )
    finally:
        await chain.close()
        await engine.dispose()


def _fields(**changes: int) -> Corruption:
    return lambda tx: dataclasses.replace(tx, **changes)  # type: ignore[arg-type]  # int fields


def _fees(max_fee: int, tip: int) -> Corruption:
    def corrupt(tx: UnsignedTransaction) -> UnsignedTransaction:
        return dataclasses.replace(tx, fees=type(tx.fees)(max_fee, tip))

    return corrupt


#: Refusals for good: the withdrawal fails ``rejected`` once a no-op holds its nonce.
PERMANENT: dict[str, tuple[Corruption, str]] = {
    "requires at least 21000 gas": (_fields(gas=20_000), "gas_too_low"),
    "gas above the cap": (_fields(gas=30_000_001), "gas_limit_too_high"),
    "tip above the fee cap": (_fees(2 * 10**9, 2 * 10**9 + 1), "tip_above_fee_cap"),
    "another chain's id": (_fields(chain_id=CHAIN_ID + 1), "wrong_chain_id"),
}


@pytest.mark.parametrize("kind", list(PERMANENT))
async def test_a_payout_refused_for_good_fails_rejected_and_releases_its_hold(
    anvil: LocalNode,
    control: NodeControl,
    database_url: str,
    request: pytest.FixtureRequest,
    kind: str,
) -> None:
    corrupt, reason = PERMANENT[kind]
    async with _engine(anvil, control, database_url, request, corrupt) as e:
        wid = await e.pay()
        await e.broadcast(wid)

        transaction, [payout] = await e.transaction(wid)
        assert payout.note == f"refused: {reason}"
        assert transaction.refusal == reason
        assert (await e.get(wid)).status is W.BROADCASTING, "held until the chain decides"
        await e.confirm(wid)  # the no-op at the nonce: sent and mined
        _, attempts = await e.transaction(wid)
        assert [a.purpose for a in attempts] == [AttemptPurpose.PAYLOAD, AttemptPurpose.CANCEL]
        assert await e.confirm(wid) is None

        withdrawal = await e.get(wid)
        assert (withdrawal.status, withdrawal.error_code) == (W.FAILED, "rejected")
        assert await e.balance() == Balance(ETH, 0)
        assert _benched(e.network) == 0.0


async def test_a_payout_refused_for_want_of_funds_goes_out_after_a_top_up(
    anvil: LocalNode, control: NodeControl, database_url: str, request: pytest.FixtureRequest
) -> None:
    async with _engine(anvil, control, database_url, request, None) as e:
        wid = await e.pay()
        await control.set_balance(e.wallet, 10**12)  # emptied between signing and sending

        await e.broadcast(wid)

        transaction, [payout] = await e.transaction(wid)
        assert payout.note == "refused: insufficient_funds"
        assert transaction.refusal is None
        await control.set_balance(e.wallet, 100 * ETH)
        await e.confirm(wid)  # unknown to the node: the same bytes again
        assert await e.confirm(wid) is None
        assert (await e.get(wid)).status is W.COMPLETED
        assert await e.balance() == Balance(ETH - ETH // 1000, 0)
        assert _benched(e.network) == 0.0


async def test_a_payout_priced_below_the_next_base_fee_is_replaced_and_completes(
    anvil: LocalNode, control: NodeControl, database_url: str, request: pytest.FixtureRequest
) -> None:
    async with _engine(anvil, control, database_url, request, _fees(1, 0)) as e:
        wid = await e.pay()

        await e.broadcast(wid)

        transaction, [payout] = await e.transaction(wid)
        assert payout.note == "refused: fee_too_low"
        assert transaction.refusal is None
        e.clock.advance(STUCK_S)
        await e.confirm(wid)  # stuck: replaced at the market's fees
        assert await e.confirm(wid) is None
        _, attempts = await e.transaction(wid)
        assert [a.seq for a in attempts] == [1, 2]
        assert (await e.get(wid)).status is W.COMPLETED
        assert _benched(e.network) == 0.0


# ── Destinations that revert, tokens that shortchange ─────────────────────────────────────────


@asynccontextmanager
async def _deployer(anvil: LocalNode, control: NodeControl) -> AsyncIterator[ChainSender]:
    """A funded account that deploys (and so owns) the test contracts."""
    account = Account.create()
    await control.set_balance(account.address, 100 * ETH)
    sender = ChainSender(anvil.rpc_url, account.key.hex())
    try:
        yield sender
    finally:
        sender.close()


@pytest.mark.parametrize("opcode", ["REVERT", "INVALID"])
async def test_a_native_payout_to_a_contract_that_refuses_it_fails_before_signing(
    anvil: LocalNode,
    control: NodeControl,
    database_url: str,
    request: pytest.FixtureRequest,
    opcode: str,
) -> None:
    deploy = deploy_reverting_receiver if opcode == "REVERT" else deploy_invalid_receiver
    async with _deployer(anvil, control) as deployer:
        receiver = await asyncio.to_thread(deploy, deployer)
    async with _engine(anvil, control, database_url, request, None, destination=receiver) as e:
        wid = await e.request("0.001")

        assert await e.sign(wid) is None, "nothing to try again"

        withdrawal = await e.get(wid)
        assert (withdrawal.status, withdrawal.error_code) == (W.FAILED, "destination_reverts")
        assert withdrawal.transaction_id is None, "nothing was signed"
        assert await e.balance() == Balance(ETH, 0)
        assert _benched(e.network) == 0.0


async def test_a_token_payout_to_a_blocked_recipient_fails_before_signing(
    anvil: LocalNode, control: NodeControl, database_url: str, request: pytest.FixtureRequest
) -> None:
    destination = Address(Account.create().address)
    async with _deployer(anvil, control) as deployer:
        token = await asyncio.to_thread(deploy_blocking_token, deployer)
        await asyncio.to_thread(set_blocked, deployer, token, destination)
        async with _engine(
            anvil, control, database_url, request, None, destination=destination, tokens=(token,)
        ) as e:
            await asyncio.to_thread(mint, deployer, token, e.wallet, 10 * ETH)
            wid = await e.request("0.5", token=token)

            assert await e.sign(wid) is None

            withdrawal = await e.get(wid)
            assert (withdrawal.status, withdrawal.error_code) == (W.FAILED, "destination_reverts")
            assert await e.balance(token) == Balance(ETH, 0)
            assert _benched(e.network) == 0.0


async def test_a_token_shortfall_waits_underfunded_then_pays_after_a_top_up(
    anvil: LocalNode, control: NodeControl, database_url: str, request: pytest.FixtureRequest
) -> None:
    async with _deployer(anvil, control) as deployer:
        token = await asyncio.to_thread(deploy_blocking_token, deployer)
        async with _engine(anvil, control, database_url, request, None, tokens=(token,)) as e:
            await asyncio.to_thread(mint, deployer, token, e.wallet, ETH // 10)
            wid = await e.request("0.5", token=token)

            assert await e.sign(wid) is not None, "tried again later"

            withdrawal = await e.get(wid)
            assert withdrawal.status is W.VALIDATING
            assert withdrawal.waiting_reason is not None
            assert withdrawal.waiting_reason.startswith("underfunded")
            await asyncio.to_thread(mint, deployer, token, e.wallet, ETH)
            assert await e.sign(wid) is None
            await e.broadcast(wid)
            assert await e.confirm(wid) is None
            assert (await e.get(wid)).status is W.COMPLETED
            assert await e.balance(token) == Balance(ETH // 2, 0)


async def test_a_token_whose_transfer_returns_false_fails_and_releases_the_hold(
    anvil: LocalNode, control: NodeControl, database_url: str, request: pytest.FixtureRequest
) -> None:
    async with _deployer(anvil, control) as deployer:
        token = await asyncio.to_thread(deploy_false_token, deployer)
        async with _engine(anvil, control, database_url, request, None, tokens=(token,)) as e:
            await asyncio.to_thread(mint, deployer, token, e.wallet, 10 * ETH)
            wid = await e.pay("0.5", token=token)
            await e.broadcast(wid)

            assert await e.confirm(wid) is None

            withdrawal = await e.get(wid)
            assert (withdrawal.status, withdrawal.error_code) == (W.FAILED, "token_transfer_failed")
            assert await e.balance(token) == Balance(ETH, 0)
            transaction, _ = await e.transaction(wid)
            assert transaction.status.value == "CONFIRMED", "mined with status 1"
