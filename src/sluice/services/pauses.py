"""Pausing networks: an operator's pause, a freeze of every network, the circuit breaker, and
resuming (docs/circuit-breaker.md).

Where it bites: `SigningService` asks `PauseService.admit` right before a new payout takes a
nonce, under the withdrawals' locks, and a withdrawal held by a pause stays VALIDATING with a
``waiting_reason``. Nothing else stops: broadcasts, confirmation rounds, fee bumps of stuck
transactions, gap fillers and cancels of what is already signed keep running, since stopping
them would strand the funds and the nonces those transactions hold.

Locks (PostgreSQL): signing takes the freeze row (``*``) shared, then its network's row, shared
on a network without a breaker and exclusive on one with a breaker, then the nonce counter: so
the lock order is withdrawal → freeze row → network row → nonce counter → audit head. A pause or
a resume locks one row exclusively, so it waits for the signatures in progress to commit and
every later one sees it: once a pause is answered, no payout of that network is signed. With a
breaker, signing on that network is serialized from the row lock to the commit (the sum of the
window's outflow, the signature, the store), so racing signers cannot both fit under the limit.
SQLite's BEGIN IMMEDIATE serializes all of it anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

import structlog

from sluice import metrics
from sluice.domain.amounts import format_amount
from sluice.domain.assets import Network
from sluice.domain.audit import SYSTEM, Actor, AuditRecord
from sluice.domain.pauses import (
    EVERY_NETWORK,
    NetworkControl,
    Pause,
    PauseKind,
    breaker_verdict,
    format_window,
    trip_reason,
    window_start,
)
from sluice.errors import InvalidRequestError, UnknownNetworkError
from sluice.ports import Clock, UnitOfWork
from sluice.services import jobs
from sluice.services.registry import NetworkRegistry

log = structlog.get_logger(__name__)

#: How long a withdrawal held by a pause waits before its sign job looks again by itself. A
#: resume wakes the held withdrawals at once (up to `WAKE_AT_ONCE`), so this only bounds how
#: long one missed by the wake-up waits.
PAUSE_RETRY_S = 30.0

#: Held withdrawals a resume wakes at once, oldest first (the rest look again within
#: `PAUSE_RETRY_S`).
WAKE_AT_ONCE = 1000

#: The longest reason an operator may give.
MAX_REASON = 500


def snapshot(control: NetworkControl) -> dict[str, Any]:
    """What the audit log keeps of a network's pause state."""
    pause = control.pause
    return {
        "paused": None
        if pause is None
        else {
            "since": pause.since,
            "kind": pause.kind.value,
            "reason": pause.reason,
            "actor": pause.actor,
        },
        "resumedAt": control.resumed_at,
        "resumedBy": control.resumed_by,
    }


def _subject(name: str) -> str:
    return f"network:{name}"


class NetworkCatalog(Protocol):
    """The served networks as pauses need them: names and configuration, never a node."""

    def names(self) -> list[str]:
        """Every served network's name."""
        ...

    def network(self, name: str) -> Network:
        """A served network.

        Raises:
            UnknownNetworkError: Not served here.
        """
        ...


class RegistryCatalog:
    """The networks of a running process's registry (read live)."""

    def __init__(self, registry: NetworkRegistry) -> None:
        self._registry = registry

    def names(self) -> list[str]:
        """Every served network's name."""
        return self._registry.names()

    def network(self, name: str) -> Network:
        """A served network (`NetworkRegistry.get`)."""
        return self._registry.get(name).network


class ConfiguredCatalog:
    """The networks of a networks file, for the command line (no node, no key is touched)."""

    def __init__(self, networks: Mapping[str, Network]) -> None:
        self._networks = dict(networks)

    def names(self) -> list[str]:
        """Every configured network's name."""
        return sorted(self._networks)

    def network(self, name: str) -> Network:
        """A configured network.

        Raises:
            UnknownNetworkError: Not in the networks file.
        """
        try:
            return self._networks[name]
        except KeyError:
            raise UnknownNetworkError(f"network {name!r} is not served here") from None


class PauseService:
    """Pause and resume networks; decide, before each new payout, whether it may be signed."""

    def __init__(self, networks: NetworkCatalog | NetworkRegistry, clock: Clock) -> None:
        """``networks``: a registry (a running process) or any `NetworkCatalog`."""
        self._networks: NetworkCatalog = (
            RegistryCatalog(networks) if isinstance(networks, NetworkRegistry) else networks
        )
        self._clock = clock

    def _name(self, network: str | None) -> str:
        """The row's name: the network's (checked), or ``*`` for every network.

        Raises:
            UnknownNetworkError: Not a network served here.
        """
        if network is None:
            return EVERY_NETWORK
        try:
            return self._networks.network(network).name
        except UnknownNetworkError as exc:
            raise UnknownNetworkError(exc.detail, field="network", location="path") from None

    async def holding(self, uow: UnitOfWork, network: str) -> Pause | None:
        """The pause that holds ``network`` now, read without a lock (a sign job's first look,
        so that a paused network costs no chain reads; `admit` decides under the lock)."""
        stored = {c.network: c.pause for c in await uow.pauses.many([EVERY_NETWORK, network])}
        for name in (EVERY_NETWORK, network):
            pause = stored.get(name)
            if pause is not None:
                self._show(name, paused=True)
                return pause
        self._show(network, paused=False)
        return None

    async def admit(
        self, uow: UnitOfWork, network: str, asset_key: str, amount: int
    ) -> Pause | None:
        """Whether a new payout of ``amount`` base units of ``asset_key`` on ``network`` may
        take a nonce now; the caller holds its withdrawals' locks and signs in this transaction.

        Returns:
            None to sign; else the pause that holds it: a freeze, the network's pause, or the
            breaker's trip made here (the pause row, the audit entry and the metrics written in
            the caller's transaction, before it commits).
        """
        now = self._clock.now()
        everywhere = await uow.pauses.get(EVERY_NETWORK, lock="share", at=now)
        if everywhere.pause is not None:
            return everywhere.pause
        served = self._networks.network(network)
        breaker = served.circuit_breaker
        limit = None if breaker is None else breaker.limit_of(asset_key)
        # Exclusive only where a breaker sums: two signers of the network then take turns, so
        # each sums an outflow that includes the other's committed payout.
        own = await uow.pauses.get(network, lock="share" if limit is None else "update", at=now)
        if own.pause is not None:
            return own.pause
        if breaker is None or limit is None:
            return None
        since = window_start(now, breaker.window_s, own.resumed_at)
        outflow = await uow.pauses.outflow(network, asset_key, since)
        if breaker_verdict(outflow, amount, limit):
            return None
        asset = served.asset_by_key(asset_key)
        pause = Pause(
            network=network,
            since=now,
            kind=PauseKind.CIRCUIT_BREAKER,
            reason=trip_reason(
                network=network,
                symbol=asset.symbol,
                decimals=asset.decimals,
                outflow=outflow,
                amount=amount,
                limit=limit,
                window_s=breaker.window_s,
            ),
            actor=SYSTEM.label,
        )
        tripped = replace(own, pause=pause)
        await uow.pauses.save(tripped, now)
        await uow.audit.append(
            AuditRecord(
                actor=SYSTEM,
                action="network.circuit_breaker_tripped",
                subject=_subject(network),
                at=now,
                before=snapshot(own),
                after=snapshot(tripped),
                detail={
                    "asset": asset.symbol,
                    "window": format_window(breaker.window_s),
                    "windowStart": since,
                    "outflow": format_amount(outflow, asset.decimals),
                    "amount": format_amount(amount, asset.decimals),
                    "limit": format_amount(limit, asset.decimals),
                },
            )
        )
        metrics.CIRCUIT_BREAKER_TRIPS.labels(network).inc()
        self._show(network, paused=True)
        log.warning("circuit breaker tripped: signing paused", network=network, reason=pause.reason)
        return pause

    async def pause(
        self, uow: UnitOfWork, network: str | None, *, reason: str, actor: Actor
    ) -> NetworkControl:
        """Pause ``network`` by hand (None: freeze every network). Already paused: unchanged,
        and nothing is logged.

        Raises:
            UnknownNetworkError: Not a network served here.
            InvalidRequestError: No reason, or a reason too long (field ``reason``).
        """
        reason = reason.strip()
        if not reason or len(reason) > MAX_REASON:
            raise InvalidRequestError(
                f"a pause needs a reason of 1 to {MAX_REASON} characters", field="reason"
            )
        name = self._name(network)
        now = self._clock.now()
        before = await uow.pauses.get(name, lock="update", at=now)
        if before.pause is not None:
            return before
        after = replace(before, pause=Pause(name, now, PauseKind.MANUAL, reason, actor.label))
        await uow.pauses.save(after, now)
        await uow.audit.append(
            AuditRecord(
                actor=actor,
                action="network.paused",
                subject=_subject(name),
                at=now,
                before=snapshot(before),
                after=snapshot(after),
                detail={"reason": reason},
            )
        )
        self._show(name, paused=True)
        log.warning("network paused", network=name, actor=actor.label, reason=reason)
        return after

    async def resume(
        self, uow: UnitOfWork, network: str | None, *, actor: Actor, reason: str | None = None
    ) -> NetworkControl:
        """Lift ``network``'s own pause, manual or a tripped breaker (None: lift the freeze of
        every network, and nothing else). Its breaker's window starts afresh now. The withdrawals
        it held are woken (their sign jobs queued on commit). Not paused: unchanged, nothing
        logged.

        Raises:
            UnknownNetworkError: Not a network served here.
        """
        name = self._name(network)
        now = self._clock.now()
        before = await uow.pauses.get(name, lock="update", at=now)
        if before.pause is None:
            return before
        after = NetworkControl(name, pause=None, resumed_at=now, resumed_by=actor.label)
        await uow.pauses.save(after, now)
        detail = {"reason": reason.strip()[:MAX_REASON]} if reason and reason.strip() else None
        await uow.audit.append(
            AuditRecord(
                actor=actor,
                action="network.resumed",
                subject=_subject(name),
                at=now,
                before=snapshot(before),
                after=snapshot(after),
                detail=detail,
            )
        )
        networks: Sequence[str] | None = None if network is None else [name]
        for withdrawal_id in await uow.pauses.held(networks, limit=WAKE_AT_ONCE):
            uow.enqueue(jobs.SIGN, {"withdrawalId": withdrawal_id})
        self._show(name, paused=False)
        log.warning("network resumed", network=name, actor=actor.label)
        return after

    async def states(self, uow: UnitOfWork) -> dict[str, NetworkControl]:
        """Every served network's own pause state and the freeze's (``*``), by name."""
        stored = {c.network: c for c in await uow.pauses.all()}
        names = [EVERY_NETWORK, *self._networks.names()]
        states = {name: stored.get(name, NetworkControl(name)) for name in names}
        for name, control in states.items():
            self._show(name, paused=control.pause is not None)
        return states

    @staticmethod
    def _show(name: str, *, paused: bool) -> None:
        """Each process's gauge says what it last read or did (docs/circuit-breaker.md)."""
        metrics.NETWORK_PAUSED.labels(name).set(1 if paused else 0)
