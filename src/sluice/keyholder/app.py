"""The signer's HTTP API: `POST /v1/sign`, `GET /v1/wallets`, `GET /health`.

Every request but `/health` presents ``Authorization: Bearer <SLUICE_SIGNER_TOKEN>``. A refusal
is 403 with ``{"code": "signing_refused", "detail": …}``; nothing else is ever said about the
keys.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.db.transactions import SqlTransactionRepository
from sluice.db.withdrawals import SqlWithdrawalRepository
from sluice.domain.addresses import Address
from sluice.domain.assets import Network
from sluice.domain.fees import Fees
from sluice.domain.transaction import UnsignedTransaction
from sluice.errors import SigningRefusedError
from sluice.keyholder.grants import Grant, SqlGrantRepository
from sluice.keyholder.policy import check
from sluice.keyholder.protocol import Refusal, SignRequest, SignResponse, WalletOut
from sluice.ports import Signer

log = structlog.get_logger(__name__)


@dataclass
class Keyholder:
    """The keys, the records they are checked against, and the signer's own grant book."""

    networks: Mapping[str, Network]
    signers: Mapping[tuple[str, Address], Signer]
    draining: frozenset[tuple[str, Address]]
    records: AsyncEngine
    """The main database, read only."""
    book: AsyncEngine
    """The signer's own database (`signer_grants`)."""
    token: str

    async def sign(self, request: SignRequest) -> SignResponse:
        """Check, record and sign; `SigningRefusedError` when the records do not call for it."""
        network = self.networks.get(request.network)
        wallet = Address(request.wallet)
        signer = self.signers.get((request.network, wallet))
        if network is None or signer is None:
            raise SigningRefusedError(f"no hot wallet {request.wallet} on {request.network}")
        async with self.records.connect() as records, self.book.begin() as book:
            grants = SqlGrantRepository(book)
            verdict = await check(
                request,
                network=network,
                withdrawals=SqlWithdrawalRepository(records),
                transactions=SqlTransactionRepository(records),
                grants=grants,
            )
            signed = await signer.sign(
                UnsignedTransaction(
                    chain_id=request.chain_id,
                    nonce=request.nonce,
                    to=verdict.payload.to,
                    value=verdict.payload.value,
                    data=verdict.payload.data,
                    gas=request.gas,
                    fees=Fees(
                        max_fee_per_gas=int(request.max_fee_per_gas),
                        max_priority_fee_per_gas=int(request.max_priority_fee_per_gas),
                    ),
                    fee_model=request.fee_model,
                )
            )
            # One grant per withdrawal paid, recorded (committed with the book's transaction)
            # before the signature is handed out; a no-op pays none and records nothing.
            at = datetime.now(UTC)
            for withdrawal_id in verdict.withdrawal_ids:
                await grants.add(
                    Grant(
                        hash=signed.hash,
                        withdrawal_id=withdrawal_id,
                        network=request.network,
                        wallet=wallet,
                        nonce=request.nonce,
                        transaction_id=request.transaction_id,
                        at=at,
                    )
                )
        log.info(
            "signed",
            network=request.network,
            hot_wallet=wallet,
            nonce=request.nonce,
            transaction_id=request.transaction_id,
            withdrawal_ids=request.withdrawal_ids,
            noop=verdict.noop,
            transaction_hash=signed.hash,
        )
        return SignResponse(raw="0x" + signed.raw.hex(), hash=signed.hash)

    def wallets(self) -> list[WalletOut]:
        """Every wallet held, by network."""
        return [
            WalletOut(network=name, address=address, draining=(name, address) in self.draining)
            for name, address in self.signers
        ]


def create_signer_app(keyholder: Keyholder) -> FastAPI:
    """The signer's app (no OpenAPI document: it is not for browsing)."""
    app = FastAPI(title="sluice signer", docs_url=None, redoc_url=None, openapi_url=None)

    def _authorised(request: Request) -> bool:
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), keyholder.token.encode()
        )

    def _refused(status: int, code: str, detail: str) -> JSONResponse:
        body = Refusal(code=code, detail=detail).model_dump()
        return JSONResponse(body, status_code=status, media_type="application/problem+json")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, _exc: Exception) -> JSONResponse:
        return _refused(422, "invalid_request", "malformed signing request")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/wallets", response_model=None)
    async def wallets(request: Request) -> JSONResponse | list[WalletOut]:
        if not _authorised(request):
            return _refused(401, "unauthorized", "the signer token is required")
        return keyholder.wallets()

    @app.post("/v1/sign", response_model=None)
    async def sign(body: SignRequest, request: Request) -> JSONResponse | SignResponse:
        if not _authorised(request):
            return _refused(401, "unauthorized", "the signer token is required")
        try:
            return await keyholder.sign(body)
        except SigningRefusedError as exc:
            log.warning(
                "signing refused",
                reason=exc.detail,
                network=body.network,
                transaction_id=body.transaction_id,
                withdrawal_ids=body.withdrawal_ids,
            )
            return _refused(403, exc.code, exc.detail)

    return app
