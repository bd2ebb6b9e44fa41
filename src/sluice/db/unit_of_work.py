"""The SQL unit of work: one database transaction, its repositories, and its outbox."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import structlog
from sqlalchemy import bindparam, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sluice.clock import SystemClock
from sluice.db.api_keys import SqlApiKeyRepository
from sluice.db.audit import SqlAuditLog
from sluice.db.ledger import SqlLedgerRepository
from sluice.db.operators import SqlOperatorRepository
from sluice.db.outbox import INSERT_MESSAGES, Outbox
from sluice.db.pauses import SqlPauseRepository
from sluice.db.policy import SqlPolicyRepository
from sluice.db.tables import outbox, webhook_events, withdrawal_events
from sluice.db.transactions import SqlTransactionRepository
from sluice.db.webhooks import INSERT_WEBHOOK_EVENTS, SqlWebhookRepository, event_rows
from sluice.db.withdrawals import INSERT_EVENT, SqlWithdrawalRepository
from sluice.ports import BalanceCache, Queue

log = structlog.get_logger(__name__)

_EVENT_COLUMNS = [column for column in withdrawal_events.c if column.name != "id"]
_HOOK_COLUMNS = [column for column in webhook_events.c if column.name != "seq"]
_EVENT_CTE = (
    insert(withdrawal_events)
    .values({c.name: bindparam(f"event_{c.name}", type_=c.type) for c in _EVENT_COLUMNS})
    .cte("new_event")
)
_OUTBOX_ROW = insert(outbox).values(
    {c.name: bindparam(f"message_{c.name}", type_=c.type) for c in outbox.c}
)
#: One status change and one outbox message in one statement (PostgreSQL: a data-modifying CTE),
#: the commonest shape of a unit of work (intake, and most stages): a round trip fewer.
_INSERT_EVENT_AND_MESSAGE = _OUTBOX_ROW.add_cte(_EVENT_CTE)
#: The same with the change's webhook event (docs/webhooks.md) in the statement too.
_INSERT_EVENT_HOOK_AND_MESSAGE = _OUTBOX_ROW.add_cte(_EVENT_CTE).add_cte(
    insert(webhook_events)
    .values({c.name: bindparam(f"hook_{c.name}", type_=c.type) for c in _HOOK_COLUMNS})
    .cte("new_webhook_event")
)


async def _write_events_and_messages(
    connection: AsyncConnection,
    events: list[dict[str, Any]],
    messages: list[dict[str, Any]],
    hooks: list[dict[str, Any]],
) -> None:
    """Insert status changes, their webhook events and outbox rows in as few statements as the
    database allows."""
    if (
        len(events) == 1
        and len(messages) == 1
        and len(hooks) <= 1
        and connection.dialect.name == "postgresql"
    ):
        params = {f"event_{name}": value for name, value in events[0].items()}
        params.update({f"message_{name}": value for name, value in messages[0].items()})
        statement = _INSERT_EVENT_AND_MESSAGE
        if hooks:
            params.update({f"hook_{name}": value for name, value in hooks[0].items()})
            statement = _INSERT_EVENT_HOOK_AND_MESSAGE
        await connection.execute(statement, params)
        return
    if events:
        await connection.execute(INSERT_EVENT, events)
    if hooks:
        await connection.execute(INSERT_WEBHOOK_EVENTS, hooks)
    if messages:
        await connection.execute(INSERT_MESSAGES, messages)


class SqlUnitOfWork:
    """Opens a transaction on enter; rolls back on exit unless committed.

    Messages enqueued during the transaction are written to the outbox table in the same
    transaction and published after the commit succeeds, so a worker never sees a message for a
    row that is not there yet, and a crash between the commit and the publish loses nothing: the
    outbox relay publishes what was left.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        queue: Queue,
        outbox: Outbox,
        cache: BalanceCache | None = None,
    ) -> None:
        self._engine = engine
        self._queue = queue
        self._cache = cache
        self._outbox = outbox
        self._connection: AsyncConnection | None = None
        self._pending: list[tuple[str, dict[str, Any], float]] = []

    async def __aenter__(self) -> Self:
        self._connection = await self._engine.connect()
        await self._connection.begin()
        connection = self._connection
        self.withdrawals = SqlWithdrawalRepository(connection)
        self.ledger = SqlLedgerRepository(connection)
        self.transactions = SqlTransactionRepository(connection)
        self.api_keys = SqlApiKeyRepository(connection)
        self.operators = SqlOperatorRepository(connection)
        self.audit = SqlAuditLog(connection)
        self.policy = SqlPolicyRepository(connection)
        self.pauses = SqlPauseRepository(connection)
        self.webhooks = SqlWebhookRepository(connection)
        return self

    async def __aexit__(self, *exc: object) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if connection.in_transaction():
                await connection.rollback()
        finally:
            await connection.close()
            self._pending.clear()

    def enqueue(self, job: str, payload: Mapping[str, Any], *, delay_s: float = 0.0) -> None:
        self._pending.append((job, dict(payload), delay_s))

    async def commit(self) -> None:
        if self._connection is None:
            raise RuntimeError("unit of work is not open")
        pending, self._pending = self._pending, []
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        rows = self._outbox.rows(pending, request_id)
        hooks = await self._webhook_events(self.withdrawals.take_changes())
        await _write_events_and_messages(
            self._connection, self.withdrawals.take_events(), rows, hooks
        )
        await self._connection.commit()
        if self._cache is not None and self.ledger.touched:
            await self._cache.invalidate(self.ledger.touched)
        published = []
        for row, (job, payload, delay_s) in zip(rows, pending, strict=True):
            try:
                await self._queue.publish(job, payload, delay_s=delay_s, request_id=request_id)
            except Exception as exc:
                # The state is committed and its message is safe in the outbox: the relay will
                # publish it. Failing here would tell a caller "not done" about something done.
                log.warning(
                    "publish failed; the outbox relay will deliver", job=job, error=str(exc)
                )
                continue
            published.append(row["id"])
        self._outbox.published(published)

    async def _webhook_events(self, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The webhook event rows of this unit of work's status changes, written with them in
        this same transaction: an event exists if and only if its change was committed
        (docs/webhooks.md).

        The payload is made from the withdrawal as this unit of work last wrote it (the
        repository remembers it); one changed without being saved here is read back.
        """
        if not changes:
            return []
        known = self.withdrawals.written
        missing = {c["withdrawal_id"] for c in changes} - known.keys()
        if missing:
            for withdrawal in await self.withdrawals.get_many(sorted(missing)):
                known[withdrawal.id] = withdrawal
        return event_rows(changes, known)

    async def rollback(self) -> None:
        if self._connection is not None:
            await self._connection.rollback()
            self.withdrawals.drop_events()
        self._pending.clear()


class SqlUnitOfWorkFactory:
    """Makes units of work on one engine and queue, sharing one outbox."""

    def __init__(
        self,
        engine: AsyncEngine,
        queue: Queue,
        outbox: Outbox | None = None,
        cache: BalanceCache | None = None,
    ) -> None:
        self.engine = engine
        self.queue = queue
        self.outbox = outbox or Outbox(engine, queue, SystemClock())
        self.cache = cache

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, self.queue, self.outbox, self.cache)
