"""A whole withdrawal pipeline in one process, for service-level tests and property tests.

`wire` builds the services and stage handlers with `sluice.bootstrap.build_services`, the one
wiring `sluice.bootstrap.build` uses too, around a database engine, a `FakeChain`, a real signer
and a `FakeClock`, with a `RecordingQueue`; `Pipeline` drives each stage by hand, as one delivery
of its job, or through a running `Worker`. With ``batch_window_s`` the network batches payouts
(docs/batching.md): each hot wallet has a batch contract (`BATCH_CONTRACT` for the first) that
may spend all of its tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.bootstrap import Services, build_services
from sluice.db.tables import ledger_entries
from sluice.db.unit_of_work import SqlUnitOfWorkFactory
from sluice.domain.addresses import Address
from sluice.domain.assets import NATIVE, Asset, Batching, Network
from sluice.domain.fees import FeeLevel, FeePolicy, Finality
from sluice.domain.ledger import Balance, EntryKind
from sluice.domain.receipts import MAX_UINT256
from sluice.domain.transaction import (
    Attempt,
    ChainTransaction,
    SignedTransaction,
    UnsignedTransaction,
)
from sluice.domain.withdrawal import StatusChange, Withdrawal, WithdrawalStatus
from sluice.ports import Signer, SigningContext
from sluice.services.cancellation import CancellationService
from sluice.services.ledger import LedgerService
from sluice.services.registry import NetworkEntry, NetworkRegistry
from sluice.services.withdrawals import WithdrawalRequest, WithdrawalService
from sluice.testing.fakes import FakeChain, FakeClock, LocalSigner, RecordingQueue
from sluice.worker.handlers import StageHandlers
from sluice.worker.runner import Worker

__all__ = [
    "BATCH_CONTRACT",
    "CHAIN_ID",
    "DEST",
    "ETH",
    "HOT_KEY",
    "NET",
    "TOKEN",
    "CountingSigner",
    "Pipeline",
    "batch_contract_of",
    "wire",
]

NET = "fakenet"
CHAIN_ID = 31337
#: Anvil's second development key (a well-known test key, never a real wallet's).
HOT_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
TOKEN = Address("0x5FbDB2315678afecb367f032d93F642f64180aa3")
DEST = Address("0x90F79bf6EB2c4f870365E785982E1f101E93b906")
ETH = 10**18
#: The batch contract of the first hot wallet when `wire` turns batching on.
BATCH_CONTRACT = Address("0xBA7c4000000000000000000000000000000000B1")
#: The code size `wire` gives each batch contract on the fake chain.
BATCH_CODE_SIZE = 2_000


def batch_contract_of(wallet: Address, index: int) -> Address:
    """The batch contract `wire` gives the ``index``-th hot wallet: `BATCH_CONTRACT` for the
    first, an address derived from the wallet for the others."""
    if index == 0:
        return BATCH_CONTRACT
    return Address(to_checksum_address(keccak(b"batch:" + bytes.fromhex(wallet[2:]))[-20:]))


class CountingSigner:
    """A real signer that counts its signatures (to prove nothing is ever re-signed)."""

    def __init__(self, inner: LocalSigner) -> None:
        self._inner = inner
        self.signed: list[UnsignedTransaction] = []
        self.contexts: list[SigningContext | None] = []

    @property
    def address(self) -> Address:
        return self._inner.address

    async def sign(
        self, transaction: UnsignedTransaction, context: SigningContext | None = None
    ) -> SignedTransaction:
        self.signed.append(transaction)
        self.contexts.append(context)
        return await self._inner.sign(transaction, context)

    async def close(self) -> None:
        await self._inner.close()


@dataclass
class Pipeline:
    """Everything one test needs, wired by `sluice.bootstrap.build_services` as in production."""

    engine: AsyncEngine
    queue: RecordingQueue
    chain: FakeChain
    signer: CountingSigner
    clock: FakeClock
    network: Network
    uow: SqlUnitOfWorkFactory
    services: Services
    registry: NetworkRegistry
    _credits: int = field(default=0)

    @property
    def handlers(self) -> StageHandlers:
        """The worker's stage handlers."""
        return self.services.handlers

    @property
    def withdrawals(self) -> WithdrawalService:
        """Requesting, reading and cancelling withdrawals."""
        return self.services.withdrawals

    @property
    def ledger(self) -> LedgerService:
        """Credits and balances."""
        return self.services.ledger

    @property
    def cancellation(self) -> CancellationService:
        """An operator's cancel."""
        return self.services.cancellation

    async def credit(self, user_id: str, amount: str, *, token: bool = False) -> None:
        self._credits += 1
        async with self.uow() as uow:
            await self.ledger.credit(
                uow,
                user_id=user_id,
                network=NET,
                token_address=TOKEN if token else None,
                amount=amount,
                reference=f"credit-{self._credits}",
            )
            await uow.commit()

    async def submit(
        self,
        user_id: str,
        amount: str,
        *,
        token: bool = False,
        withdrawal_id: str | None = None,
        to: Address = DEST,
        priority: FeeLevel | None = None,
        api_key_id: str | None = None,
    ) -> str:
        async with self.uow() as uow:
            withdrawal, _created = await self.withdrawals.submit(
                uow,
                WithdrawalRequest(
                    user_id=user_id,
                    amount=amount,
                    to_address=to,
                    network=NET,
                    token_address=TOKEN if token else None,
                    id=withdrawal_id,
                    priority=priority,
                ),
                api_key_id=api_key_id,
            )
            await uow.commit()
        return withdrawal.id

    # Batching (`wire` with ``batch_window_s``).
    def set_batching(self, enabled: bool) -> None:
        """Turn batching on or off, as a restart with ``enabled`` changed in the networks file
        would; the contracts stay configured. Transactions signed before keep their payloads."""
        entry = self.registry.get(NET)
        batching = replace(entry.network.batching, enabled=enabled)
        entry.network = self.network = replace(entry.network, batching=batching)

    def allow(self, amount: int, *, wallet: Address | None = None) -> None:
        """Set what a hot wallet's batch contract may spend of its `TOKEN` (the first wallet's
        unless ``wallet``); `wire` allows everything."""
        owner = wallet or self.signer.address
        contract = self.network.batching.contract_of(owner)
        if contract is None:
            raise LookupError(f"hot wallet {owner} has no batch contract")
        self.chain.token_allowances[(TOKEN, owner, contract)] = amount

    async def load(self, transaction_id: str) -> ChainTransaction:
        """A transaction with its attempts and the withdrawals it pays (in position order)."""
        async with self.uow() as uow:
            transaction = await uow.transactions.load(transaction_id)
            await uow.commit()
        if transaction is None:
            raise LookupError(f"no transaction {transaction_id}")
        return transaction

    async def carried(self, transaction_id: str) -> list[str]:
        """The ids of the withdrawals a transaction pays, in position order."""
        return [w.id for w in (await self.load(transaction_id)).carried]

    async def get(self, withdrawal_id: str) -> Withdrawal:
        async with self.uow() as uow:
            withdrawal = await uow.withdrawals.get(withdrawal_id)
        if withdrawal is None:
            raise LookupError(f"no withdrawal {withdrawal_id}")
        return withdrawal

    async def status(self, withdrawal_id: str) -> WithdrawalStatus:
        return (await self.get(withdrawal_id)).status

    async def transaction(self, withdrawal_id: str) -> tuple[ChainTransaction, list[Attempt]]:
        withdrawal = await self.get(withdrawal_id)
        if withdrawal.transaction_id is None:
            raise LookupError(f"withdrawal {withdrawal_id} has no transaction")
        async with self.uow() as uow:
            transaction = await uow.transactions.get(withdrawal.transaction_id)
            attempts = await uow.transactions.attempts(withdrawal.transaction_id)
        if transaction is None:
            raise LookupError(f"no transaction {withdrawal.transaction_id}")
        return transaction, attempts

    async def balance(self, user_id: str, *, token: bool = False) -> Balance:
        asset_key = TOKEN.lower() if token else NATIVE
        async with self.uow() as uow:
            return await uow.ledger.balance(user_id, NET, asset_key)

    async def journal(self, withdrawal_id: str) -> list[tuple[EntryKind, int]]:
        query = (
            select(ledger_entries.c.kind, ledger_entries.c.amount)
            .where(ledger_entries.c.withdrawal_id == withdrawal_id)
            .order_by(ledger_entries.c.id)
        )
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [(EntryKind(kind), amount) for kind, amount in rows]

    # Stage shortcuts: one delivery of each job, as the worker would make it.
    async def validate(self, withdrawal_id: str) -> float | None:
        return await self.handlers.validate({"withdrawalId": withdrawal_id})

    async def sign(self, withdrawal_id: str) -> float | None:
        return await self.handlers.sign({"withdrawalId": withdrawal_id})

    async def broadcast(self, withdrawal_id: str) -> float | None:
        transaction_id = (await self.get(withdrawal_id)).transaction_id
        return await self.handlers.broadcast({"transactionId": transaction_id})

    async def confirm(self, withdrawal_id: str) -> float | None:
        """One round of the withdrawal's transaction's confirmation chain (its current one)."""
        transaction_id = (await self.get(withdrawal_id)).transaction_id
        if transaction_id is None:
            return None
        return await self.confirm_transaction(transaction_id)

    async def confirm_transaction(self, transaction_id: str) -> float | None:
        """One round of a transaction's current confirmation chain."""
        async with self.uow() as uow:
            transaction = await uow.transactions.get(transaction_id)
        payload: dict[str, str] = {"transactionId": transaction_id}
        if transaction is not None and transaction.watch is not None:
            payload["watch"] = transaction.watch
        return await self.handlers.confirm(payload)

    async def cancel(self, withdrawal_id: str, *, reason: str = "operator") -> Withdrawal:
        """An operator's cancel (see `CancellationService`)."""
        async with self.uow() as uow:
            withdrawal = await self.cancellation.cancel(uow, withdrawal_id, reason=reason)
            await uow.commit()
        return withdrawal

    async def events(self, withdrawal_id: str) -> list[StatusChange]:
        """A withdrawal's history."""
        async with self.uow() as uow:
            return await uow.withdrawals.events(withdrawal_id)

    async def transaction_by_id(
        self, transaction_id: str
    ) -> tuple[ChainTransaction, list[Attempt]]:
        """A transaction and its attempts."""
        async with self.uow() as uow:
            transaction = await uow.transactions.get(transaction_id)
            attempts = await uow.transactions.attempts(transaction_id)
        if transaction is None:
            raise LookupError(f"no transaction {transaction_id}")
        return transaction, attempts

    def worker(self, *, max_attempts: int = 8) -> Worker:
        return Worker(
            self.queue,
            self.handlers.table(),
            concurrency=4,
            max_attempts=max_attempts,
            retry_base_s=0.01,
            retry_max_s=0.05,
            receive_wait_s=0.02,
        )


def wire(
    engine: AsyncEngine,
    chain: FakeChain,
    signer: CountingSigner,
    clock: FakeClock,
    *,
    confirmations: int = 1,
    max_in_flight: int = 100,
    finality: Finality = Finality.DEPTH,
    fees: FeePolicy | None = None,
    more_signers: tuple[LocalSigner, ...] = (),
    draining: frozenset[Address] = frozenset(),
    batch_window_s: float | None = None,
    batch_max_size: int = 100,
) -> Pipeline:
    """Build the services around an engine with `build_services`, with a fresh queue.

    ``batch_window_s``: batch payouts, each group waiting that long for others (None: every
    withdrawal is paid on its own), at most ``batch_max_size`` to a batch. Each hot wallet then
    has a batch contract (`batch_contract_of`) with code on the chain and an unlimited allowance
    of `TOKEN`."""
    wallets = (signer.address, *(s.address for s in more_signers))
    batching = Batching()
    if batch_window_s is not None:
        batching = Batching(
            contracts=tuple((w, batch_contract_of(w, i)) for i, w in enumerate(wallets)),
            max_size=batch_max_size,
            window_s=batch_window_s,
        )
        for owner, contract in batching.contracts:
            chain.code_sizes.setdefault(contract, BATCH_CODE_SIZE)
            chain.token_allowances.setdefault((TOKEN, owner, contract), MAX_UINT256)
    network = Network(
        name=NET,
        chain_id=CHAIN_ID,
        native=Asset(NET, "ETH", 18),
        tokens=(Asset(NET, "TKN", 6, token_address=TOKEN),),
        confirmations=confirmations,
        poll_interval_s=0.01,
        hot_wallets=wallets,
        max_in_flight=max_in_flight,
        finality=finality,
        fees=fees or FeePolicy(),
        batching=batching,
    )
    # A hot wallet that can pay everything the tests ask of it (tests of an empty wallet lower it).
    signers: tuple[Signer, ...] = (signer, *more_signers)
    for wallet in signers:
        chain.balances.setdefault(wallet.address, 1000 * ETH)
        chain.token_balances.setdefault((TOKEN, wallet.address), 10**30)
    entry = NetworkEntry(network=network, chain=chain, signers=signers, draining=draining)
    registry = NetworkRegistry({NET: entry})
    queue = RecordingQueue()
    uow = SqlUnitOfWorkFactory(engine, queue)
    return Pipeline(
        engine=engine,
        queue=queue,
        chain=chain,
        signer=signer,
        clock=clock,
        network=network,
        uow=uow,
        services=build_services(uow, registry, clock),
        registry=registry,
    )
