"""`RemoteSigner`: a hot wallet whose key lives in `sluice signer`, another process.

The API and worker processes then hold no key material. Each signature is one HTTP request over
the signer's Unix socket (or 127.0.0.1), authenticated with ``SLUICE_SIGNER_TOKEN``, carrying the
transaction and what it is for (`SigningContext`); the signer checks it against the withdrawal
records and may refuse (`SigningRefusedError`, retried by the worker).

The request is awaited (`httpx.AsyncClient`): the caller's event loop goes on while it waits
(about a millisecond, bounded by `TIMEOUT_S`) with the wallet's nonce counter locked.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from sluice.domain.addresses import Address
from sluice.domain.transaction import SignedTransaction, UnsignedTransaction
from sluice.errors import ConfigurationError, SigningRefusedError, TransientError
from sluice.keyholder.protocol import SignRequest, SignResponse, WalletOut
from sluice.ports import SigningContext

#: Seconds a signing request may take (the signer reads a few rows and signs).
TIMEOUT_S = 10.0


class SignerClient:
    """An HTTP client of `sluice signer`.

    `sign` is awaited on one `httpx.AsyncClient` (its connections are opened in the event loop
    that signs; `close` it there). `wallets` is a start-up call (``sluice serve``, ``sluice
    worker``, ``sluice config check`` ask once): synchronous, on a connection of its own.
    """

    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            self._uds: str | None = parts.path
            self._base = "http://signer"
        elif parts.scheme == "http" and parts.hostname:
            self._uds = None
            self._base = f"http://{parts.netloc}"
        else:
            raise ConfigurationError("SLUICE_SIGNER_URL is unix:///path or http://HOST:PORT")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._client = httpx.AsyncClient(
            base_url=self._base,
            transport=httpx.AsyncHTTPTransport(uds=self._uds),
            headers=self._headers,
            timeout=TIMEOUT_S,
            trust_env=False,
        )

    def wallets(self) -> list[WalletOut]:
        """The wallets the signer holds (blocking: called at start, before any work)."""
        with httpx.Client(
            base_url=self._base,
            transport=httpx.HTTPTransport(uds=self._uds),
            headers=self._headers,
            timeout=TIMEOUT_S,
            trust_env=False,
        ) as client:
            try:
                response = _checked(client.get("/v1/wallets"))
            except httpx.HTTPError as exc:
                raise _unreachable(exc) from None
        try:
            return [WalletOut.model_validate(w) for w in response.json()]
        except (ValidationError, ValueError, TypeError):
            raise TransientError("the signer answered something that is not wallets") from None

    async def sign(self, request: SignRequest) -> SignResponse:
        """One signature, or `SigningRefusedError`."""
        try:
            response = _checked(
                await self._client.post("/v1/sign", json=request.model_dump(mode="json"))
            )
        except httpx.HTTPError as exc:
            raise _unreachable(exc) from None
        try:
            return SignResponse.model_validate(response.json())
        except (ValidationError, ValueError):
            raise TransientError("the signer answered something that is not a signature") from None

    async def close(self) -> None:
        """Release the signing connections."""
        await self._client.aclose()


def _unreachable(exc: httpx.HTTPError) -> TransientError:
    return TransientError(f"the signer is unreachable ({type(exc).__name__})")


def _checked(response: httpx.Response) -> httpx.Response:
    """The response if it is a 200; the error its status means otherwise."""
    if response.status_code == 403:
        raise SigningRefusedError(f"the signer refused: {_detail(response)}")
    if response.status_code == 401:
        raise ConfigurationError("the signer refused SLUICE_SIGNER_TOKEN")
    if response.status_code != 200:
        raise TransientError(f"the signer answered {response.status_code}")
    return response


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return "no reason given"
    return detail[:300] if isinstance(detail, str) else "no reason given"


class RemoteSigner:
    """A `sluice.ports.Signer` whose key is held by `sluice signer`."""

    __slots__ = ("_address", "_client", "_network")

    def __init__(self, client: SignerClient, network: str, address: Address) -> None:
        self._client = client
        self._network = network
        self._address = address

    @property
    def address(self) -> Address:
        """The hot wallet's address."""
        return self._address

    async def sign(
        self, transaction: UnsignedTransaction, context: SigningContext | None = None
    ) -> SignedTransaction:
        """Ask the signer; it needs the context to check the request against the records.

        A contract creation (``to`` None) is refused here: `sluice signer` signs payouts and
        no-ops only (its requests always name a ``to``)."""
        if context is None:
            raise SigningRefusedError("a remote signature needs to say what it is for")
        if transaction.to is None:
            raise SigningRefusedError(
                "sluice signer signs payouts only, never a contract creation: deploy where the "
                "hot wallet's key is (without SLUICE_SIGNER_URL)"
            )
        answer = await self._client.sign(
            SignRequest(
                network=context.network,
                wallet=self._address,
                chain_id=transaction.chain_id,
                nonce=transaction.nonce,
                to=transaction.to,
                value=str(transaction.value),
                data="0x" + transaction.data.hex(),
                gas=transaction.gas,
                max_fee_per_gas=str(transaction.fees.max_fee_per_gas),
                max_priority_fee_per_gas=str(transaction.fees.max_priority_fee_per_gas),
                fee_model=transaction.fee_model,
                transaction_id=context.transaction_id,
                kind=context.kind,
                purpose=context.purpose,
                withdrawal_ids=list(context.withdrawal_ids),
            )
        )
        return SignedTransaction(raw=bytes.fromhex(answer.raw[2:]), hash=answer.hash)

    async def close(self) -> None:
        """Nothing of its own: the `SignerClient` is shared by a process's wallets and closed
        with it."""

    def __repr__(self) -> str:
        return f"RemoteSigner(network={self._network!r}, address={self._address!r})"
