"""`FakeChain`'s fee reads and receipts' fees, for legacy and EIP-1559 transactions alike."""

from __future__ import annotations

import pytest

from sluice.devnet.anvil import DEV_ACCOUNTS
from sluice.domain.addresses import Address
from sluice.domain.fees import GWEI, FeeMarket, FeeModel, Fees
from sluice.domain.transaction import NATIVE_TRANSFER_GAS, UnsignedTransaction
from sluice.errors import CallRevertedError
from sluice.ports import ChainClient
from sluice.testing.fakes import FakeChain, LocalSigner

ORACLE = Address("0x420000000000000000000000000000000000000F")
SIGNER = LocalSigner(DEV_ACCOUNTS[2].private_key)


def _transaction(nonce: int, fees: Fees, model: FeeModel) -> UnsignedTransaction:
    return UnsignedTransaction(
        chain_id=31337,
        nonce=nonce,
        to=Address(DEV_ACCOUNTS[1].address),
        value=1,
        data=b"",
        gas=NATIVE_TRANSFER_GAS,
        fees=fees,
        fee_model=model,
    )


async def test_the_fee_reads_answer_what_the_test_set() -> None:
    market = FeeMarket(base_fee=7 * GWEI, priority_fee=GWEI, rewards=(1, 2, 3))
    fake = FakeChain(market=market, gas_price=4 * GWEI, l1_fee=900)
    chain: ChainClient = fake  # mypy checks the port here

    assert await chain.fee_market(blocks=5, percentiles=(10, 50, 85)) == market
    assert await chain.gas_price() == 4 * GWEI
    assert await chain.l1_fee(ORACLE, b"\x02unsigned") == 900
    assert fake.fee_history_asks == [(5, (10, 50, 85))]
    assert fake.l1_fee_asks == [(ORACLE, b"\x02unsigned")]
    fake.l1_fee_error = CallRevertedError("eth_call failed: execution_reverted")
    with pytest.raises(CallRevertedError):
        await chain.l1_fee(ORACLE, b"")


async def test_a_mined_legacy_transaction_paid_its_gas_price() -> None:
    chain = FakeChain(l1_fee=500)
    signed = await SIGNER.sign(_transaction(0, Fees.legacy(6 * GWEI), FeeModel.LEGACY))

    await chain.send_raw_transaction(signed.raw)
    receipt = chain.mine(signed.hash)

    sent = chain.transactions[signed.hash]
    assert (sent.legacy, sent.sender, sent.nonce) == (True, SIGNER.address, 0)
    assert receipt.effective_gas_price == 6 * GWEI
    assert receipt.l1_fee == 500
    assert receipt.fee_paid == NATIVE_TRANSFER_GAS * 6 * GWEI + 500


async def test_a_mined_eip1559_transaction_paid_the_base_fee_and_its_tip_within_its_cap() -> None:
    chain = FakeChain(market=FeeMarket(base_fee=10 * GWEI, priority_fee=GWEI))
    tipped = await SIGNER.sign(_transaction(0, Fees(20 * GWEI, 2 * GWEI), FeeModel.EIP1559))
    capped = await SIGNER.sign(_transaction(1, Fees(11 * GWEI, 2 * GWEI), FeeModel.EIP1559))
    for signed in (tipped, capped):
        await chain.send_raw_transaction(signed.raw)

    first, second = chain.mine(tipped.hash), chain.mine(capped.hash)

    assert not chain.transactions[tipped.hash].legacy
    assert first.effective_gas_price == 12 * GWEI
    assert second.effective_gas_price == 11 * GWEI
    assert (first.l1_fee, first.fee_paid) == (0, NATIVE_TRANSFER_GAS * 12 * GWEI)


async def test_a_receipts_fees_can_be_set() -> None:
    chain = FakeChain()
    signed = await SIGNER.sign(_transaction(0, Fees.legacy(GWEI), FeeModel.LEGACY))
    await chain.send_raw_transaction(signed.raw)

    receipt = chain.mine(signed.hash, gas_used=30_000, effective_gas_price=5, l1_fee=7)

    assert (receipt.effective_gas_price, receipt.l1_fee) == (5, 7)
    assert receipt.fee_paid == 30_000 * 5 + 7


async def test_legacy_transactions_keep_their_nonce_order() -> None:
    chain = FakeChain(auto_mine=True)
    signed = [
        await SIGNER.sign(_transaction(n, Fees.legacy(GWEI), FeeModel.LEGACY)) for n in (1, 0)
    ]
    for each in signed:
        await chain.send_raw_transaction(each.raw)

    assert [t.nonce for t in chain.mined_by(SIGNER.address)] == [0, 1]
