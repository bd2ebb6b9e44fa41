"""Each network's health, followed in the background, so one chain's outage stays its own.

A network is **starting** until it was verified: every RPC URL that answers serves the
configured chain id, every configured token's on-chain ``decimals()`` is the configured one
(a wrong one pays the wrong amount by orders of magnitude), and, with batching on, every
configured batch contract is a BatchPayout owned by its hot wallet
(`sluice.chains.batch_contract.verify_batch_contract`). Then it is **up** while its node
answers and **down** while none does; a verified network found serving another chain, tokens of
other decimals or a batch contract that does not verify, is **misconfigured** and stays closed
until the configuration is fixed and the process restarted. Before a network opens (at start,
and again after each outage), the ``on_up`` callback runs (the worker reconciles its hot
wallets' nonces there); it opens only once that succeeded.

A probe round asks every network at once, each bounded by a timeout, so a node that hangs costs
its own network a few seconds and nobody else anything. Workers ask `is_open` before any chain
work (`sluice.worker.bulkheads`), and report a failing node at once (`failed`), so a network
that went down stops taking consumers' time before the next round notices.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from sluice.chains.batch_contract import verify_batch_contract
from sluice.domain.addresses import Address
from sluice.domain.assets import Network
from sluice.errors import SluiceError
from sluice.services.registry import NetworkEntry, NetworkRegistry

__all__ = [
    "MisconfiguredError",
    "NetworkHealth",
    "NetworkState",
    "NetworkStatus",
    "UnreachableError",
    "Verifier",
    "describe_failure",
    "verify_network",
]

log = structlog.get_logger(__name__)

#: Seconds one probe of one network may take.
PROBE_TIMEOUT_S = 5.0
#: The longest a closed network's work waits between two looks, in seconds.
MAX_RETRY_AFTER_S = 10.0
#: Seconds the work before a network opens (nonce reconciliation) may take.
ON_UP_TIMEOUT_S = 60.0
#: Seconds between probe rounds (a down network is looked at this often, too).
PROBE_INTERVAL_S = 2.0
#: Seconds one RPC URL may take to tell its chain id during verification: a URL that hangs
#: counts as one that did not answer, within the probe's own timeout.
URL_TIMEOUT_S = PROBE_TIMEOUT_S / 2


class NetworkStatus(enum.StrEnum):
    """Where a network is, as workers and `/ready` see it."""

    STARTING = "starting"
    UP = "up"
    DOWN = "down"
    MISCONFIGURED = "misconfigured"


@dataclass(slots=True)
class NetworkState:
    """What the last probe of one network found."""

    status: NetworkStatus = NetworkStatus.STARTING
    detail: str = "not checked yet"
    head: int | None = None
    """The latest block its node reported."""
    since: float = 0.0
    """Monotonic time of the last change of status."""
    checked: float | None = None
    """Monotonic time of the last probe."""
    verified: bool = False

    @property
    def open(self) -> bool:
        """Whether work on it may go ahead."""
        return self.status is NetworkStatus.UP


class EndpointProbe(Protocol):
    """What verification asks one RPC URL (`sluice.chains.evm.EvmChainClient` answers it)."""

    async def chain_id(self) -> int:
        """The chain id the node reports."""
        ...

    async def token_decimals(self, token: Address) -> int:
        """An ERC-20 token's ``decimals()``."""
        ...

    async def code(self, address: Address) -> bytes:
        """The contract code at an address (empty for an account)."""
        ...

    async def call(self, to: Address, data: bytes) -> bytes:
        """What a read-only call returns."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class MisconfiguredError(SluiceError):
    """A network's node or tokens contradict the configuration."""

    code = "network_misconfigured"


class UnreachableError(SluiceError):
    """No RPC URL of a network answered."""

    code = "network_unreachable"


#: Checks one network against its chain; raises `MisconfiguredError` or `UnreachableError`.
Verifier = Callable[[Network], Awaitable[None]]


async def verify_network(
    network: Network, urls: Sequence[str], probe: Callable[[str], EndpointProbe]
) -> None:
    """Check every RPC URL's chain id (all at once, each within `URL_TIMEOUT_S`), then every
    token's ``decimals()`` and (batching on) every batch contract on one that serves the
    configured chain.

    Raises:
        MisconfiguredError: An answering URL serves another chain id, a token's decimals differ,
            or a batch contract has no code, other code than BatchPayout's, or another owner.
        UnreachableError: No URL answered.
        Exception: The node failed while a batch contract was read (and nothing else was
            wrong): an outage, not a verdict; the next probe verifies again.
    """
    problems: list[str] = []
    opened: list[EndpointProbe] = []
    try:
        for url in urls:
            opened.append(probe(url))
        chain_ids = await asyncio.gather(
            *(_chain_id(network, n, c) for n, c in enumerate(opened, start=1))
        )
        problems.extend(
            f"RPC URL #{number} serves chain id {chain_id}, the configuration says "
            f"{network.chain_id}"
            for number, chain_id in enumerate(chain_ids, start=1)
            if chain_id is not None and chain_id != network.chain_id
        )
        answering = next(
            (c for c, i in zip(opened, chain_ids, strict=True) if i == network.chain_id), None
        )
        if answering is None and not problems:
            raise UnreachableError(f"no RPC URL of {network.name} answered")
        if answering is not None:
            for token in network.tokens:
                assert token.token_address is not None  # noqa: S101 - tokens have addresses
                try:
                    decimals = await answering.token_decimals(token.token_address)
                except Exception as exc:
                    problems.append(
                        f"token {token.symbol} {token.token_address}: decimals() failed "
                        f"({describe_failure(exc)}); is it a token on chain {network.chain_id}?"
                    )
                    continue
                if decimals != token.decimals:
                    problems.append(
                        f"token {token.symbol} {token.token_address} has {decimals} decimals "
                        f"on chain, the configuration says {token.decimals}"
                    )
            unread = await _check_batch_contracts(network, answering, problems)
        else:
            unread = None
        if problems:
            raise MisconfiguredError(f"network {network.name}: " + "; ".join(problems))
        if unread is not None:
            raise unread
    finally:
        for client in opened:
            await client.close()


async def _check_batch_contracts(
    network: Network, client: EndpointProbe, problems: list[str]
) -> Exception | None:
    """Add to ``problems`` each batch contract that does not verify (none unless batching is
    on: otherwise they play no part).

    Returns:
        The first failure of the node while reading one (an outage, not a mistake), or None.
    """
    if not network.batching.enabled:
        return None
    failure: Exception | None = None
    for wallet, contract in network.batching.contracts:
        try:
            reason = await verify_batch_contract(client, contract, wallet)
        except Exception as exc:  # unreachable or malformed: verified again at the next probe
            failure = failure or exc
            continue
        if reason is not None:
            problems.append(reason)
    return failure


async def _chain_id(network: Network, number: int, client: EndpointProbe) -> int | None:
    """The chain id RPC URL #``number`` reports, or None when it does not answer in time."""
    try:
        async with asyncio.timeout(URL_TIMEOUT_S):
            return await client.chain_id()
    except Exception as exc:  # unreachable, hanging or malformed: an outage, not a mistake
        # Debug: a network that stays down would log this every round; its fall is logged once.
        log.debug(
            "rpc url did not answer",
            network=network.name,
            url_number=number,
            error=describe_failure(exc),
        )
        return None


def describe_failure(exc: BaseException) -> str:
    """A failure in a few words, safe to show (no URL)."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, SluiceError):
        return exc.detail
    return type(exc).__name__


class NetworkHealth:
    """The health of every served network, probed in rounds (see the module)."""

    def __init__(
        self,
        registry: NetworkRegistry,
        *,
        verify: Verifier,
        on_up: Callable[[NetworkEntry], Awaitable[object]] | None = None,
        timeout_s: float = PROBE_TIMEOUT_S,
        interval_s: float = PROBE_INTERVAL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry
        self._verify = verify
        self._on_up = on_up
        self._timeout_s = timeout_s
        self._interval_s = interval_s
        self._now = monotonic
        self._states = {name: NetworkState(since=monotonic()) for name in registry.names()}
        self._rounds = 0

    def set_on_up(self, on_up: Callable[[NetworkEntry], Awaitable[object]] | None) -> None:
        """What runs before a network opens (the worker's nonce reconciliation)."""
        self._on_up = on_up

    # ── Reads ─────────────────────────────────────────────────────────────────────────────────

    def state(self, network: str) -> NetworkState:
        """The network's state (a network not served here is never open)."""
        return self._states.get(network) or NetworkState(
            status=NetworkStatus.MISCONFIGURED, detail="not served here"
        )

    def states(self) -> dict[str, NetworkState]:
        """Every network's state, by name."""
        return dict(self._states)

    def is_open(self, network: str) -> bool:
        """Whether work on the network may go ahead now."""
        return self.state(network).open

    def retry_after(self, network: str) -> float:
        """How long work on a closed network waits before it looks again: one probe interval
        at first, then a quarter of how long the network has been closed, at most
        `MAX_RETRY_AFTER_S`. A long outage's backlog is then looked at every few seconds, not
        every interval (each look is a database read and a queue round trip, taken from the
        networks that work), and the backlog moves within that long after the node is back.
        """
        state = self._states.get(network)
        if state is None or state.open:
            return self._interval_s
        closed_for = self._now() - state.since
        return min(MAX_RETRY_AFTER_S, max(self._interval_s, closed_for / 4))

    # ── Changes ───────────────────────────────────────────────────────────────────────────────

    def failed(self, network: str, exc: BaseException) -> float:
        """A worker found the network's node unavailable: close it until a probe answers.

        Returns:
            How long the work should wait before it is tried again.
        """
        state = self._states.get(network)
        if state is not None and state.status is NetworkStatus.UP:
            self._set(network, state, NetworkStatus.DOWN, describe_failure(exc))
        return self.retry_after(network)

    async def check_all(self) -> dict[str, NetworkState]:
        """One probe round: every network at once, each within the timeout."""
        await asyncio.gather(*(self._check(entry) for entry in self._registry))
        self._rounds += 1
        return self.states()

    async def run(self) -> None:
        """Probe every network until cancelled, each in a loop of its own (a network whose
        probe or reconciliation is slow delays nobody else's), the first probe after one
        interval (the caller ran a round at start, see `check_all`)."""
        await asyncio.gather(*(self._follow(entry) for entry in self._registry))

    async def _follow(self, entry: NetworkEntry) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self._check(entry)
            except Exception:  # never let the monitor die; the next probe tries again
                log.exception("network health probe failed", network=entry.network.name)

    def misconfigured(self) -> list[str]:
        """Why each misconfigured network is, one line each."""
        return [
            state.detail
            for state in self._states.values()
            if state.status is NetworkStatus.MISCONFIGURED
        ]

    async def _check(self, entry: NetworkEntry) -> None:
        name = entry.network.name
        state = self._states[name]
        if state.status is NetworkStatus.MISCONFIGURED:
            return
        try:
            async with asyncio.timeout(self._timeout_s):
                if not state.verified:
                    await self._verify(entry.network)
                    state.verified = True
                head = await entry.chain.block_number()
            if state.status is not NetworkStatus.UP and self._on_up is not None:
                async with asyncio.timeout(ON_UP_TIMEOUT_S):
                    await self._on_up(entry)
        except MisconfiguredError as exc:
            log.error("network misconfigured: it stays closed", network=name, detail=exc.detail)
            self._set(name, state, NetworkStatus.MISCONFIGURED, exc.detail)
            return
        except Exception as exc:  # unreachable, timed out, reconciliation failed: down
            state.checked = self._now()
            self._set(name, state, NetworkStatus.DOWN, describe_failure(exc))
            return
        state.checked = self._now()
        state.head = head
        self._set(name, state, NetworkStatus.UP, "ok")

    def _set(self, name: str, state: NetworkState, status: NetworkStatus, detail: str) -> None:
        state.detail = detail
        if state.status is status:
            return
        previous, state.status, state.since = state.status, status, self._now()
        if status is NetworkStatus.UP:
            log.info("network is up", network=name, was=previous.value)
        elif status is NetworkStatus.DOWN:
            log.warning(
                "network is down: its work waits", network=name, detail=detail, was=previous.value
            )
