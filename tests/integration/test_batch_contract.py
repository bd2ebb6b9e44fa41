"""The BatchPayout contract (contracts/BatchPayout.sol) on the pinned Anvil.

It pays many withdrawals in one transaction, for its owner only, atomically: these tests check
what it pays, the `Paid` events, and each way a batch is refused (the custom error decoded from
the revert data of ``eth_estimateGas`` or ``eth_call``, and, sent with a fixed gas limit, that a
reverted batch paid nobody). As in test_test_contracts_on_anvil.py, a fresh key per module,
funded by one of Anvil's default accounts, deploys everything over plain JSON-RPC.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest
from eth_abi.abi import decode, encode
from eth_account import Account
from eth_utils.crypto import keccak

from sluice.devnet.anvil import DEV_ACCOUNTS, AnvilProcess
from sluice.devnet.artifacts import load_demo_token
from sluice.domain.addresses import Address
from sluice.testing.contracts import (
    TRANSFER_TOPIC,
    BatchError,
    ChainSender,
    RpcError,
    TxReceipt,
    approve,
    decode_batch_error,
    deploy_batch_payout,
    deploy_blocking_token,
    deploy_false_token,
    deploy_invalid_receiver,
    deploy_no_return_token,
    deploy_reentrant_receiver,
    deploy_reverting_receiver,
    load_batch_payout,
    pay_native,
    pay_native_calldata,
    pay_token,
    pay_token_calldata,
    set_blocked,
    token_balance,
)

ETHER = 10**18
TOKEN = 10**18  # one token of 18 decimals
SUPPLY = 1_000_000 * TOKEN
UNLIMITED = 2**256 - 1
#: Enough for a few payments and their failure; a reverted batch is sent with it to mine it.
BATCH_GAS = 1_000_000
#: EIP-7825 (Osaka): the most gas one transaction may use.
EIP_7825_TX_GAS_CAP = 2**24
#: topic0 of ReentrantReceiver's ``ReentryFailed(bytes4,bytes)``: a call back that failed.
REENTRY_FAILED_TOPIC = "0x" + keccak(text="ReentryFailed(bytes4,bytes)").hex()


def _fresh_address() -> Address:
    return Address(Account.create().address)


def _fresh_addresses(count: int) -> list[Address]:
    return [_fresh_address() for _ in range(count)]


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def _paid_indexes(receipt: TxReceipt, batch: str) -> list[int]:
    """The index of each Paid log of the receipt, in log order (Paid is the batch contract's
    only log: no topic, the index as 4 bytes big-endian)."""
    indexes = []
    for log in receipt.logs:
        if not log.topics:
            assert log.address == batch
            data = bytes.fromhex(log.data.removeprefix("0x"))
            assert len(data) == 4
            indexes.append(int.from_bytes(data, "big"))
    return indexes


def _estimate_error(sender: ChainSender, to: str, data: bytes, value: int = 0) -> BatchError:
    """The BatchPayout error ``eth_estimateGas`` answers for this call (it must revert)."""
    request = {"from": sender.address, "to": to, "data": "0x" + data.hex(), "value": hex(value)}
    with pytest.raises(RpcError) as excinfo:
        sender.rpc("eth_estimateGas", [request])
    error = decode_batch_error(excinfo.value.revert_data)
    assert error is not None, f"not a BatchPayout error: {excinfo.value} {excinfo.value.data}"
    return error


def _call_error(sender: ChainSender, to: str, data: bytes, *, value: int, gas: int) -> BatchError:
    """The BatchPayout error ``eth_call`` with ``gas`` answers for this call (it must revert)."""
    request = {
        "from": sender.address,
        "to": to,
        "data": "0x" + data.hex(),
        "value": hex(value),
        "gas": hex(gas),
    }
    with pytest.raises(RpcError) as excinfo:
        sender.rpc("eth_call", [request, "latest"])
    error = decode_batch_error(excinfo.value.revert_data)
    assert error is not None, f"not a BatchPayout error: {excinfo.value} {excinfo.value.data}"
    return error


def _call_uint(sender: ChainSender, contract: str, signature: str) -> int:
    (value,) = decode(["uint256"], sender.call(contract, _selector(signature)))
    return int(value)


@pytest.fixture(scope="module")
def funded_key(anvil: AnvilProcess) -> str:
    """A new key holding 1,000 ETH, sent to it by Anvil's third default account."""
    account = Account.create()
    with ChainSender(anvil.rpc_url, DEV_ACCOUNTS[2].private_key) as faucet:
        assert faucet.send(account.address, value=1_000 * ETHER).succeeded
    return "0x" + bytes(account.key).hex()


@pytest.fixture
def sender(anvil: AnvilProcess, funded_key: str) -> Iterator[ChainSender]:
    """The batch contracts' owner (and the tokens')."""
    with ChainSender(anvil.rpc_url, funded_key) as chain_sender:
        yield chain_sender


@pytest.fixture
def stranger(anvil: AnvilProcess, sender: ChainSender) -> Iterator[ChainSender]:
    """Another account, holding 10 ETH: not the owner of anything."""
    key = "0x" + bytes(Account.create().key).hex()
    with ChainSender(anvil.rpc_url, key) as other:
        assert sender.send(other.address, value=10 * ETHER).succeeded
        yield other


@pytest.fixture
def batch(sender: ChainSender) -> Address:
    """A BatchPayout owned by `sender`."""
    return deploy_batch_payout(sender)


@pytest.fixture
def token(sender: ChainSender, batch: Address) -> Address:
    """A DemoToken whose whole supply `sender` holds, with `batch` approved for all of it."""
    args = encode(["string", "string", "uint8", "uint256"], ["Demo", "DEMO", 18, SUPPLY])
    address = sender.deploy(load_demo_token(), args)
    approve(sender, address, batch, UNLIMITED)
    return address


# --- paying -------------------------------------------------------------------------------


def test_pay_native_pays_each_recipient_its_amount_and_leaves_nothing_in_the_contract(
    sender: ChainSender, batch: Address
) -> None:
    recipients = _fresh_addresses(3)
    amounts = [ETHER // 100, 2 * ETHER, 1]

    receipt = pay_native(sender, batch, recipients, amounts)

    assert receipt.succeeded
    assert [sender.native_balance(r) for r in recipients] == amounts
    assert sender.native_balance(batch) == 0


def test_pay_native_emits_one_paid_event_per_payment_in_order(
    sender: ChainSender, batch: Address
) -> None:
    recipients = _fresh_addresses(4)

    receipt = pay_native(sender, batch, recipients, [ETHER // 100] * 4)

    assert _paid_indexes(receipt, batch) == [0, 1, 2, 3]
    assert len(receipt.logs) == 4
    assert {len(bytes.fromhex(log.data.removeprefix("0x"))) for log in receipt.logs} == {4}


def test_pay_token_moves_each_amount_from_the_owner_to_each_recipient(
    sender: ChainSender, batch: Address, token: Address
) -> None:
    recipients = _fresh_addresses(3)
    amounts = [12 * TOKEN + TOKEN // 2, TOKEN, 7]

    receipt = pay_token(sender, batch, token, recipients, amounts)

    assert receipt.succeeded
    assert [token_balance(sender, token, r) for r in recipients] == amounts
    assert token_balance(sender, token, sender.address) == SUPPLY - sum(amounts)
    assert token_balance(sender, token, batch) == 0


def test_pay_token_logs_each_transfer_then_its_paid_event_in_order(
    sender: ChainSender, batch: Address, token: Address
) -> None:
    recipients = _fresh_addresses(3)

    receipt = pay_token(sender, batch, token, recipients, [TOKEN, 2 * TOKEN, 3 * TOKEN])

    assert [log.topics[:1] for log in receipt.logs] == [(TRANSFER_TOPIC,), ()] * 3
    transfers = [log for log in receipt.logs if log.topics[:1] == (TRANSFER_TOPIC,)]
    assert ["0x" + log.topics[2][-40:] for log in transfers] == [r.lower() for r in recipients]
    assert {"0x" + log.topics[1][-40:] for log in transfers} == {sender.address.lower()}
    assert _paid_indexes(receipt, batch) == [0, 1, 2]


def test_a_token_that_returns_nothing_is_paid_like_any_other(
    sender: ChainSender, batch: Address
) -> None:
    usdt_like = deploy_no_return_token(sender, initial_supply=SUPPLY)
    approve(sender, usdt_like, batch, UNLIMITED)
    recipients = _fresh_addresses(2)

    receipt = pay_token(sender, batch, usdt_like, recipients, [5 * TOKEN, 6 * TOKEN])

    assert receipt.succeeded
    assert [token_balance(sender, usdt_like, r) for r in recipients] == [5 * TOKEN, 6 * TOKEN]
    assert token_balance(sender, usdt_like, sender.address) == SUPPLY - 11 * TOKEN
    assert _paid_indexes(receipt, batch) == [0, 1]


def test_a_token_with_a_finite_allowance_is_paid_within_it(
    sender: ChainSender, batch: Address
) -> None:
    blocking = deploy_blocking_token(sender, initial_supply=SUPPLY)  # nobody blocked
    approve(sender, blocking, batch, 3 * TOKEN)
    recipients = _fresh_addresses(2)

    receipt = pay_token(sender, batch, blocking, recipients, [TOKEN, 2 * TOKEN])

    assert receipt.succeeded
    assert [token_balance(sender, blocking, r) for r in recipients] == [TOKEN, 2 * TOKEN]
    (allowance,) = decode(
        ["uint256"],
        sender.call(
            blocking,
            _selector("allowance(address,address)")
            + encode(["address", "address"], [sender.address, batch]),
        ),
    )
    assert allowance == 0


def test_empty_batches_succeed_and_pay_nothing(
    sender: ChainSender, batch: Address, token: Address
) -> None:
    native = pay_native(sender, batch, [], [])
    tokens = pay_token(sender, batch, token, [], [])

    assert native.succeeded
    assert tokens.succeeded
    assert native.logs == tokens.logs == ()
    assert token_balance(sender, token, sender.address) == SUPPLY


# --- failing payments: the whole batch reverts --------------------------------------------


def test_a_reverting_recipient_fails_the_batch_with_payment_failed_at_its_index(
    sender: ChainSender, batch: Address
) -> None:
    others = _fresh_addresses(2)
    recipients = [others[0], deploy_reverting_receiver(sender), others[1]]
    amounts = [ETHER, ETHER, ETHER]
    data = pay_native_calldata(recipients, amounts)

    error = _estimate_error(sender, batch, data, value=3 * ETHER)
    receipt = pay_native(sender, batch, recipients, amounts, gas=BATCH_GAS)

    assert error == BatchError("PaymentFailed(uint256)", (1,))
    assert receipt.status == 0
    assert receipt.logs == ()
    assert [sender.native_balance(r) for r in recipients] == [0, 0, 0]
    assert sender.native_balance(batch) == 0


def test_a_recipient_that_uses_all_its_gas_fails_the_batch_with_payment_failed(
    sender: ChainSender, batch: Address
) -> None:
    """INVALID (0xfe) burns the gas the call was given; 1/64 is kept back to revert with."""
    recipients = [deploy_invalid_receiver(sender)]
    data = pay_native_calldata(recipients, [ETHER])

    error = _call_error(sender, batch, data, value=ETHER, gas=BATCH_GAS)

    assert error == BatchError("PaymentFailed(uint256)", (0,))


def test_a_blocked_recipient_of_a_blocking_token_fails_the_batch_at_its_index(
    sender: ChainSender, batch: Address
) -> None:
    blocking = deploy_blocking_token(sender, initial_supply=SUPPLY)
    approve(sender, blocking, batch, UNLIMITED)
    recipients = _fresh_addresses(3)
    set_blocked(sender, blocking, recipients[2])
    amounts = [TOKEN, TOKEN, TOKEN]

    error = _estimate_error(sender, batch, pay_token_calldata(blocking, recipients, amounts))
    receipt = pay_token(sender, batch, blocking, recipients, amounts, gas=BATCH_GAS)

    assert error == BatchError("PaymentFailed(uint256)", (2,))
    assert receipt.status == 0
    assert [token_balance(sender, blocking, r) for r in recipients] == [0, 0, 0]
    assert token_balance(sender, blocking, sender.address) == SUPPLY


def test_a_token_whose_transfer_from_returns_false_fails_the_batch(
    sender: ChainSender, batch: Address
) -> None:
    false_token = deploy_false_token(sender, initial_supply=SUPPLY)
    approve(sender, false_token, batch, UNLIMITED)
    recipients = _fresh_addresses(2)

    error = _estimate_error(
        sender, batch, pay_token_calldata(false_token, recipients, [TOKEN, TOKEN])
    )

    assert error == BatchError("PaymentFailed(uint256)", (0,))


def test_a_token_payment_beyond_the_allowance_fails_at_its_index(
    sender: ChainSender, batch: Address
) -> None:
    usdt_like = deploy_no_return_token(sender, initial_supply=SUPPLY)
    approve(sender, usdt_like, batch, 2 * TOKEN)
    recipients = _fresh_addresses(3)

    error = _estimate_error(
        sender, batch, pay_token_calldata(usdt_like, recipients, [TOKEN, TOKEN, TOKEN])
    )

    assert error == BatchError("PaymentFailed(uint256)", (2,))


def test_an_address_without_code_as_the_token_is_not_a_token(
    sender: ChainSender, batch: Address
) -> None:
    not_a_token = _fresh_address()

    error = _estimate_error(sender, batch, pay_token_calldata(not_a_token, [sender.address], [1]))

    assert error.name == "NotAToken"
    assert error.args == (not_a_token.lower(),)


# --- malformed batches --------------------------------------------------------------------


@pytest.mark.parametrize(("recipients", "amounts"), [(2, 1), (1, 2), (0, 1), (1, 0)])
def test_arrays_of_different_lengths_are_a_length_mismatch(
    sender: ChainSender, batch: Address, token: Address, recipients: int, amounts: int
) -> None:
    to = _fresh_addresses(recipients)
    values = [TOKEN] * amounts

    native = _estimate_error(sender, batch, pay_native_calldata(to, values), value=sum(values))
    tokens = _estimate_error(sender, batch, pay_token_calldata(token, to, values))

    assert native == tokens == BatchError("LengthMismatch()", ())


@pytest.mark.parametrize("value", [0, 3 * ETHER - 1, 3 * ETHER + 1])
def test_a_value_other_than_the_sum_of_the_amounts_is_a_value_mismatch(
    sender: ChainSender, batch: Address, value: int
) -> None:
    recipients = _fresh_addresses(2)
    data = pay_native_calldata(recipients, [ETHER, 2 * ETHER])

    error = _estimate_error(sender, batch, data, value=value)

    assert error == BatchError("ValueMismatch(uint256,uint256)", (value, 3 * ETHER))
    assert [sender.native_balance(r) for r in recipients] == [0, 0]


def test_amounts_whose_sum_overflows_are_a_value_mismatch_with_the_largest_total(
    sender: ChainSender, batch: Address
) -> None:
    """2**256 - 1 + 2 would wrap to 1: the value 1 must not pass for their sum."""
    data = pay_native_calldata(_fresh_addresses(2), [UNLIMITED, 2])

    error = _estimate_error(sender, batch, data, value=1)

    assert error == BatchError("ValueMismatch(uint256,uint256)", (1, UNLIMITED))


def test_the_contract_refuses_coin_sent_to_it_directly(sender: ChainSender, batch: Address) -> None:
    receipt = sender.send(batch, value=ETHER, gas=100_000)

    assert receipt.status == 0
    assert sender.native_balance(batch) == 0


# --- the owner ----------------------------------------------------------------------------


def test_a_caller_that_is_not_the_owner_is_refused(
    sender: ChainSender, stranger: ChainSender, batch: Address, token: Address
) -> None:
    recipients = [stranger.address]

    native = _estimate_error(stranger, batch, pay_native_calldata(recipients, [ETHER]), ETHER)
    tokens = _estimate_error(stranger, batch, pay_token_calldata(token, recipients, [TOKEN]))
    receipt = pay_token(stranger, batch, token, recipients, [TOKEN], gas=BATCH_GAS)

    assert native == tokens == BatchError("NotOwner()", ())
    assert receipt.status == 0
    assert token_balance(sender, token, stranger.address) == 0


def test_the_owner_is_the_deployer_in_storage_slot_0(sender: ChainSender, batch: Address) -> None:
    (owner,) = decode(["address"], sender.call(batch, _selector("owner()")))
    slot0 = sender.rpc("eth_getStorageAt", [batch, "0x0", "latest"])

    assert owner == sender.address.lower()
    assert int(slot0, 16) == int(sender.address, 16)


@pytest.mark.parametrize(
    "signature",
    ["setOwner(address)", "transferOwnership(address)", "changeOwner(address)", "owner(address)"],
)
def test_no_call_changes_the_owner(
    sender: ChainSender, stranger: ChainSender, batch: Address, signature: str
) -> None:
    data = _selector(signature) + encode(["address"], [stranger.address])

    by_owner = sender.send(batch, data=data, gas=100_000)
    by_stranger = stranger.send(batch, data=data, gas=100_000)

    assert by_owner.status == by_stranger.status == 0  # no such function, no fallback
    slot0 = sender.rpc("eth_getStorageAt", [batch, "0x0", "latest"])
    assert int(slot0, 16) == int(sender.address, 16)


def test_the_abi_has_no_function_but_owner_pay_native_and_pay_token() -> None:
    abi = load_batch_payout().abi

    functions = {entry["name"] for entry in abi if entry["type"] == "function"}
    others = {entry["type"] for entry in abi} - {"function", "constructor", "error", "event"}

    assert functions == {"owner", "payNative", "payToken"}
    assert others == set()  # no receive, no fallback


# --- re-entrancy --------------------------------------------------------------------------


def test_a_recipient_that_reenters_and_bubbles_fails_the_batch_and_nothing_is_paid(
    sender: ChainSender, batch: Address, token: Address
) -> None:
    reentrant = deploy_reentrant_receiver(sender, batch, token, bubble=True)
    others = _fresh_addresses(2)
    recipients = [others[0], reentrant, others[1]]
    amounts = [ETHER, ETHER, ETHER]

    error = _estimate_error(sender, batch, pay_native_calldata(recipients, amounts), 3 * ETHER)
    receipt = pay_native(sender, batch, recipients, amounts, gas=BATCH_GAS)

    assert error == BatchError("PaymentFailed(uint256)", (1,))
    assert receipt.status == 0
    assert [sender.native_balance(r) for r in recipients] == [0, 0, 0]
    assert _call_uint(sender, reentrant, "received()") == 0
    assert sender.native_balance(batch) == 0


def test_a_recipient_whose_reentry_is_refused_is_paid_exactly_once(
    sender: ChainSender, batch: Address, token: Address
) -> None:
    reentrant = deploy_reentrant_receiver(sender, batch, token, bubble=False)
    other = _fresh_address()

    receipt = pay_native(sender, batch, [reentrant, other], [ETHER, 2 * ETHER])

    assert receipt.succeeded
    assert sender.native_balance(reentrant) == ETHER
    assert sender.native_balance(other) == 2 * ETHER
    assert sender.native_balance(batch) == 0
    assert _call_uint(sender, reentrant, "received()") == 1
    assert _call_uint(sender, reentrant, "reentered()") == 0
    assert _call_uint(sender, reentrant, "failed()") == 2
    failures = [log for log in receipt.logs if log.topics[:1] == (REENTRY_FAILED_TOPIC,)]
    assert [log.address for log in failures] == [reentrant, reentrant]
    decoded = [decode(["bytes4", "bytes"], bytes.fromhex(f.data[2:])) for f in failures]
    assert [selector for selector, _ in decoded] == [
        _selector("payNative(address[],uint256[])"),
        _selector("payToken(address,address[],uint256[])"),
    ]
    assert [decode_batch_error(data) for _, data in decoded] == [BatchError("NotOwner()", ())] * 2
    assert token_balance(sender, token, reentrant) == 0
    assert _paid_indexes(receipt, batch) == [0, 1]


# --- the code and its size limits ---------------------------------------------------------


def test_every_deployment_has_the_artifacts_runtime_code(sender: ChainSender) -> None:
    """One code hash to verify: the owner is in storage, not in the code."""
    packaged = json.loads(
        resources.files("sluice.chains").joinpath("BatchPayout.json").read_text(encoding="utf-8")
    )
    first = deploy_batch_payout(sender)
    second = deploy_batch_payout(sender)

    codes = {sender.rpc("eth_getCode", [address, "latest"]) for address in (first, second)}

    assert codes == {packaged["deployedBytecode"]}


def test_a_200_payment_token_batch_to_new_holders_fits_the_eip_7825_gas_cap(
    sender: ChainSender, batch: Address, token: Address, capsys: pytest.CaptureFixture[str]
) -> None:
    recipients = _fresh_addresses(200)
    amounts = [12 * TOKEN + TOKEN // 2] * 200
    request: dict[str, Any] = {
        "from": sender.address,
        "to": batch,
        "data": "0x" + pay_token_calldata(token, recipients, amounts).hex(),
    }

    estimate = int(sender.rpc("eth_estimateGas", [request]), 16)
    receipt = pay_token(sender, batch, token, recipients, amounts, gas=estimate)
    with capsys.disabled():
        print(
            f"\n200-payment ERC-20 batch to new holders: estimate {estimate:,} gas,"
            f" used {receipt.gas_used:,} ({receipt.gas_used // 200:,} per payment);"
            f" EIP-7825 cap {EIP_7825_TX_GAS_CAP:,}"
        )

    assert estimate < EIP_7825_TX_GAS_CAP
    assert receipt.succeeded
    assert _paid_indexes(receipt, batch) == list(range(200))
    assert token_balance(sender, token, recipients[-1]) == amounts[-1]
