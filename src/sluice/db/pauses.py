"""Network pauses and the circuit breaker's outflow in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import insert, or_, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.db.tables import chain_transactions, network_pauses, withdrawals
from sluice.domain.pauses import PAUSED, TRIPPED, NetworkControl, Pause, PauseKind
from sluice.domain.withdrawal import WithdrawalStatus

#: How a caller locks a network's row: ``share`` (signing on a network without a breaker: many
#: signers at once, a pause waits for them), ``update`` (signing on a network with a breaker, a
#: pause or a resume: one at a time), or not at all (a read).
Lock = Literal["share", "update"] | None

#: Withdrawals whose payouts no longer count towards the outflow.
_NOT_PAID = (WithdrawalStatus.FAILED.value, WithdrawalStatus.CANCELLED.value)


def _control(row: Any) -> NetworkControl:
    pause = (
        None
        if row.paused_at is None
        else Pause(
            network=row.network,
            since=row.paused_at,
            kind=PauseKind(row.kind),
            reason=row.reason or "",
            actor=row.actor or "",
        )
    )
    return NetworkControl(
        network=row.network, pause=pause, resumed_at=row.resumed_at, resumed_by=row.resumed_by
    )


class SqlPauseRepository:
    """Pause rows and the breaker's sums within one database transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._c = connection

    async def get(self, network: str, *, lock: Lock = None, at: datetime) -> NetworkControl:
        """The network's pause state; with ``lock``, its row is made if missing and locked
        until commit (``at``: the new row's time)."""
        query = select(network_pauses).where(network_pauses.c.network == network)
        if lock is None:
            row = (await self._c.execute(query)).first()
            return NetworkControl(network) if row is None else _control(row)
        locked = query.with_for_update(read=lock == "share")
        row = (await self._c.execute(locked)).first()
        if row is None:
            # A row to lock even for a network never paused: otherwise a pause inserted while a
            # signer holds "no row" would not wait for that signer. Several processes may make
            # it at once on PostgreSQL: ON CONFLICT DO NOTHING lets the first win (the others
            # wait for it), and the locked read that follows sees and locks its row.
            values = {"network": network, "updated_at": at}
            if self._c.dialect.name == "postgresql":
                await self._c.execute(
                    postgresql.insert(network_pauses)
                    .values(values)
                    .on_conflict_do_nothing(index_elements=["network"])
                )
            else:  # SQLite: BEGIN IMMEDIATE already made this transaction the only writer
                await self._c.execute(insert(network_pauses).values(values))
            row = (await self._c.execute(locked)).one()
        return _control(row)

    async def save(self, control: NetworkControl, at: datetime) -> None:
        """Write a network's pause state (its row is locked: `get` with ``lock="update"``)."""
        pause = control.pause
        await self._c.execute(
            update(network_pauses)
            .where(network_pauses.c.network == control.network)
            .values(
                paused_at=None if pause is None else pause.since,
                kind=None if pause is None else pause.kind.value,
                reason=None if pause is None else pause.reason,
                actor=None if pause is None else pause.actor,
                resumed_at=control.resumed_at,
                resumed_by=control.resumed_by,
                updated_at=at,
            )
        )

    async def many(self, networks: Sequence[str]) -> list[NetworkControl]:
        """The stored pause states of ``networks`` (one statement, no lock); a network never
        paused may have none."""
        query = select(network_pauses).where(network_pauses.c.network.in_(list(networks)))
        return [_control(row) for row in await self._c.execute(query)]

    async def all(self) -> list[NetworkControl]:
        """Every stored pause state, the freeze row (``*``) first."""
        rows = await self._c.execute(select(network_pauses).order_by(network_pauses.c.network))
        return [_control(row) for row in rows]

    async def outflow(self, network: str, asset_key: str, since: datetime) -> int:
        """The sum, in base units, of the network's payouts of ``asset_key`` whose transaction
        was signed after ``since`` and whose withdrawal is not FAILED or CANCELLED.

        Summed in Python: amounts are decimal strings on SQLite (`BaseUnits`)."""
        w, t = withdrawals.c, chain_transactions.c
        query = (
            select(w.amount)
            .select_from(withdrawals.join(chain_transactions, w.transaction_id == t.id))
            .where(
                t.network == network,
                t.created_at > since,
                w.asset_key == asset_key,
                w.status.not_in(_NOT_PAID),
            )
        )
        return sum(int(row.amount) for row in await self._c.execute(query))

    async def held(self, networks: Sequence[str] | None, *, limit: int) -> list[str]:
        """Ids of VALIDATING withdrawals (of ``networks``; None: every network) that wait for a
        pause or a tripped breaker, oldest first."""
        c = withdrawals.c
        query = select(c.id).where(
            c.status == WithdrawalStatus.VALIDATING.value,
            or_(c.waiting_reason.like(f"{PAUSED}:%"), c.waiting_reason.like(f"{TRIPPED}:%")),
        )
        if networks is not None:
            query = query.where(c.network.in_(list(networks)))
        rows = await self._c.execute(query.order_by(c.seq).limit(limit))
        return [row.id for row in rows]
