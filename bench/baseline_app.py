"""The baseline for `make bench`: the least a FastAPI service can do per withdrawal request.

One route, ``POST /v1/withdrawals``: a pydantic body, one asyncpg ``INSERT`` in its own
transaction (``BEGIN``, ``INSERT``, ``COMMIT``) on a pooled connection, a small JSON answer with
202. Its throughput is the ceiling of our stack (uvicorn, FastAPI, pydantic, asyncpg,
PostgreSQL) on the machine; Sluice is measured against it.

It is served exactly as `sluice serve` serves Sluice (see ``sluice.runtime``): one process,
`sluice.runtime.run_loop` (uvloop when installed), a ``uvicorn.Server`` with uvicorn's defaults
otherwise (``http="auto"``: httptools, a dependency of Sluice), no access log, no lifespan. The
pool keeps as many connections as Sluice's SQLAlchemy engine keeps (15; Sluice may open 5 more
under load, closing them when returned).

Run: ``python bench/baseline_app.py --dsn postgresql://postgres@127.0.0.1:5432/DB --port 8101``.
"""

from __future__ import annotations

import argparse
import uuid
from typing import Annotated, Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from sluice.runtime import run_loop

#: As many connections as Sluice's engine keeps (`SLUICE_DB_POOL_SIZE`, default 15).
POOL_MIN = 15
POOL_MAX = 15

SCHEMA = """
CREATE TABLE IF NOT EXISTS baseline_withdrawals (
    id text PRIMARY KEY,
    user_id text NOT NULL,
    network text NOT NULL,
    amount text NOT NULL,
    to_address text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""

INSERT = """
INSERT INTO baseline_withdrawals (id, user_id, network, amount, to_address)
VALUES ($1, $2, $3, $4, $5)
"""


class WithdrawalIn(BaseModel):
    """The same body Sluice takes (camelCase on the wire), minimally checked."""

    model_config = ConfigDict(extra="forbid")

    user_id: Annotated[StrictStr, Field(alias="userId", min_length=1, max_length=128)]
    amount: Annotated[StrictStr, Field(max_length=100)]
    network: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    to_address: Annotated[StrictStr, Field(alias="toAddress", max_length=64)]


class WithdrawalOut(BaseModel):
    """What the baseline answers."""

    id: str
    status: str


def create_app(pool: Any) -> FastAPI:
    """The baseline app over an asyncpg pool."""
    app = FastAPI(title="Sluice bench baseline", docs_url=None, redoc_url=None)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/withdrawals", status_code=202)
    async def create(body: WithdrawalIn) -> WithdrawalOut:
        withdrawal_id = f"wd_{uuid.uuid4().hex}"
        async with pool.acquire() as connection, connection.transaction():
            await connection.execute(
                INSERT, withdrawal_id, body.user_id, body.network, body.amount, body.to_address
            )
        return WithdrawalOut(id=withdrawal_id, status="PENDING")

    return app


async def serve(dsn: str, host: str, port: int) -> None:
    """Create the table and the pool, then serve until SIGINT or SIGTERM."""
    pool = await asyncpg.create_pool(dsn, min_size=POOL_MIN, max_size=POOL_MAX)
    try:
        async with pool.acquire() as connection:
            await connection.execute(SCHEMA)
        config = uvicorn.Config(
            create_app(pool),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=10,
        )
        await uvicorn.Server(config).serve()
    finally:
        await pool.close()


def main() -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dsn", required=True, help="asyncpg DSN: postgresql://user@host/db")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    run_loop(serve(args.dsn, args.host, args.port))


if __name__ == "__main__":
    main()
