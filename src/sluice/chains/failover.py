"""`ChainClient` over several RPC providers of one network, failing over between them.

A network may list several RPC URLs (a hosted provider first, a second provider after it). Each
call goes to the first provider that is not *benched*; a provider that fails (unreachable, timed
out, an HTTP error status, a malformed answer, an error answer about the provider itself such as
a rate limit: any `ChainUnavailableError` that is not the chain's answer to the request) is
benched for a cooldown and the call moves on to the next one. The chain's answers are raised as
they are, from the provider that gave them, which is not benched: a refused send
(`TransactionRefusedError`: another node of the chain would refuse the same bytes, and trying
them elsewhere only spreads them), a call that reverts or halts (`CallRevertedError`), and a
read's verdict on its request (`REFUSALS`, such as an estimate from a wallet without the funds).
The cooldown doubles on each consecutive failure, up to a cap, and resets once the provider
answers again. When every provider is benched, the one whose bench ends soonest is tried anyway
rather than failing without trying.

Lag: the provider that answers is not necessarily in sync with the chain. At most every
``lag_check_interval_s`` seconds, the next call first asks every usable provider its block
number, in parallel and with a short timeout; a provider more than ``max_lag_blocks`` behind
the best of them is benched as lagging, like one that does not answer in time. A
`block_number` answer is held to the same rule (checked against the other usable providers).

Chain id: before a provider is used for the first time, its chain id is checked against the
network's (``expected_chain_id`` if given, otherwise the first provider's that answers): a
provider on another chain is never used, it is retired for good with an error log.

A provider's answers are untrusted: chain ids and block numbers are checked here (the adapters
validate the rest). Only provider *names* are ever logged or put in messages, and those must be
safe to log: `FailoverChainClient.from_urls` uses `EvmChainClient.redacted_url`
(``scheme://host[:port]``), never the URL, which may carry an API key.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypeGuard, TypeVar

import structlog
from prometheus_client import Counter

from sluice.chains import rpc_errors
from sluice.chains.evm import EvmChainClient
from sluice.domain.addresses import Address
from sluice.domain.fees import FeeMarket
from sluice.errors import (
    CallRevertedError,
    ChainUnavailableError,
    ConfigurationError,
    TransactionRefusedError,
)
from sluice.ports import ChainClient, Receipt, SendResult

__all__ = ["FAILOVERS", "FailoverChainClient", "RpcProvider"]

log = structlog.get_logger(__name__)

FAILOVERS: Final = Counter(
    "sluice_rpc_failovers_total",
    "RPC providers benched (skipped for a cooldown), by network, provider and reason.",
    ["network", "provider", "reason"],
)

T = TypeVar("T")

#: `ChainUnavailableError` reasons that are the node's verdict on the request itself (another
#: provider of the same chain would say the same): raised as they are, without benching the
#: provider, whatever the error's class (``rejected`` aside: from a read it is no verdict).
REFUSALS: Final = (rpc_errors.REFUSALS | rpc_errors.CALL_FAILURES) - {"rejected"}

#: A block number beyond this is nonsense (and would make every other provider look lagging).
MAX_BLOCK_NUMBER: Final = 2**63 - 1

#: Cooldowns double per consecutive failure; the exponent is capped so the float cannot overflow.
_MAX_DOUBLINGS: Final = 32

_LAG_CHECK: Final = "lag_check"


@dataclass(frozen=True, slots=True)
class RpcProvider:
    """One RPC provider: its client, and a ``name`` that is safe to log (never the raw URL)."""

    name: str
    client: ChainClient


@dataclass(slots=True, eq=False)
class _Slot:
    """A provider and what this client knows about its health."""

    name: str
    client: ChainClient
    verified: bool = False
    """Its chain id was checked and matches."""
    retired: bool = False
    """It reported another chain id: never used again."""
    benched_until: float = 0.0
    """Monotonic time its bench ends (in the past: usable)."""
    strikes: int = 0
    """Consecutive failures; the cooldown doubles with each."""
    last_block: int | None = None
    """Its latest block number since it was last benched."""


@dataclass(slots=True, eq=False)
class _Probe:
    """What one provider answered during a lag check."""

    slot: _Slot
    chain_id: object = None
    block: object = None
    failure: str | None = None


class FailoverChainClient:
    """A `sluice.ports.ChainClient` over an ordered list of providers of one network.

    Every method goes to the first provider that is not benched, and fails over to the next on
    a `ChainUnavailableError`; `ChainUnavailableError` is raised only once no provider answered
    (its message names the network and the last failure's reason, never a URL). The chain's
    answers to the request itself are raised at once and bench nothing: a refused send
    (`TransactionRefusedError`), a reverted call (`CallRevertedError`), a read's verdict
    (`REFUSALS`). Other errors (a malformed transaction hash, a closed client) propagate.
    """

    def __init__(
        self,
        providers: Sequence[RpcProvider],
        *,
        network: str,
        expected_chain_id: int | None = None,
        cooldown_s: float = 30.0,
        max_cooldown_s: float = 300.0,
        max_lag_blocks: int = 5,
        lag_check_interval_s: float = 5.0,
        lag_check_timeout_s: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Fail over between ``providers``, in order of preference.

        Args:
            providers: At least one; names are disambiguated if two are equal.
            network: The network's name, for logs, messages and metrics.
            expected_chain_id: The chain id every provider must report; without it, the first
                provider to answer sets it.
            cooldown_s: How long a provider is benched after a failure (doubling per
                consecutive failure, up to ``max_cooldown_s``).
            max_lag_blocks: How far behind the best provider one may be before it is benched.
            lag_check_interval_s: How often, at most, providers are asked their block number.
            lag_check_timeout_s: How long a provider has to answer that check.
            monotonic: Where time comes from (seconds; injectable for tests).
        """
        if not providers:
            raise ConfigurationError(f"network {network!r} has no RPC provider")
        if expected_chain_id is not None and expected_chain_id <= 0:
            raise ConfigurationError("the expected chain id must be positive")
        if cooldown_s <= 0 or max_cooldown_s < cooldown_s:
            raise ConfigurationError("RPC cooldowns must be positive, the cap at least the base")
        if max_lag_blocks < 0:
            raise ConfigurationError("the RPC lag tolerance cannot be negative")
        if lag_check_interval_s <= 0 or lag_check_timeout_s <= 0:
            raise ConfigurationError("the RPC lag check interval and timeout must be positive")
        self._network = network
        self._slots = [
            _Slot(name=name, client=p.client)
            for name, p in zip(_unique_names([p.name for p in providers]), providers, strict=True)
        ]
        self._chain_id = expected_chain_id
        self._cooldown_s = cooldown_s
        self._max_cooldown_s = max_cooldown_s
        self._max_lag = max_lag_blocks
        self._lag_interval_s = lag_check_interval_s
        self._lag_timeout_s = lag_check_timeout_s
        self._now = monotonic
        self._next_lag_check = float("-inf")
        self._lag_lock = asyncio.Lock()
        self._closed = False

    @classmethod
    def from_urls(
        cls,
        urls: Sequence[str],
        *,
        network: str,
        expected_chain_id: int | None = None,
        timeout_s: float = 10.0,
        cooldown_s: float = 30.0,
        max_cooldown_s: float = 300.0,
        max_lag_blocks: int = 5,
        lag_check_interval_s: float = 5.0,
        lag_check_timeout_s: float = 2.0,
    ) -> FailoverChainClient:
        """One `EvmChainClient` per URL (``timeout_s`` per request), each named by its redacted
        URL; the other keywords are the constructor's.

        Raises:
            ConfigurationError: No URL, or one is malformed (the message gives its position,
                never the URL).
        """
        clients: list[EvmChainClient] = []
        for position, url in enumerate(urls, start=1):
            try:
                clients.append(EvmChainClient(url, timeout_s=timeout_s))
            except ConfigurationError as exc:
                raise ConfigurationError(
                    f"RPC URL #{position} of network {network!r}: {exc.detail}"
                ) from None
        providers = [RpcProvider(name=c.redacted_url, client=c) for c in clients]
        return cls(
            providers,
            network=network,
            expected_chain_id=expected_chain_id,
            cooldown_s=cooldown_s,
            max_cooldown_s=max_cooldown_s,
            max_lag_blocks=max_lag_blocks,
            lag_check_interval_s=lag_check_interval_s,
            lag_check_timeout_s=lag_check_timeout_s,
        )

    @property
    def provider_names(self) -> list[str]:
        """The providers' (loggable) names, in order of preference."""
        return [s.name for s in self._slots]

    def __repr__(self) -> str:
        return f"FailoverChainClient({self._network!r}, {self.provider_names!r})"

    # ── ChainClient ───────────────────────────────────────────────────────────────────────────

    async def chain_id(self) -> int:
        """The chain id, as a provider reports it (and checked against the network's)."""
        return await self._run("chain_id", lambda c: c.chain_id(), self._accept_chain_id)

    async def block_number(self) -> int:
        """The latest block number, from a provider that is not lagging behind the others."""
        return await self._run("block_number", lambda c: c.block_number(), self._accept_head)

    async def fee_market(self, *, blocks: int, percentiles: tuple[int, ...]) -> FeeMarket:
        """The next block's base fee, the suggested tip and the recent rewards at
        ``percentiles``, from the first healthy provider."""
        return await self._run(
            "fee_market", lambda c: c.fee_market(blocks=blocks, percentiles=percentiles)
        )

    async def gas_price(self) -> int:
        """The suggested legacy gas price, from the first healthy provider."""
        return await self._run("gas_price", lambda c: c.gas_price())

    async def l1_fee(self, oracle: Address, unsigned_transaction: bytes) -> int:
        """An OP Stack chain's L1 data fee for a transaction, from the first healthy provider
        (a revert is the call's answer: `CallRevertedError`)."""
        return await self._run("l1_fee", lambda c: c.l1_fee(oracle, unsigned_transaction))

    async def estimate_gas(self, sender: Address, to: Address, value: int, data: bytes) -> int:
        """Gas a call is expected to use (a revert is the call's answer: `CallRevertedError`)."""
        return await self._run("estimate_gas", lambda c: c.estimate_gas(sender, to, value, data))

    async def code_size(self, address: Address) -> int:
        """Bytes of contract code at an address (0 for an account)."""
        return await self._run("code_size", lambda c: c.code_size(address))

    async def code(self, address: Address) -> bytes:
        """The contract code at an address, from the first healthy provider."""
        return await self._run("code", lambda c: c.code(address))

    async def call(self, to: Address, data: bytes) -> bytes:
        """A read-only call's answer, from the first healthy provider (a revert is the call's
        answer: `CallRevertedError`)."""
        return await self._run("call", lambda c: c.call(to, data))

    async def estimate_creation_gas(self, sender: Address, data: bytes) -> int:
        """Gas a contract creation is expected to use (a revert is the creation's answer)."""
        return await self._run(
            "estimate_creation_gas", lambda c: c.estimate_creation_gas(sender, data)
        )

    async def send_raw_transaction(self, raw: bytes) -> SendResult:
        """Send through the first healthy provider; the first that takes it wins.

        Sending the same signed bytes to another provider after a failure is safe: it is the
        same transaction (same hash, same nonce), so it can only be mined once. A refusal
        (`TransactionRefusedError`) is not a failure: it is raised at once, and the provider
        stays in use.
        """
        return await self._run("send_raw_transaction", lambda c: c.send_raw_transaction(raw))

    async def receipt(self, transaction_hash: str) -> Receipt | None:
        """The receipt from the current provider; None is an answer, not a failure."""
        return await self._run("receipt", lambda c: c.receipt(transaction_hash))

    async def is_known(self, transaction_hash: str) -> bool:
        """Whether the current provider knows the transaction (pooled or mined)."""
        return await self._run("is_known", lambda c: c.is_known(transaction_hash))

    async def balance(self, address: Address) -> int:
        """Native balance in wei."""
        return await self._run("balance", lambda c: c.balance(address))

    async def transaction_count(
        self, address: Address, *, pending: bool = False, at_block: int | None = None
    ) -> int:
        """Nonces an address has used, per the current provider."""
        return await self._run(
            "transaction_count",
            lambda c: c.transaction_count(address, pending=pending, at_block=at_block),
        )

    async def token_balance(self, token: Address, holder: Address) -> int:
        """An ERC-20 balance, from the first healthy provider."""
        return await self._run("token_balance", lambda c: c.token_balance(token, holder))

    async def token_allowance(self, token: Address, owner: Address, spender: Address) -> int:
        """An ERC-20 allowance, from the first healthy provider."""
        return await self._run(
            "token_allowance", lambda c: c.token_allowance(token, owner, spender)
        )

    async def block_hash(self, number: int) -> str | None:
        """The canonical block hash at a height, from the first healthy provider."""
        return await self._run("block_hash", lambda c: c.block_hash(number))

    async def finalized_block(self) -> int:
        """The ``finalized`` block number, from the first healthy provider."""
        return await self._run("finalized_block", lambda c: c.finalized_block())

    async def close(self) -> None:
        """Close every provider's client (each, even if another fails to close)."""
        if self._closed:
            return
        self._closed = True
        for slot in self._slots:
            try:
                await slot.client.close()
            except Exception as exc:  # one bad close must not leave the others open
                log.warning(
                    "rpc provider did not close cleanly",
                    network=self._network,
                    provider=slot.name,
                    error=type(exc).__name__,
                )

    # ── Selection ─────────────────────────────────────────────────────────────────────────────

    async def _run(
        self,
        method: str,
        call: Callable[[ChainClient], Awaitable[T]],
        accept: Callable[[_Slot, T], str | None] | None = None,
    ) -> T:
        """``call`` on the first provider that answers usefully.

        ``accept`` may still turn an answer down (returning why, after benching the provider).
        """
        if self._closed:
            raise RuntimeError("the chain client is closed")
        await self._maybe_check_lag()
        candidates, fallback = self._candidates()
        if not candidates:
            raise ChainUnavailableError(
                f"{method} failed: no RPC provider of network {self._network!r} is on its chain"
            )
        last_reason = "all_benched"
        for slot in candidates:
            if slot.retired or (not fallback and not self._usable(slot)):
                continue  # benched or retired by a concurrent call meanwhile
            if not slot.verified:
                failure = await self._verify(slot, fallback=fallback)
                if failure is not None:
                    last_reason = failure
                    continue
            try:
                result = await call(slot.client)
            except (TransactionRefusedError, CallRevertedError):
                self._answered(slot)  # the chain's answer to the request: this provider is fine
                raise
            except ChainUnavailableError as exc:
                reason = _reason(exc)
                if reason in REFUSALS:
                    self._answered(slot)
                    raise
                self._bench(slot, reason, method, fallback=fallback)
                last_reason = reason
                continue
            if accept is not None:
                failure = accept(slot, result)
                if failure is not None:
                    last_reason = failure
                    continue
            self._answered(slot)
            return result
        raise ChainUnavailableError(
            f"{method} failed: no RPC provider of network {self._network!r} answered "
            f"(last: {last_reason})"
        )

    def _usable(self, slot: _Slot) -> bool:
        return not slot.retired and slot.benched_until <= self._now()

    def _candidates(self) -> tuple[list[_Slot], bool]:
        """Usable providers in order; or, if all are benched, the one whose bench ends first.

        The flag says it is that fallback.
        """
        live = [s for s in self._slots if not s.retired]
        usable = [s for s in live if self._usable(s)]
        if usable or not live:
            return usable, False
        return [min(live, key=lambda s: s.benched_until)], True

    def _bench(
        self, slot: _Slot, reason: str, method: str, *, fallback: bool = False, **fields: object
    ) -> None:
        """Skip a provider for a cooldown that doubles with each consecutive failure."""
        now = self._now()
        if slot.benched_until > now and not fallback:
            return  # a concurrent call benched it already: one failure, one strike
        slot.strikes += 1
        cooldown = min(
            self._cooldown_s * 2 ** min(slot.strikes - 1, _MAX_DOUBLINGS), self._max_cooldown_s
        )
        slot.benched_until = now + cooldown
        slot.last_block = None
        FAILOVERS.labels(self._network, slot.name, reason).inc()
        log.warning(
            "rpc provider benched",
            network=self._network,
            provider=slot.name,
            reason=reason,
            method=method,
            cooldown_s=cooldown,
            strikes=slot.strikes,
            **fields,
        )

    def _answered(self, slot: _Slot) -> None:
        """A provider answered: whatever bench it had is over."""
        if slot.strikes:
            log.info("rpc provider answers again", network=self._network, provider=slot.name)
        slot.strikes = 0
        slot.benched_until = 0.0

    # ── Chain id ──────────────────────────────────────────────────────────────────────────────

    async def _verify(self, slot: _Slot, *, fallback: bool) -> str | None:
        """Check a provider's chain id before its first use; why not, if it cannot be used."""
        try:
            chain_id = await slot.client.chain_id()
        except ChainUnavailableError as exc:
            reason = _reason(exc)
            self._bench(slot, reason, "chain_id", fallback=fallback)
            return reason
        return self._accept_chain_id(slot, chain_id)

    def _accept_chain_id(self, slot: _Slot, chain_id: object) -> str | None:
        """Compare a reported chain id with the network's; retire a provider on another chain."""
        if not _is_int(chain_id) or not 0 < chain_id <= MAX_BLOCK_NUMBER:
            reason = "malformed_response"
            self._bench(slot, reason, "chain_id", fallback=True)
            return reason
        if self._chain_id is None:
            self._chain_id = chain_id
        if chain_id != self._chain_id:
            slot.retired = True
            slot.verified = False
            FAILOVERS.labels(self._network, slot.name, "chain_id_mismatch").inc()
            log.error(
                "rpc provider is on another chain; it will not be used",
                network=self._network,
                provider=slot.name,
                chain_id=chain_id,
                expected_chain_id=self._chain_id,
            )
            return "chain_id_mismatch"
        if not slot.verified:
            slot.verified = True
            log.info(
                "rpc provider chain id checked",
                network=self._network,
                provider=slot.name,
                chain_id=chain_id,
            )
        return None

    # ── Lag ───────────────────────────────────────────────────────────────────────────────────

    def _accept_head(self, slot: _Slot, block: object) -> str | None:
        """Take a block number, unless it is nonsense or lags behind other usable providers."""
        if not _is_int(block) or not 0 <= block <= MAX_BLOCK_NUMBER:
            reason = "malformed_response"
            self._bench(slot, reason, "block_number", fallback=True)
            return reason
        slot.last_block = block
        others = [
            s.last_block
            for s in self._slots
            if s is not slot and s.last_block is not None and self._usable(s)
        ]
        best = max(others, default=block)
        if best - block > self._max_lag:
            self._bench_lagging(slot, "block_number", best - block)
            return "lagging"
        return None

    def _bench_lagging(self, slot: _Slot, method: str, lag: int) -> None:
        self._bench(slot, "lagging", method, fallback=True, lag_blocks=lag)

    async def _maybe_check_lag(self) -> None:
        """Run a lag check if one is due (one at a time; callers wait for it)."""
        if len(self._slots) < 2 or self._now() < self._next_lag_check:
            return
        async with self._lag_lock:
            if self._now() < self._next_lag_check:
                return  # another call ran it while this one waited
            # Set first: a check that fails or is cancelled is not retried by every call.
            self._next_lag_check = self._now() + self._lag_interval_s
            await self._check_lag()

    async def _check_lag(self) -> None:
        """Ask every usable provider its block number (and chain id, if unchecked) at once."""
        slots = [s for s in self._slots if self._usable(s)]
        probes = await asyncio.gather(*(self._probe(s) for s in slots))
        for probe in probes:  # in order of preference: the first answer sets the chain id
            if probe.chain_id is not None and self._accept_chain_id(probe.slot, probe.chain_id):
                continue
            if probe.failure is not None and not probe.slot.retired:
                self._bench(probe.slot, probe.failure, _LAG_CHECK)
        heads: list[tuple[_Slot, int]] = []
        for probe in probes:
            slot, block = probe.slot, probe.block
            if probe.failure is not None or not slot.verified or slot.retired:
                continue
            if not _is_int(block) or not 0 <= block <= MAX_BLOCK_NUMBER:
                self._bench(slot, "malformed_response", _LAG_CHECK)
                continue
            slot.last_block = block
            heads.append((slot, block))
        best = max((block for _, block in heads), default=0)
        for slot, block in heads:
            if best - block > self._max_lag:
                self._bench_lagging(slot, _LAG_CHECK, best - block)

    async def _probe(self, slot: _Slot) -> _Probe:
        """One provider's chain id (if unchecked) and block number, within the short timeout."""
        probe = _Probe(slot)
        try:
            async with asyncio.timeout(self._lag_timeout_s):
                if not slot.verified:
                    probe.chain_id = await slot.client.chain_id()
                probe.block = await slot.client.block_number()
        except TimeoutError:
            probe.failure = "timeout"
        except ChainUnavailableError as exc:
            probe.failure = _reason(exc)
        except Exception as exc:  # a health check: any error means unhealthy
            probe.failure = "error"
            log.warning(
                "rpc provider lag check failed",
                network=self._network,
                provider=slot.name,
                error=type(exc).__name__,
            )
        return probe


def _reason(exc: ChainUnavailableError) -> str:
    """A short, URL-free classification of a failure, for logs, metrics and messages."""
    return exc.reason or "unavailable"


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _unique_names(names: list[str]) -> list[str]:
    """Names as given, those that repeat (two keys on one host) suffixed ``#1``, ``#2``..."""
    if any(not name for name in names):
        raise ConfigurationError("every RPC provider needs a name")
    repeated = {name for name in names if names.count(name) > 1}
    seen: dict[str, int] = {}
    unique: list[str] = []
    for name in names:
        if name in repeated:
            seen[name] = seen.get(name, 0) + 1
            unique.append(f"{name}#{seen[name]}")
        else:
            unique.append(name)
    return unique
