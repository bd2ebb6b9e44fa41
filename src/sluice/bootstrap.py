"""The composition root: settings → adapters → services. Nothing else constructs adapters."""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.cache.redis_balances import RedisBalanceCache
from sluice.chains.failover import FailoverChainClient
from sluice.clock import SystemClock
from sluice.config import NetworkConfig, Settings
from sluice.db.engine import create_engine, migrate
from sluice.db.outbox import Outbox
from sluice.db.unit_of_work import SqlUnitOfWorkFactory
from sluice.errors import ConfigurationError
from sluice.ports import ChainClient, Clock, Queue, Signer
from sluice.queue.lanes import DEFAULT_POLL_S, Lane, LaneQueue, lane_url
from sluice.queue.memory import MemoryQueue
from sluice.queue.redis_streams import RedisStreamsQueue
from sluice.queue.sqs import SqsQueue
from sluice.services import jobs
from sluice.services.api_keys import ApiKeyService
from sluice.services.broadcast import BroadcastService
from sluice.services.confirmation import ConfirmationService
from sluice.services.ledger import LedgerService
from sluice.services.recovery import recover
from sluice.services.registry import NetworkEntry, NetworkRegistry
from sluice.services.signing import SigningService
from sluice.services.validation import ValidationService
from sluice.services.withdrawals import WithdrawalService
from sluice.signers.keystore import KeystoreSigner
from sluice.worker.handlers import StageHandlers
from sluice.worker.runner import Worker

log = structlog.get_logger(__name__)


@dataclass
class Container:
    """Every long-lived object of one Sluice process."""

    settings: Settings
    engine: AsyncEngine
    queue: Queue
    registry: NetworkRegistry
    uow: SqlUnitOfWorkFactory
    clock: Clock
    withdrawals: WithdrawalService
    ledger: LedgerService
    api_keys: ApiKeyService
    handlers: StageHandlers
    cache: RedisBalanceCache | None = None
    _closables: list[ChainClient] = field(default_factory=list)

    def worker(self) -> Worker:
        """A worker over this container's queue and stage handlers."""
        s = self.settings
        return Worker(
            self.queue,
            self.handlers.table(),
            concurrency=s.worker_concurrency,
            max_attempts=s.max_attempts,
            retry_base_s=s.retry_base_s,
            retry_max_s=s.retry_max_s,
        )

    async def recover(self) -> dict[str, int]:
        """Re-create queued work from the database (after a restart)."""
        async with self.uow() as uow:
            counts = await recover(uow)
            await uow.commit()
        log.info("recovered work from the database", **counts)
        return counts

    async def reconcile_nonces(self) -> None:
        """Make each hot wallet's nonce counter at least the chain's pending transaction count."""
        for entry in self.registry:
            for signer in entry.signers:
                chain_count = await entry.chain.transaction_count(signer.address, pending=True)
                async with self.uow() as uow:
                    nonce = await uow.transactions.reconcile_nonce(
                        entry.network.name, signer.address, chain_count
                    )
                    await uow.commit()
                log.info(
                    "nonce counter reconciled",
                    network=entry.network.name,
                    hot_wallet=signer.address,
                    chain_count=chain_count,
                    next_nonce=nonce,
                )

    async def close(self) -> None:
        """Release every connection."""
        await self.queue.close()
        if self.cache is not None:
            await self.cache.close()
        for chain in self._closables:
            await chain.close()
        await self.engine.dispose()


def make_queue(url: str) -> Queue:
    """The queue for a URL: ``memory://``, ``redis://…`` (Streams) or ``sqs://…``, in lanes.

    One inner queue per lane of `jobs.LANES`: the first lane is the queue the URL names, each
    other lane a queue beside it (`lane_url`: Redis namespace ``<ns>.<lane>``, SQS queue
    ``<name>-<lane>``).
    """
    scheme = url.split("://", 1)[0]
    if scheme not in ("memory", "redis", "rediss", "sqs"):
        raise ConfigurationError(f"unsupported queue URL scheme: {scheme!r}")
    lanes = [
        Lane(name, _single_queue(url if n == 0 else lane_url(url, name)), lane_jobs)
        for n, (name, lane_jobs) in enumerate(jobs.LANES)
    ]
    # SQS waits in whole seconds: a shorter slice would be rounded up to one anyway.
    return LaneQueue(lanes, poll_s=1.0 if scheme == "sqs" else DEFAULT_POLL_S)


def _single_queue(url: str) -> Queue:
    """The queue adapter for a URL of a supported scheme, without lanes."""
    if url.startswith("memory:"):
        return MemoryQueue()
    if url.startswith("sqs:"):
        return SqsQueue.from_url(url)
    return RedisStreamsQueue.from_url(url)


def load_signer(config: NetworkConfig, settings: Settings) -> Signer:
    """The hot wallet signer of a network."""
    if settings.keystore_passphrase is None:
        raise ConfigurationError("SLUICE_KEYSTORE_PASSPHRASE is not set")
    return KeystoreSigner.from_file(
        config.hot_wallet_keystore, settings.keystore_passphrase.get_secret_value()
    )


def stage_handlers(
    uow: SqlUnitOfWorkFactory, registry: NetworkRegistry, clock: Clock
) -> StageHandlers:
    """The worker's stage handlers over a unit-of-work factory and networks."""
    return StageHandlers(
        uow,
        validation=ValidationService(registry, clock),
        signing=SigningService(registry, clock),
        broadcast=BroadcastService(registry, clock),
        confirmation=ConfirmationService(registry, clock),
    )


async def build(settings: Settings, *, run_migrations: bool = True) -> Container:
    """Wire a container from settings."""
    if run_migrations:
        await migrate(settings.database_url)
    clock = SystemClock()
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    queue = make_queue(settings.queue_url)
    entries: dict[str, NetworkEntry] = {}
    chains: list[ChainClient] = []
    for name, config in settings.networks().items():
        signer = load_signer(config, settings)
        # Every configured RPC URL, in order: a failing or lagging one is skipped for a while.
        chain = FailoverChainClient.from_urls(
            config.rpc_urls, network=name, expected_chain_id=config.chain_id
        )
        chains.append(chain)
        entries[name] = NetworkEntry(
            network=config.to_domain(name, hot_wallets=(signer.address,)),
            chain=chain,
            signers=(signer,),
        )
    registry = NetworkRegistry(entries)
    cache = RedisBalanceCache(settings.redis_url) if settings.redis_url else None
    uow = SqlUnitOfWorkFactory(engine, queue, Outbox(engine, queue, clock), cache)
    return Container(
        settings=settings,
        engine=engine,
        queue=queue,
        registry=registry,
        uow=uow,
        clock=clock,
        withdrawals=WithdrawalService(registry, clock),
        ledger=LedgerService(registry, clock, cache),
        api_keys=ApiKeyService(clock),
        handlers=stage_handlers(uow, registry, clock),
        cache=cache,
        _closables=chains,
    )
