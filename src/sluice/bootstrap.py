"""The composition root: settings → adapters → services. Nothing else constructs adapters."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.cache.redis_balances import RedisBalanceCache
from sluice.cache.request_guards import MemoryRequestGuard, RedisRequestGuard
from sluice.chains.evm import EvmChainClient
from sluice.chains.failover import FailoverChainClient
from sluice.clock import SystemClock
from sluice.config import Settings
from sluice.db.engine import create_engine, migrate, ping
from sluice.db.outbox import Outbox
from sluice.db.status import describe, ensure_ready
from sluice.db.unit_of_work import SqlUnitOfWorkFactory
from sluice.domain.addresses import Address
from sluice.domain.assets import Network
from sluice.domain.audit import Actor
from sluice.domain.webhooks import Schedule
from sluice.errors import ConfigurationError, PolicyError
from sluice.ports import (
    BalanceCache,
    ChainClient,
    Clock,
    Queue,
    RequestGuard,
    Signer,
    UnitOfWorkFactory,
    WebhookSender,
)
from sluice.queue.lanes import DEFAULT_POLL_S, Lane, LaneQueue, lane_url
from sluice.queue.memory import MemoryQueue
from sluice.queue.redis_streams import RedisStreamsQueue
from sluice.queue.sqs import SqsQueue
from sluice.services import jobs
from sluice.services.api_keys import ApiKeyService
from sluice.services.approvals import ApprovalService
from sluice.services.broadcast import BroadcastService
from sluice.services.cancellation import CancellationService
from sluice.services.config_check import ConfigChecker, HotWalletFinder, KeyLoaders, Probe, redacted
from sluice.services.confirmation import ConfirmationService
from sluice.services.fee_markets import FeeMarkets
from sluice.services.hot_wallets import HotWalletService
from sluice.services.ledger import LedgerService
from sluice.services.network_health import NetworkHealth, verify_network
from sluice.services.networks import NetworkService
from sluice.services.nonces import NonceReconciliation, WalletNonces
from sluice.services.operators import OperatorService
from sluice.services.pauses import PauseService
from sluice.services.policy import Loaded, PolicyService
from sluice.services.readiness import ReadinessService
from sluice.services.recovery import recover, sweep
from sluice.services.registry import NetworkEntry, NetworkRegistry
from sluice.services.signing import SigningService
from sluice.services.validation import ValidationService
from sluice.services.webhooks import WebhookDelivery, WebhookPolicy, WebhookService
from sluice.services.withdrawals import WithdrawalService
from sluice.signers.keystore import KeystoreSigner, keystore_address
from sluice.signers.kms import KmsSigner
from sluice.signers.loading import draining_wallets, load_signers
from sluice.signers.remote import RemoteSigner, SignerClient
from sluice.signers.secrets_manager import SecretsManagerSigner
from sluice.webhook_sender import HttpWebhookSender
from sluice.worker.bulkheads import Bulkheads, share_of
from sluice.worker.handlers import StageHandlers
from sluice.worker.runner import Worker
from sluice.worker.webhooks import WebhookWorker

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Services:
    """The services and stage handlers over one set of adapters (see `build_services`)."""

    withdrawals: WithdrawalService
    cancellation: CancellationService
    ledger: LedgerService
    api_keys: ApiKeyService
    operators: OperatorService
    policy: PolicyService
    approvals: ApprovalService
    hot_wallets: HotWalletService
    nonces: NonceReconciliation
    handlers: StageHandlers
    fees: FeeMarkets
    webhooks: WebhookService
    webhook_delivery: WebhookDelivery
    pauses: PauseService


def build_services(
    uow: UnitOfWorkFactory,
    registry: NetworkRegistry,
    clock: Clock,
    *,
    cache: BalanceCache | None = None,
    fee_cache: bool = False,
    health: NetworkHealth | None = None,
    worker_concurrency: int = 8,
    webhook_sender: WebhookSender | None = None,
    webhook_policy: WebhookPolicy | None = None,
) -> Services:
    """Every service and the worker's stage handlers, over a unit-of-work factory, the served
    networks (their chain clients and signers) and a clock.

    The one wiring of the engine: `build` calls it with the adapters the settings name, the
    service-level tests (`sluice.testing.pipeline.wire`) with a fake chain and clock.
    ``fee_cache``: read each fee market at most about once a block (`FeeMarkets`); off, every
    pricing asks the node (tests that move the market between two steps). ``health``: each
    network's state, which gates the worker's chain work per network (`Bulkheads`, each
    network a share of ``worker_concurrency`` consumers); None: ungated. ``webhook_sender``:
    how webhooks are sent (default: over HTTP), ``webhook_policy`` how (default: the spec's
    schedule, public destinations only).
    """
    policy = PolicyService(registry, clock)
    withdrawals = WithdrawalService(registry, clock, policy)
    api_keys = ApiKeyService(clock)
    sender = webhook_sender or HttpWebhookSender()
    hooks = webhook_policy or WebhookPolicy()
    fees = FeeMarkets(registry, cache=fee_cache)
    confirmation = ConfirmationService(registry, clock, fees)
    pauses = PauseService(registry, clock)
    return Services(
        withdrawals=withdrawals,
        cancellation=CancellationService(withdrawals, registry, clock),
        ledger=LedgerService(registry, clock, cache),
        api_keys=api_keys,
        operators=OperatorService(api_keys, clock),
        policy=policy,
        approvals=ApprovalService(registry, clock, policy),
        hot_wallets=HotWalletService(uow, registry, health),
        nonces=NonceReconciliation(uow, registry, confirmation.fill_gap),
        handlers=StageHandlers(
            uow,
            validation=ValidationService(registry, clock, policy=policy),
            signing=SigningService(registry, clock, fees, pauses),
            broadcast=BroadcastService(registry, clock),
            confirmation=confirmation,
            # Without a monitor (service-level tests drive the handlers themselves): ungated.
            bulkheads=Bulkheads(
                health,
                limit=None
                if health is None
                else share_of(worker_concurrency, len(registry.names())),
            ),
        ),
        fees=fees,
        pauses=pauses,
        webhooks=WebhookService(clock, sender, hooks),
        webhook_delivery=WebhookDelivery(clock, sender, registry, hooks),
    )


def webhook_policy(settings: Settings) -> WebhookPolicy:
    """How webhooks are delivered, from ``SLUICE_WEBHOOK_*``."""
    return WebhookPolicy(
        allow_private=settings.webhook_allow_private,
        schedule=Schedule(scale=settings.webhook_retry_scale),
        timeout_s=settings.webhook_timeout_s,
        secret_overlap=timedelta(seconds=settings.webhook_secret_overlap_s),
        disable_after=timedelta(seconds=settings.webhook_disable_after_s),
        lease=timedelta(seconds=settings.webhook_lease_s),
    )


@dataclass
class Container:
    """Every long-lived object of one Sluice process."""

    settings: Settings
    engine: AsyncEngine
    queue: Queue
    registry: NetworkRegistry
    uow: SqlUnitOfWorkFactory
    clock: Clock
    services: Services
    readiness: ReadinessService
    health: NetworkHealth
    networks: NetworkService
    """The networks as `GET /v1/networks` shows them."""
    cache: RedisBalanceCache | None = None
    request_guard: RequestGuard = field(default_factory=MemoryRequestGuard)
    signer_client: SignerClient | None = None
    webhook_sender: HttpWebhookSender | None = None
    _closables: list[ChainClient] = field(default_factory=list)

    @property
    def withdrawals(self) -> WithdrawalService:
        """Requesting, reading and cancelling withdrawals."""
        return self.services.withdrawals

    @property
    def cancellation(self) -> CancellationService:
        """An operator's cancel, at any point before mining."""
        return self.services.cancellation

    @property
    def ledger(self) -> LedgerService:
        """Credits and balances."""
        return self.services.ledger

    @property
    def api_keys(self) -> ApiKeyService:
        """API keys."""
        return self.services.api_keys

    @property
    def operators(self) -> OperatorService:
        """Operators and their keys."""
        return self.services.operators

    async def load_policy(self, actor: Actor) -> Loaded | None:
        """Load ``SLUICE_POLICY_FILE`` (None when none is set).

        Raises:
            ConfigurationError: The file cannot be read.
            PolicyError: It cannot be loaded (the version in force stays).
        """
        path = self.settings.policy_file
        if path is None:
            return None
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the policy file {path}: {exc}") from None
        try:
            async with self.uow() as uow:
                loaded = await self.policy.load(uow, raw, source=str(path), actor=actor)
                await uow.commit()
        except PolicyError as exc:
            raise PolicyError(f"policy file {path}: {exc.detail}", field=exc.field) from None
        if loaded.changed:
            log.info("policy loaded", label=loaded.policy.label, version=loaded.policy.version)
        return loaded

    @property
    def policy(self) -> PolicyService:
        """The policy in force, its loading and its decisions."""
        return self.services.policy

    @property
    def approvals(self) -> ApprovalService:
        """Withdrawals waiting for approval."""
        return self.services.approvals

    @property
    def pauses(self) -> PauseService:
        """Network pauses, freezes and the circuit breaker."""
        return self.services.pauses

    @property
    def hot_wallets(self) -> HotWalletService:
        """The hot wallets as an operator sees them."""
        return self.services.hot_wallets

    @property
    def handlers(self) -> StageHandlers:
        """The worker's stage handlers."""
        return self.services.handlers

    @property
    def webhooks(self) -> WebhookService:
        """Webhook endpoints and their delivery logs."""
        return self.services.webhooks

    def webhook_worker(self) -> WebhookWorker:
        """The loop that fans webhook events out and delivers them (`sluice.runtime.run` runs
        it in every process with workers)."""
        s = self.settings
        return WebhookWorker(
            self.uow,
            self.services.webhook_delivery,
            poll_s=s.webhook_poll_s,
            concurrency=s.webhook_concurrency,
        )

    def worker(self) -> Worker:
        """A worker over this container's queue and stage handlers. Its chain work on a
        network waits until the health monitor opened it (`check_networks`, then
        `health.run`; `sluice.runtime.run` does both)."""
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
        async with self.uow() as uow:
            counts["approval_expired"] = await self.approvals.expire(uow)
            await uow.commit()
        if any(counts.values()):
            log.warning("re-created lost jobs", **counts)
        return counts

    def _poll_interval(self, network: str) -> float:
        return self.registry.get(network).network.poll_interval_s

    async def check_networks(self, *, workers: bool) -> None:
        """The first health round of every network, at start: verify each against its chain,
        and (``workers``) reconcile its hot wallets' nonces before its work starts. A network
        whose node is down does not stop the start: it opens once it answers.

        Raises:
            ConfigurationError: A network's node serves another chain, a token's on-chain
                decimals differ from the configuration, or a batch contract does not verify
                (every such mistake, one per network and line).
        """
        if workers:
            self.health.set_on_up(self.services.nonces.reconcile_network)
        states = await self.health.check_all()
        problems = self.health.misconfigured()
        if problems:
            raise ConfigurationError("\n".join(problems))
        down = {n: s.detail for n, s in states.items() if not s.open}
        if down:
            log.warning("starting with networks down: they open when their nodes answer", **down)

    async def reconcile_nonces(self) -> list[WalletNonces]:
        """Bring each hot wallet's nonce counter up to the chain, and fill gaps below it
        (`NonceReconciliation`)."""
        return await self.services.nonces.run()

    async def close(self) -> None:
        """Release every connection."""
        await self.queue.close()
        if self.cache is not None:
            await self.cache.close()
        if isinstance(self.request_guard, RedisRequestGuard):
            await self.request_guard.close()
        for entry in self.registry:
            for signer in entry.signers:
                await signer.close()
        if self.signer_client is not None:
            await self.signer_client.close()
        if self.webhook_sender is not None:
            await self.webhook_sender.close()
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
    configs = settings.networks()
    for name, config in configs.items():
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
    urls = {name: config.rpc_urls for name, config in configs.items()}
    providers = {name: len(config.rpc_urls) for name, config in configs.items()}

    async def verify(network: Network) -> None:
        await verify_network(network, urls[network.name], EvmChainClient)

    health = NetworkHealth(registry, verify=verify)
    cache = RedisBalanceCache(settings.redis_url) if settings.redis_url else None
    uow = SqlUnitOfWorkFactory(engine, queue, Outbox(engine, queue, clock), cache)
    sender = HttpWebhookSender()
    services = build_services(
        uow,
        registry,
        clock,
        cache=cache,
        fee_cache=True,
        health=health,
        worker_concurrency=settings.worker_concurrency,
        webhook_sender=sender,
        webhook_policy=webhook_policy(settings),
    )
    return Container(
        settings=settings,
        engine=engine,
        queue=queue,
        registry=registry,
        uow=uow,
        clock=clock,
        services=services,
        readiness=ReadinessService(
            database=lambda: ping(engine),
            queue=queue,
            registry=registry,
            cache=cache,
            health=health,
        ),
        health=health,
        networks=NetworkService(registry, services.fees, health, providers=providers),
        cache=cache,
        request_guard=(
            RedisRequestGuard(settings.redis_url) if settings.redis_url else MemoryRequestGuard()
        ),
        signer_client=remote,
        webhook_sender=sender,
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
    wallets = HotWalletFinder(
        KeyLoaders(
            from_secret=SecretsManagerSigner.from_secret,
            from_kms_key=KmsSigner.from_key_id,
            from_keystore=KeystoreSigner.from_file,
            keystore_address=keystore_address,
        ),
        passphrase=settings.keystore_passphrase,
        held=None if remote is None else remote.wallets,
        dev_passphrase_file=lambda: _dev_passphrase_file(settings),
    )
    return ConfigChecker(probe=EvmChainClient, wallets=wallets, services=services)


def _dev_passphrase_file(settings: Settings) -> Path | None:
    """The passphrase file `sluice dev` wrote in the data directory, if there is one."""
    from sluice.devnet.setup import passphrase_file  # noqa: PLC0415 - dev only: web3 and more

    path = passphrase_file(settings.data_dir)
    return path if path.is_file() else None
