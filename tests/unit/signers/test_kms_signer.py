"""`KmsSigner.sign` awaits its KMS client: the event loop runs meanwhile, one client is opened for
every signature, and `close` releases it. The client here is a stand-in that signs the digest
with a local secp256k1 key as KMS does (DER, random k, either s)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Self

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from eth_account import Account
from eth_account._utils.legacy_transactions import Transaction as LegacyTransaction

from sluice.devnet.anvil import DEV_ACCOUNTS
from sluice.domain.fees import FeeModel
from sluice.domain.transaction import NATIVE_TRANSFER_GAS, Fees, UnsignedTransaction
from sluice.ports import Signer
from sluice.signers.eip1559 import signing_hash
from sluice.signers.kms import KmsSigner
from sluice.testing.fakes import LocalSigner

DEV = DEV_ACCOUNTS[2]


class _LocalKms:
    """An aiobotocore KMS client stand-in: ``sign`` waits for `release`, then signs."""

    def __init__(self) -> None:
        self._key = ec.derive_private_key(int(DEV.private_key, 16), ec.SECP256K1())
        self.release = asyncio.Event()
        self.requests: list[dict[str, Any]] = []
        self.opened = 0
        self.closed = 0

    async def __aenter__(self) -> Self:
        self.opened += 1
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.closed += 1

    async def sign(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        await self.release.wait()
        digest = request["Message"]
        return {"Signature": self._key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))}


def _signer(kms: _LocalKms) -> KmsSigner:
    return KmsSigner(key_id="key-1", address=DEV.address, open_client=lambda: kms)


def _transaction(nonce: int) -> UnsignedTransaction:
    return UnsignedTransaction(
        chain_id=31337,
        nonce=nonce,
        to=DEV_ACCOUNTS[1].address,
        value=10**15,
        data=b"",
        gas=NATIVE_TRANSFER_GAS,
        fees=Fees(max_fee_per_gas=3 * 10**9, max_priority_fee_per_gas=10**9),
    )


async def test_a_kms_signature_is_awaited_while_the_event_loop_runs_on() -> None:
    kms = _LocalKms()
    signer: Signer = _signer(kms)

    pending = asyncio.create_task(signer.sign(_transaction(0)))
    for _ in range(5):
        await asyncio.sleep(0)  # this coroutine runs while KMS has not answered

    assert not pending.done()
    assert len(kms.requests) == 1
    assert kms.requests[0]["MessageType"] == "DIGEST"
    assert kms.requests[0]["KeyId"] == "key-1"
    kms.release.set()
    signed = await pending
    assert Account.recover_transaction(signed.raw) == DEV.address
    await signer.close()


async def test_one_kms_client_serves_every_signature_until_close() -> None:
    kms = _LocalKms()
    kms.release.set()
    signer = _signer(kms)

    first = await asyncio.gather(*(signer.sign(_transaction(n)) for n in range(4)))
    assert (kms.opened, kms.closed) == (1, 0)

    await signer.close()
    assert (kms.opened, kms.closed) == (1, 1)
    again = await signer.sign(_transaction(4))  # a signature after close opens a new client
    await signer.close()

    assert (kms.opened, kms.closed) == (2, 2)
    assert [Account.recover_transaction(s.raw) for s in [*first, again]] == [DEV.address] * 5


async def test_closing_a_kms_signer_that_never_signed_opens_nothing() -> None:
    kms = _LocalKms()

    await _signer(kms).close()

    assert (kms.opened, kms.closed) == (0, 0)


async def test_a_legacy_transaction_is_signed_as_eip155_type_0() -> None:
    kms = _LocalKms()
    kms.release.set()
    signer = _signer(kms)
    local = LocalSigner(DEV.private_key)
    parities = set()
    # KMS picks a random k: several signatures meet both recovery ids.
    for nonce in range(8):
        transaction = dataclasses.replace(
            _transaction(nonce), fees=Fees.legacy(5 * 10**9), fee_model=FeeModel.LEGACY
        )

        signed = await signer.sign(transaction)

        assert kms.requests[-1]["Message"] == signing_hash(transaction)
        assert signed.raw[0] >= 0xC0  # an RLP list: type 0
        assert Account.recover_transaction(signed.raw) == DEV.address
        decoded = LegacyTransaction.from_bytes(signed.raw)
        expected = LegacyTransaction.from_bytes((await local.sign(transaction)).raw)
        assert decoded.as_dict() | {"r": 0, "s": 0, "v": 0} == (
            expected.as_dict() | {"r": 0, "s": 0, "v": 0}
        )
        assert decoded.v in {31337 * 2 + 35, 31337 * 2 + 36}  # EIP-155
        parities.add(decoded.v)
    await signer.close()

    assert len(parities) == 2
