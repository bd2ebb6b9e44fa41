"""The composition root: settings → adapters → services. Nothing else constructs adapters."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.cache.redis_balances import RedisBalanceCache
from sluice.cache.request_guards import MemoryRequestGuard, RedisRequestGuard
from sluice.chains.evm import EvmChainClient
from sluice.chains.failover import FailoverChainClient
from sluice.clock import SystemClock
from sluice.config import NetworkConfig, Settings
from sluice.db.engine import create_engine, migrate
from sluice.db.outbox import Outbox
from sluice.db.status import describe, ensure_ready
from sluice.db.unit_of_work import SqlUnitOfWorkFactory
from sluice.domain.addresses import Address
from sluice.errors import ConfigurationError, SluiceError
from sluice.ports import ChainClient, Clock, Queue, RequestGuard, Signer
from sluice.queue.lanes import DEFAULT_POLL_S, Lane, LaneQueue, lane_url
from sluice.queue.memory import MemoryQueue
from sluice.queue.redis_streams import RedisStreamsQueue
from sluice.queue.sqs import SqsQueue
from sluice.services import jobs
from sluice.services.api_keys import ApiKeyService
from sluice.services.broadcast import BroadcastService
from sluice.services.cancellation import CancellationService
from sluice.services.config_check import ConfigChecker, Probe, Wallet, redacted
from sluice.services.confirmation import ConfirmationService
from sluice.services.ledger import LedgerService
from sluice.services.recovery import recover, sweep
from sluice.services.registry import NetworkEntry, NetworkRegistry
from sluice.services.signing import SigningService
from sluice.services.validation import ValidationService
from sluice.services.withdrawals import WithdrawalService
from sluice.signers.keystore import KeystoreSigner, keystore_address
from sluice.signers.kms import KmsSigner
from sluice.signers.remote import RemoteSigner, SignerClient
from sluice.signers.secrets_manager import SecretsManagerSigner
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
    cancellation: CancellationService
    ledger: LedgerService
    api_keys: ApiKeyService
    handlers: StageHandlers
    cache: RedisBalanceCache | None = None
    request_guard: RequestGuard = field(default_factory=MemoryRequestGuard)
    signer_client: SignerClient | None = None
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
            counts = await recover(uow, now=self.clock.now(), poll_s=self._poll_interval)
            await uow.commit()
        log.info("recovered work from the database", **counts)
        return counts

    async def sweep(self) -> dict[str, int]:
        """Enqueue again the work whose job was lost while running (`recovery.sweep`)."""
        async with self.uow() as uow:
            counts = await sweep(
                uow,
                now=self.clock.now(),
                poll_s=self._poll_interval,
                stale_s=self.settings.stale_after_s,
            )
            await uow.commit()
        if any(counts.values()):
            log.warning("re-created lost jobs", **counts)
        return counts

    def _poll_interval(self, network: str) -> float:
        return self.registry.get(network).network.poll_interval_s

    async def reconcile_nonces(self) -> None:
        """Bring each hot wallet's nonce counter up to the chain, and fill gaps below it.

        The counter becomes at least the chain's pending count (nonces the node knows of, ours
        or not). A nonce between that and the counter which no stored transaction holds (a lost
        database row, say) would stall every later one: it gets a no-op filler. (A gap that
        opens later, when a pooled transaction not of ours is dropped, is found by confirmation
        tracking: see `ConfirmationService`.)
        """
        for entry in self.registry:
            for signer in entry.signers:
                network, address = entry.network.name, signer.address
                pending = await entry.chain.transaction_count(address, pending=True)
                mined = await entry.chain.transaction_count(address)
                async with self.uow() as uow:
                    next_nonce = await uow.transactions.reconcile_nonce(network, address, pending)
                    held = await uow.transactions.nonces_from(network, address, mined)
                    await uow.commit()
                # Below `pending` the node's pool holds something at every nonce (ours, which
                # tracking follows, or someone else's, which must not be replaced from here).
                gaps = [n for n in range(max(mined, pending), next_nonce) if n not in held]
                if gaps:
                    market = await entry.chain.fees()
                    async with self.uow() as uow:
                        for nonce in gaps:
                            await self.handlers.confirmation.fill_gap(
                                uow, network, address, nonce, market, why="found at start-up"
                            )
                        await uow.commit()
                log.info(
                    "nonce counter reconciled",
                    network=network,
                    hot_wallet=address,
                    chain_mined=mined,
                    chain_pending=pending,
                    next_nonce=next_nonce,
                    gaps_filled=len(gaps),
                )

    async def close(self) -> None:
        """Release every connection."""
        await self.queue.close()
        if self.cache is not None:
            await self.cache.close()
        if isinstance(self.request_guard, RedisRequestGuard):
            await self.request_guard.close()
        if self.signer_client is not None:
            self.signer_client.close()
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


def remote_signer_client(settings: Settings) -> SignerClient | None:
    """A client of `sluice signer` when ``SLUICE_SIGNER_URL`` is set, else None."""
    if not settings.signer_url:
        return None
    if settings.signer_token is None:
        raise ConfigurationError("SLUICE_SIGNER_TOKEN is needed with SLUICE_SIGNER_URL")
    return SignerClient(settings.signer_url, settings.signer_token.get_secret_value())


def load_signers(config: NetworkConfig, settings: Settings) -> tuple[Signer, ...]:
    """The hot wallet signers of a network: the main one first, then ``more_hot_wallet_keystores``.

    The main one is a `KeystoreSigner` (``hot_wallet_keystore``), a `SecretsManagerSigner`
    (``hot_wallet_secret_id``) or a `KmsSigner` (``hot_wallet_kms_key_id``); the AWS ones read
    region, endpoint and credentials from the standard AWS environment.
    """
    signers: list[Signer] = []
    if config.hot_wallet_secret_id is not None:
        signers.append(SecretsManagerSigner.from_secret(config.hot_wallet_secret_id))
    elif config.hot_wallet_kms_key_id is not None:
        signers.append(KmsSigner.from_key_id(config.hot_wallet_kms_key_id))
    if config.keystores:
        if settings.keystore_passphrase is None:
            raise ConfigurationError("SLUICE_KEYSTORE_PASSPHRASE is not set")
        passphrase = settings.keystore_passphrase.get_secret_value()
        signers.extend(KeystoreSigner.from_file(path, passphrase) for path in config.keystores)
    if len({s.address for s in signers}) != len(signers):
        raise ConfigurationError("a hot wallet is configured twice (two entries, one address)")
    return tuple(signers)


def draining_wallets(signers: tuple[Signer, ...], config: NetworkConfig) -> frozenset[Address]:
    """Addresses of the wallets listed in ``draining_hot_wallet_keystores`` (loaded last)."""
    count = len(config.draining_hot_wallet_keystores)
    draining = (
        frozenset(s.address for s in signers[len(signers) - count :]) if count else frozenset()
    )
    if len(draining) == len(signers):
        raise ConfigurationError("every hot wallet is draining: withdrawals could not be paid")
    return draining


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
    remote = remote_signer_client(settings)
    remote_wallets = remote.wallets() if remote is not None else []
    entries: dict[str, NetworkEntry] = {}
    chains: list[ChainClient] = []
    for name, config in settings.networks().items():
        signers: tuple[Signer, ...]
        if remote is not None:  # the keys are in `sluice signer`; this process holds none
            held = [w for w in remote_wallets if w.network == name]
            signers = tuple(RemoteSigner(remote, name, Address(w.address)) for w in held)
            draining = frozenset(Address(w.address) for w in held if w.draining)
            if not signers:
                raise ConfigurationError(f"sluice signer holds no hot wallet for {name}")
        else:
            signers = load_signers(config, settings)
            draining = draining_wallets(signers, config)
        # Every configured RPC URL, in order: a failing or lagging one is skipped for a while.
        chain = FailoverChainClient.from_urls(
            config.rpc_urls, network=name, expected_chain_id=config.chain_id
        )
        chains.append(chain)
        entries[name] = NetworkEntry(
            network=config.to_domain(name, hot_wallets=tuple(s.address for s in signers)),
            chain=chain,
            signers=signers,
            draining=draining,
        )
    registry = NetworkRegistry(entries)
    cache = RedisBalanceCache(settings.redis_url) if settings.redis_url else None
    uow = SqlUnitOfWorkFactory(engine, queue, Outbox(engine, queue, clock), cache)
    withdrawals = WithdrawalService(registry, clock)
    return Container(
        settings=settings,
        engine=engine,
        queue=queue,
        registry=registry,
        uow=uow,
        clock=clock,
        withdrawals=withdrawals,
        cancellation=CancellationService(withdrawals, clock),
        ledger=LedgerService(registry, clock, cache),
        api_keys=ApiKeyService(clock),
        handlers=stage_handlers(uow, registry, clock),
        cache=cache,
        request_guard=(
            RedisRequestGuard(settings.redis_url) if settings.redis_url else MemoryRequestGuard()
        ),
        signer_client=remote,
        _closables=chains,
    )


# ── sluice config check ──────────────────────────────────────────────────────────────────────


def config_checker(settings: Settings) -> ConfigChecker:
    """`sluice config check` over these settings: each RPC URL on its own client, the hot
    wallets as `build` would load them (one row each), and the database, queue and signer."""
    remote = remote_signer_client(settings)

    async def database() -> str:
        return f"migrated (schema at {await ensure_ready(settings.database_url)}, the head)"

    async def queue() -> str:
        checked = make_queue(settings.queue_url)
        try:
            await checked.ping()
        finally:
            await checked.close()
        return "answers"

    async def signer() -> str:
        if remote is None:  # pragma: no cover - only listed with a signer URL
            return "not configured"
        held = await asyncio.to_thread(remote.wallets)
        return f"holds {len(held)} hot wallet(s)"

    services = [Probe("database", describe(settings.database_url), database)]
    if not settings.queue_url.startswith("memory:"):
        services.append(Probe("queue", redacted(settings.queue_url), queue))
    if remote is not None and settings.signer_url:
        services.append(Probe("signer", settings.signer_url, signer))
    return ConfigChecker(
        probe=EvmChainClient,
        wallets=lambda name, config: _check_wallets(name, config, settings, remote),
        services=services,
    )


async def _check_wallets(
    name: str, config: NetworkConfig, settings: Settings, remote: SignerClient | None
) -> list[Wallet]:
    """Every hot wallet of a network, loaded as `build` would (a failure is the wallet's problem,
    not an exception). With ``SLUICE_SIGNER_URL`` the keys are in `sluice signer`: its list."""
    if remote is not None:
        try:
            held = [w for w in await asyncio.to_thread(remote.wallets) if w.network == name]
        except SluiceError as exc:
            return [Wallet("sluice signer", None, exc.detail)]
        if not held:
            return [Wallet("sluice signer", None, f"holds no hot wallet for {name}")]
        return [Wallet("sluice signer", Address(w.address), draining=w.draining) for w in held]
    wallets: list[Wallet] = []
    if config.hot_wallet_secret_id is not None:
        source = f"Secrets Manager secret {config.hot_wallet_secret_id}"
        wallets.append(
            await _loaded(source, SecretsManagerSigner.from_secret, config.hot_wallet_secret_id)
        )
    elif config.hot_wallet_kms_key_id is not None:
        source = f"KMS key {config.hot_wallet_kms_key_id}"
        wallets.append(await _loaded(source, KmsSigner.from_key_id, config.hot_wallet_kms_key_id))
    draining = set(config.draining_hot_wallet_keystores)
    passphrase = settings.keystore_passphrase
    for path in config.keystores:
        source = f"keystore {path.resolve()}"
        try:
            address = keystore_address(path)
        except ConfigurationError as exc:
            wallets.append(Wallet(source, None, exc.detail, draining=path in draining))
            continue
        problem = None
        if passphrase is None:
            problem = "SLUICE_KEYSTORE_PASSPHRASE is not set: the key cannot be decrypted"
            problem += _dev_passphrase_hint(settings)
        else:
            try:
                signer = await asyncio.to_thread(
                    KeystoreSigner.from_file, path, passphrase.get_secret_value()
                )
            except ConfigurationError as exc:
                problem = exc.detail
            else:
                address = signer.address
                source = f"{source}, decrypts with SLUICE_KEYSTORE_PASSPHRASE"
        wallets.append(Wallet(source, address, problem, draining=path in draining))
    return wallets


def _dev_passphrase_hint(settings: Settings) -> str:
    """How to use the passphrase `sluice dev` generated, if the data directory holds one (never
    read here: which passphrase to use is the operator's choice)."""
    from sluice.devnet.setup import passphrase_file  # noqa: PLC0415 - dev only: web3 and more

    path = passphrase_file(settings.data_dir).resolve()
    if not path.is_file():
        return ""
    return (
        f"; sluice dev keeps its passphrase in {path}:"
        f' export SLUICE_KEYSTORE_PASSPHRASE="$(cat {shlex.quote(str(path))})"'
    )


async def _loaded(source: str, load: Callable[[str], Signer], key: str) -> Wallet:
    """A wallet whose signer is made from a key id (AWS: a blocking call, in a thread)."""
    try:
        signer = await asyncio.to_thread(load, key)
    except ConfigurationError as exc:
        return Wallet(source, None, exc.detail)
    return Wallet(source, signer.address)
