"""`RemoteSigner` and `SignerClient` against a stand-in `sluice signer` on a Unix socket, served by
uvicorn in the test's own event loop: a signature is awaited (a blocking client could not be
answered by a server in its own loop), and each answer of the signer maps to its error."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from eth_account import Account
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sluice.devnet.anvil import DEV_ACCOUNTS
from sluice.domain.addresses import Address
from sluice.domain.fees import FeeModel, Fees
from sluice.domain.transaction import (
    NATIVE_TRANSFER_GAS,
    AttemptPurpose,
    TransactionKind,
    UnsignedTransaction,
)
from sluice.errors import ConfigurationError, SigningRefusedError, TransientError
from sluice.keyholder.protocol import SignRequest
from sluice.ports import Signer, SigningContext
from sluice.signers.remote import RemoteSigner, SignerClient
from sluice.testing.fakes import LocalSigner

TOKEN = "t" * 40
WALLET = DEV_ACCOUNTS[1]
CONTEXT = SigningContext(
    network="devnet",
    transaction_id="tx_1",
    kind=TransactionKind.PAYOUT,
    purpose=AttemptPurpose.PAYLOAD,
    withdrawal_ids=("wd_1",),
)


@dataclass
class _Keyholder:
    """What the stand-in signer answers: signatures, after ``release`` is set, or ``status``."""

    key: LocalSigner = field(default_factory=lambda: LocalSigner(WALLET.private_key))
    release: asyncio.Event = field(default_factory=asyncio.Event)
    received: asyncio.Event = field(default_factory=asyncio.Event)
    status: int = 200
    requests: list[SignRequest] = field(default_factory=list)

    async def sign(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"code": "unauthorized", "detail": "no"}, status_code=401)
        body = SignRequest.model_validate(await request.json())
        self.requests.append(body)
        self.received.set()
        if self.status == 403:
            detail = {"code": "signing_refused", "detail": "the payload differs"}
            return JSONResponse(detail, status_code=403)
        if self.status != 200:
            return Response(status_code=self.status)
        await self.release.wait()
        signed = await self.key.sign(
            UnsignedTransaction(
                chain_id=body.chain_id,
                nonce=body.nonce,
                to=Address(body.to),
                value=int(body.value),
                data=bytes.fromhex(body.data[2:]),
                gas=body.gas,
                fees=Fees(
                    max_fee_per_gas=int(body.max_fee_per_gas),
                    max_priority_fee_per_gas=int(body.max_priority_fee_per_gas),
                ),
                fee_model=body.fee_model,
            )
        )
        return JSONResponse({"raw": "0x" + signed.raw.hex(), "hash": signed.hash})

    async def wallets(self, _request: Request) -> Response:
        return JSONResponse([{"network": "devnet", "address": WALLET.address, "draining": False}])


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[_Keyholder, str]]:
    keyholder = _Keyholder()
    app = Starlette(
        routes=[
            Route("/v1/sign", keyholder.sign, methods=["POST"]),
            Route("/v1/wallets", keyholder.wallets, methods=["GET"]),
        ]
    )
    path = tmp_path / "signer.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(1000):
        if server.started:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the stand-in signer did not start")
    try:
        yield keyholder, f"unix://{path}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def _transaction() -> UnsignedTransaction:
    return UnsignedTransaction(
        chain_id=31337,
        nonce=4,
        to=DEV_ACCOUNTS[0].address,
        value=10**15,
        data=b"",
        gas=NATIVE_TRANSFER_GAS,
        fees=Fees(max_fee_per_gas=3 * 10**9, max_priority_fee_per_gas=10**9),
    )


@contextlib.asynccontextmanager
async def _remote(url: str, token: str = TOKEN) -> AsyncIterator[RemoteSigner]:
    client = SignerClient(url, token)
    try:
        yield RemoteSigner(client, "devnet", WALLET.address)
    finally:
        await client.close()


async def test_a_remote_signature_is_awaited_and_says_what_it_is_for(
    served: tuple[_Keyholder, str],
) -> None:
    keyholder, url = served
    async with _remote(url) as remote:
        signer: Signer = remote
        pending = asyncio.create_task(signer.sign(_transaction(), CONTEXT))
        # The server runs in this loop: it can answer only because the client awaits.
        await asyncio.wait_for(keyholder.received.wait(), timeout=10)
        assert not pending.done()
        keyholder.release.set()
        signed = await pending

    assert Account.recover_transaction(signed.raw) == WALLET.address
    (request,) = keyholder.requests
    assert (request.transaction_id, request.withdrawal_ids) == ("tx_1", ["wd_1"])
    assert (request.network, request.wallet, request.nonce) == ("devnet", WALLET.address, 4)


async def test_a_legacy_transaction_is_asked_for_as_one(served: tuple[_Keyholder, str]) -> None:
    keyholder, url = served
    keyholder.release.set()
    legacy = dataclasses.replace(
        _transaction(), fees=Fees.legacy(5 * 10**9), fee_model=FeeModel.LEGACY
    )
    async with _remote(url) as remote:
        signed = await remote.sign(legacy, CONTEXT)

    (request,) = keyholder.requests
    assert request.fee_model is FeeModel.LEGACY
    assert (request.max_fee_per_gas, request.max_priority_fee_per_gas) == (str(5 * 10**9),) * 2
    assert signed.raw[0] >= 0xC0  # an RLP list: type 0
    assert Account.recover_transaction(signed.raw) == WALLET.address


def test_a_request_without_a_fee_model_is_an_eip1559_one() -> None:
    fields = {
        "network": "devnet",
        "wallet": WALLET.address,
        "chain_id": 31337,
        "nonce": 0,
        "to": WALLET.address,
        "value": "0",
        "data": "0x",
        "gas": NATIVE_TRANSFER_GAS,
        "max_fee_per_gas": "3",
        "max_priority_fee_per_gas": "1",
        "transaction_id": "tx_1",
        "kind": "PAYOUT",
        "purpose": "PAYLOAD",
    }
    assert SignRequest.model_validate(fields).fee_model is FeeModel.EIP1559
    assert SignRequest.model_validate({**fields, "fee_model": "legacy"}).fee_model is (
        FeeModel.LEGACY
    )


async def test_the_wallet_list_is_a_start_up_call(served: tuple[_Keyholder, str]) -> None:
    _, url = served
    client = SignerClient(url, TOKEN)
    try:
        (wallet,) = await asyncio.to_thread(client.wallets)  # blocking: off this loop
    finally:
        await client.close()

    assert (wallet.network, wallet.address, wallet.draining) == ("devnet", WALLET.address, False)


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (403, SigningRefusedError, "the signer refused: the payload differs"),
        (500, TransientError, "the signer answered 500"),
    ],
)
async def test_each_answer_of_the_signer_is_its_error(
    served: tuple[_Keyholder, str], status: int, error: type[Exception], message: str
) -> None:
    keyholder, url = served
    keyholder.status = status
    async with _remote(url) as remote:
        with pytest.raises(error, match=message):
            await remote.sign(_transaction(), CONTEXT)


async def test_a_wrong_token_is_a_configuration_error(served: tuple[_Keyholder, str]) -> None:
    _, url = served
    async with _remote(url, token="w" * 40) as remote:
        with pytest.raises(ConfigurationError, match="SLUICE_SIGNER_TOKEN"):
            await remote.sign(_transaction(), CONTEXT)


async def test_an_unreachable_signer_is_a_transient_error(tmp_path: Path) -> None:
    async with _remote(f"unix://{tmp_path / 'nobody.sock'}") as remote:
        with pytest.raises(TransientError, match="unreachable"):
            await remote.sign(_transaction(), CONTEXT)


async def test_a_remote_signature_needs_its_context(tmp_path: Path) -> None:
    async with _remote(f"unix://{tmp_path / 'nobody.sock'}") as remote:
        with pytest.raises(SigningRefusedError, match="what it is for"):
            await remote.sign(_transaction())
