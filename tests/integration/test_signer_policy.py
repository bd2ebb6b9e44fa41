"""What `sluice signer` signs: only what the withdrawal records call for (`keyholder.policy`)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eth_account import Account
from eth_account._utils.legacy_transactions import Transaction as LegacyTransaction
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.db.engine import create_engine, migrate
from sluice.db.transactions import SqlTransactionRepository
from sluice.db.withdrawals import SqlWithdrawalRepository
from sluice.domain.addresses import Address
from sluice.domain.assets import Batching, Network
from sluice.domain.batches import batch_payload
from sluice.domain.fees import FeeModel, FeePolicy
from sluice.domain.transaction import (
    AttemptPurpose,
    TransactionKind,
    TransactionStatus,
)
from sluice.domain.withdrawal import WithdrawalStatus
from sluice.errors import SigningRefusedError
from sluice.keyholder import policy
from sluice.keyholder.app import Keyholder
from sluice.keyholder.grants import Grant, SqlGrantRepository
from sluice.keyholder.policy import Verdict, check
from sluice.keyholder.protocol import SignRequest
from sluice.testing.fakes import FakeChain, FakeClock, LocalSigner
from sluice.testing.pipeline import CHAIN_ID, DEST, HOT_KEY, NET, CountingSigner, Pipeline, wire

ATTACKER = "0x000000000000000000000000000000000000dEaD"
BATCH = "0x5FC8d32690cc91D4c39d9d3abcBD16989F875707"
OTHER_BATCH = "0x0165878A594ca255338adfa4d48449f69242Eb8F"


@pytest.fixture
async def pipeline(engine: AsyncEngine) -> AsyncIterator[Pipeline]:
    p = wire(
        engine, FakeChain(chain_id=CHAIN_ID), CountingSigner(LocalSigner(HOT_KEY)), FakeClock()
    )
    async with p.uow() as uow:
        await uow.transactions.reconcile_nonce(NET, p.signer.address, 0)
        await uow.commit()
    await p.credit("alice", "10")
    try:
        yield p
    finally:
        await p.queue.close()


def _request(p: Pipeline, withdrawal_id: str, **changes: object) -> SignRequest:
    fields: dict[str, object] = {
        "network": NET,
        "wallet": p.signer.address,
        "chain_id": CHAIN_ID,
        "nonce": 0,
        "to": DEST,
        "value": str(10**18),
        "data": "0x",
        "gas": 21_000,
        "max_fee_per_gas": str(3 * 10**9),
        "max_priority_fee_per_gas": str(10**9),
        "transaction_id": "tx_new",
        "kind": TransactionKind.PAYOUT,
        "purpose": AttemptPurpose.PAYLOAD,
        "withdrawal_ids": [withdrawal_id],
    }
    fields.update(changes)
    return SignRequest.model_validate(fields)


async def _check(p: Pipeline, request: SignRequest, network: Network | None = None) -> Verdict:
    async with p.engine.connect() as connection:
        return await check(
            request,
            network=network or p.network,
            withdrawals=SqlWithdrawalRepository(connection),
            transactions=SqlTransactionRepository(connection),
            grants=SqlGrantRepository(connection),
        )


async def _validating(p: Pipeline) -> str:
    wid = await p.submit("alice", "1")
    await p.validate(wid)
    return wid


async def test_a_first_payout_that_matches_the_record_is_signed(pipeline: Pipeline) -> None:
    wid = await _validating(pipeline)
    verdict = await _check(pipeline, _request(pipeline, wid))
    assert (verdict.noop, verdict.withdrawal_ids, verdict.payload.to) == (False, (wid,), DEST)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        pytest.param({"to": ATTACKER}, "differs from the withdrawal record", id="destination"),
        pytest.param(
            {"value": str(2 * 10**18)},
            f"is for {10**18} of native to {DEST}, the payload pays {2 * 10**18}",
            id="amount",
        ),
        pytest.param({"data": "0xa9059cbb"}, "no payment the signer reads", id="data"),
        pytest.param({"chain_id": 1}, "chain id", id="chain"),
        pytest.param({"max_fee_per_gas": str(10**15)}, "cap", id="fee-cap"),
        pytest.param({"gas": 5_000_000}, "gas limit", id="gas"),
        pytest.param({"fee_model": "legacy"}, "takes eip1559 transactions", id="fee-model"),
        pytest.param({"withdrawal_ids": []}, "none was named", id="no-withdrawal"),
        pytest.param({"withdrawal_ids": ["nope"]}, "no withdrawal", id="unknown-withdrawal"),
        pytest.param({"kind": TransactionKind.FILLER}, "no-op", id="filler-paying"),
        pytest.param({"purpose": AttemptPurpose.CANCEL}, "no-op", id="cancel-paying"),
    ],
)
async def test_anything_the_record_does_not_call_for_is_refused(
    pipeline: Pipeline, changes: dict[str, object], reason: str
) -> None:
    wid = await _validating(pipeline)
    with pytest.raises(SigningRefusedError, match=reason):
        await _check(pipeline, _request(pipeline, wid, **changes))


async def test_a_no_op_to_the_wallet_itself_is_always_signable(pipeline: Pipeline) -> None:
    p = pipeline
    noop = _request(p, "", to=p.signer.address, value="0", withdrawal_ids=[])
    verdict = await _check(p, noop.model_copy(update={"kind": TransactionKind.FILLER}))
    assert verdict.noop


async def test_a_withdrawal_not_waiting_to_be_signed_is_refused_unless_a_replacement(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    wid = await _validating(p)
    await p.sign(wid)
    await p.broadcast(wid)
    transaction, _ = await p.transaction(wid)

    with pytest.raises(SigningRefusedError, match="not waiting to be signed"):
        await _check(p, _request(p, wid, nonce=5))
    replacement = _request(p, wid, transaction_id=transaction.id, nonce=transaction.nonce)
    assert not (await _check(p, replacement)).noop
    with pytest.raises(SigningRefusedError, match="not a replacement"):
        await _check(p, replacement.model_copy(update={"nonce": transaction.nonce + 1}))


async def test_a_nonce_held_by_another_transaction_is_refused(pipeline: Pipeline) -> None:
    p = pipeline
    first = await _validating(p)
    await p.sign(first)
    second = await _validating(p)
    with pytest.raises(SigningRefusedError, match="held by another transaction"):
        await _check(p, _request(p, second, nonce=0))


async def _grant(p: Pipeline, withdrawal_id: str, nonce: int, tx_hash: str) -> None:
    async with p.engine.begin() as connection:
        await SqlGrantRepository(connection).add(
            Grant(
                hash=tx_hash,
                withdrawal_id=withdrawal_id,
                network=NET,
                wallet=p.signer.address,
                nonce=nonce,
                transaction_id="tx_lost",
                at=datetime.now(UTC),
            )
        )


async def test_a_second_nonce_waits_until_the_first_signature_can_never_be_mined(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    wid = await _validating(p)
    # Signed at nonce 0 once, and the process died before storing it (the signature is out).
    await _grant(p, wid, 0, "0x" + "ab" * 32)
    with pytest.raises(SigningRefusedError, match="not provably spent"):
        await _check(p, _request(p, wid, nonce=1))

    # Another withdrawal's transaction took nonce 0 and is final: the old signature is dead.
    other = await _validating(p)
    await p.sign(other)
    await p.broadcast(other)
    holder, [attempt] = await p.transaction(other)
    assert holder.nonce == 0
    p.chain.mine(attempt.hash)
    await p.confirm(other)
    holder, _ = await p.transaction(other)
    assert holder.status is TransactionStatus.CONFIRMED
    assert not (await _check(p, _request(p, wid, nonce=1))).noop


async def test_a_second_nonce_is_refused_when_the_first_signature_was_the_one_mined(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    wid = await _validating(p)
    await p.sign(wid)
    await p.broadcast(wid)
    transaction, [attempt] = await p.transaction(wid)
    await _grant(p, wid, transaction.nonce, attempt.hash)
    p.chain.mine(attempt.hash)
    await p.confirm(wid)

    with pytest.raises(SigningRefusedError):
        await _check(p, _request(p, wid, nonce=transaction.nonce + 1))


# ── Several withdrawals named ───────────────────────────────────────────────────────────────


async def test_each_named_withdrawal_must_exist_be_named_once_and_be_paid(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    wid = await _validating(p)
    twin = await _validating(p)  # the same destination, amount and asset

    with pytest.raises(SigningRefusedError, match=f"withdrawal {twin} .* is not paid"):
        await _check(p, _request(p, wid, withdrawal_ids=[wid, twin]))
    with pytest.raises(SigningRefusedError, match=f"withdrawal {wid} is named more than once"):
        await _check(p, _request(p, wid, withdrawal_ids=[wid, wid]))
    with pytest.raises(SigningRefusedError, match="no withdrawal 'nope'"):
        await _check(p, _request(p, wid, withdrawal_ids=[wid, "nope"]))
    assert (await _check(p, _request(p, twin, withdrawal_ids=[twin]))).withdrawal_ids == (twin,)


def _batching(p: Pipeline, contract: str = BATCH) -> Network:
    """The pipeline's network with a batch contract for its hot wallet."""
    wallet = Address(p.signer.address)
    return dataclasses.replace(
        p.network, batching=Batching(contracts=((wallet, Address(contract)),))
    )


def _batch(
    p: Pipeline, *withdrawal_ids: str, pays: int | None = None, **changes: object
) -> SignRequest:
    """A request to sign a batch paying 1 ETH to DEST ``pays`` times (default: once each)."""
    count = len(withdrawal_ids) if pays is None else pays
    payload = batch_payload(Address(BATCH), None, [(Address(DEST), 10**18)] * count)
    fields: dict[str, object] = {
        "to": BATCH,
        "value": str(payload.value),
        "data": "0x" + payload.data.hex(),
        "gas": 100_000,
        "withdrawal_ids": list(withdrawal_ids),
    }
    fields.update(changes)
    return _request(p, withdrawal_ids[0], **fields)


@pytest.fixture
async def book(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """The signer's own database, as `sluice signer` keeps it beside the records."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'signer.db'}"
    await migrate(url)
    engine = create_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


def _keyholder(p: Pipeline, book: AsyncEngine, network: Network | None = None) -> Keyholder:
    key = LocalSigner(HOT_KEY)
    return Keyholder(
        networks={NET: network or p.network},
        signers={(NET, key.address): key},
        draining=frozenset(),
        records=p.engine,
        book=book,
        token="t" * 40,
    )


async def test_a_payload_paying_several_withdrawals_is_signed_once_and_granted_for_each(
    pipeline: Pipeline, book: AsyncEngine
) -> None:
    p = pipeline
    wid, twin = await _validating(p), await _validating(p)

    signed = await _keyholder(p, book, _batching(p)).sign(_batch(p, wid, twin))

    async with book.connect() as connection:
        grants = SqlGrantRepository(connection)
        granted = [await grants.for_withdrawal(w) for w in (wid, twin)]
    assert [[(g.hash, g.withdrawal_id, g.nonce) for g in each] for each in granted] == [
        [(signed.hash, wid, 0)],
        [(signed.hash, twin, 0)],
    ]


async def test_every_rule_applies_to_each_withdrawal_named(pipeline: Pipeline) -> None:
    p = pipeline
    network = _batching(p)
    wid, twin = await _validating(p), await _validating(p)
    both = _batch(p, wid, twin, nonce=1)
    assert not (await _check(p, both, network)).noop

    # The second one was signed at nonce 0 before, and that signature may still be mined.
    await _grant(p, twin, 0, "0x" + "cd" * 32)
    with pytest.raises(SigningRefusedError, match=f"withdrawal {twin} was signed at nonce 0"):
        await _check(p, both, network)

    # The second one is no longer waiting to be signed.
    third = await _validating(p)
    await p.sign(third)
    with pytest.raises(SigningRefusedError, match=f"withdrawal {third} is SIGNED"):
        await _check(p, _batch(p, wid, third, nonce=5), network)


async def test_a_replacement_names_only_withdrawals_its_transaction_carries(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    wid = await _validating(p)
    await p.sign(wid)
    await p.broadcast(wid)
    transaction, _ = await p.transaction(wid)
    other = await _validating(p)
    # A batch at the transaction's nonce, naming a withdrawal it does not carry.
    replacement = _batch(p, wid, other, transaction_id=transaction.id, nonce=transaction.nonce)

    with pytest.raises(SigningRefusedError, match="not a replacement of the withdrawals'"):
        await _check(p, replacement, _batching(p))


# ── Batches ───────────────────────────────────────────────────────────────────────────────────


async def test_a_batch_to_the_wallets_own_contract_paying_each_named_withdrawal_is_signed(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    wids = [await _validating(p) for _ in range(3)]
    verdict = await _check(p, _batch(p, *wids), _batching(p))
    assert (verdict.noop, verdict.withdrawal_ids, verdict.payload.to) == (False, tuple(wids), BATCH)


async def test_a_batch_through_a_contract_not_the_wallets_own_is_refused(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    wid, twin = await _validating(p), await _validating(p)
    network = _batching(p, contract=OTHER_BATCH)
    network = dataclasses.replace(
        network,
        batching=Batching(
            contracts=(
                *network.batching.contracts,
                (Address(ATTACKER), Address(BATCH)),  # someone else's contract
            )
        ),
    )
    with pytest.raises(SigningRefusedError, match=r"is not hot wallet .* batch contract"):
        await _check(p, _batch(p, wid, twin), network)


async def test_a_batch_through_the_wallets_contract_is_signable_with_batching_turned_off(
    pipeline: Pipeline,
) -> None:
    # Turned off while a batch is in flight: its replacement must still be signed.
    p = pipeline
    wid, twin = await _validating(p), await _validating(p)
    network = _batching(p)
    off = dataclasses.replace(
        network, batching=dataclasses.replace(network.batching, enabled=False)
    )
    verdict = await _check(p, _batch(p, wid, twin), off)
    assert verdict.withdrawal_ids == (wid, twin)


async def test_a_batch_may_use_a_payouts_gas_for_each_payment_and_no_more(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    wid, twin = await _validating(p), await _validating(p)
    network = _batching(p)
    assert not (await _check(p, _batch(p, wid, twin, gas=2_000_000), network)).noop
    with pytest.raises(SigningRefusedError, match="gas limit"):
        await _check(p, _batch(p, wid, twin, gas=2_000_001), network)
    assert policy.gas_cap(100) == 16_777_216  # EIP-7825's cap bounds any batch


@pytest.mark.parametrize(
    ("pays", "reason"),
    [
        pytest.param(3, "which no named withdrawal calls for", id="one-more"),
        pytest.param(1, "is not paid by the payload", id="one-less"),
    ],
)
async def test_a_batch_that_pays_other_than_its_withdrawals_is_refused(
    pipeline: Pipeline, pays: int, reason: str
) -> None:
    p = pipeline
    wid, twin = await _validating(p), await _validating(p)
    with pytest.raises(SigningRefusedError, match=reason):
        await _check(p, _batch(p, wid, twin, pays=pays), _batching(p))


async def test_a_malformed_batch_call_is_refused(pipeline: Pipeline) -> None:
    p = pipeline
    wid, twin = await _validating(p), await _validating(p)
    request = _batch(p, wid, twin)
    padded = _batch(p, wid, twin, data=request.data + "00" * 32)
    with pytest.raises(SigningRefusedError, match="not canonically encoded"):
        await _check(p, padded, _batching(p))


async def test_a_withdrawal_whose_batch_reverted_may_be_signed_again(pipeline: Pipeline) -> None:
    p = pipeline
    wid = await _validating(p)
    await p.sign(wid)
    await p.broadcast(wid)
    transaction, [attempt] = await p.transaction(wid)
    await _grant(p, wid, transaction.nonce, attempt.hash)
    p.chain.mine(attempt.hash, succeeded=False)
    await p.confirm(wid)
    reverted, _ = await p.transaction(wid)
    assert reverted.status is TransactionStatus.REVERTED
    # As a split batch leaves it: waiting to be signed again, its reverted signature spent.
    async with p.uow() as uow:
        withdrawal = await uow.withdrawals.get(wid, lock=True)
        assert withdrawal is not None
        withdrawal.status, withdrawal.transaction_id = WithdrawalStatus.VALIDATING, None
        await uow.withdrawals.save(withdrawal)
        await uow.commit()

    verdict = await _check(p, _request(p, wid, nonce=transaction.nonce + 1))
    assert verdict.withdrawal_ids == (wid,)


async def test_a_legacy_network_gets_legacy_signatures_only(
    pipeline: Pipeline, book: AsyncEngine
) -> None:
    p = pipeline
    legacy = dataclasses.replace(p.network, fees=FeePolicy(model=FeeModel.LEGACY))
    keyholder = _keyholder(p, book, legacy)
    wid = await _validating(p)
    gas_price = str(3 * 10**9)

    with pytest.raises(SigningRefusedError, match="takes legacy transactions, not eip1559"):
        await keyholder.sign(_request(p, wid))
    signed = await keyholder.sign(
        _request(
            p,
            wid,
            fee_model="legacy",
            max_fee_per_gas=gas_price,
            max_priority_fee_per_gas=gas_price,
        )
    )

    raw = bytes.fromhex(signed.raw[2:])
    assert raw[0] >= 0xC0  # an RLP list: a legacy transaction, not a typed one
    assert Account.recover_transaction(raw) == p.signer.address
    fields = LegacyTransaction.from_bytes(raw).as_dict()
    assert fields["gasPrice"] == 3 * 10**9
    assert fields["v"] in {CHAIN_ID * 2 + 35, CHAIN_ID * 2 + 36}  # EIP-155
