"""`sluice.chains.rpc_errors`: every known client message reads as the reason it means.

The messages are the clients' own (see the module's sources); where a client interpolates
values, a typical instance is given.
"""

from __future__ import annotations

import pytest

from sluice.chains.rpc_errors import (
    ALREADY_SENT,
    CALL_FAILURES,
    PERMANENT,
    REFUSALS,
    call_failure,
    normalise,
    provider_fault,
    send_refusal,
)

#: (client, message, reason) for refusals of eth_sendRawTransaction.
SEND_REFUSALS: list[tuple[str, str, str]] = [
    # already known
    ("geth", "already known", "already_known"),
    ("reth", "already known", "already_known"),
    ("nethermind", "already known", "already_known"),
    ("nethermind<1.31", "AlreadyKnown", "already_known"),
    ("besu", "Known transaction", "already_known"),
    ("besu-enum", "TRANSACTION_ALREADY_KNOWN", "already_known"),
    ("anvil", "Tx: [0x5fe1b6…] already Imported", "already_known"),
    ("hardhat", "Known transaction: 0x5fe1b6", "already_known"),
    ("erigon", "ALREADY_EXISTS: already known", "already_known"),
    ("erigon", "existing txn with same hash", "already_known"),
    ("nethermind-old", "Transaction with the same hash was already imported.", "already_known"),
    # nonce too low
    ("geth", "nonce too low: next nonce 5, tx nonce 4", "nonce_too_low"),
    ("reth", "nonce too low: next nonce 5, tx nonce 4", "nonce_too_low"),
    ("anvil", "nonce too low", "nonce_too_low"),
    ("besu", "Nonce too low", "nonce_too_low"),
    ("besu-enum", "NONCE_TOO_LOW", "nonce_too_low"),
    ("nethermind<1.31", "OldNonce", "nonce_too_low"),
    ("revm", "nonce 4 too low, expected 5", "nonce_too_low"),
    ("hardhat", "Nonce too low. Expected nonce to be 5 but got 4.", "nonce_too_low"),
    ("erigon", "INTERNAL_ERROR: nonce too low", "nonce_too_low"),
    # replacement underpriced
    ("geth", "replacement transaction underpriced", "replacement_underpriced"),
    ("erigon", "FEE_TOO_LOW: replacement transaction underpriced", "replacement_underpriced"),
    ("erigon", "could not replace existing tx", "replacement_underpriced"),
    ("besu", "Replacement transaction underpriced", "replacement_underpriced"),
    (
        "anvil",
        "Tx: [0x5fe1…] insufficient gas price to replace existing transaction",
        "replacement_underpriced",
    ),
    ("nethermind<1.31", "ReplacementNotAllowed", "replacement_underpriced"),
    (
        "hardhat",
        "Replacement transaction underpriced. A gasPrice/maxFeePerGas of at least 2 is "
        "necessary to replace the existing transaction with nonce 0.",
        "replacement_underpriced",
    ),
    # insufficient funds
    (
        "geth",
        "insufficient funds for gas * price + value: balance 0, tx cost 21000, overshot 21000",
        "insufficient_funds",
    ),
    ("geth", "insufficient funds for transfer", "insufficient_funds"),
    ("anvil", "Insufficient funds for gas * price + value", "insufficient_funds"),
    ("reth", "insufficient funds for gas * price + value: have 0 want 21000", "insufficient_funds"),
    ("besu", "Upfront cost exceeds account balance", "insufficient_funds"),
    ("besu-enum", "UPFRONT_COST_EXCEEDS_BALANCE", "insufficient_funds"),
    ("nethermind<1.31", "InsufficientFunds, Account balance: 0", "insufficient_funds"),
    ("erigon", "INVALID: insufficient funds", "insufficient_funds"),
    ("revm", "lack of funds (0) for max fee (21000)", "insufficient_funds"),
    (
        "hardhat",
        "Sender doesn't have enough funds to send tx. The max upfront cost is: 21000 and the "
        "sender's balance is: 0.",
        "insufficient_funds",
    ),
    # fee below the base fee
    (
        "geth",
        "max fee per gas less than block base fee: address 0xabc, maxFeePerGas: 1, baseFee: 7",
        "fee_too_low",
    ),
    ("anvil", "max fee per gas less than block base fee", "fee_too_low"),
    ("besu", "Gas price below current base fee", "fee_too_low"),
    ("besu-enum", "MAX_FEE_PER_GAS_BELOW_CURRENT_BASE_FEE", "fee_too_low"),
    ("revm", "gas price is less than basefee", "fee_too_low"),
    (
        "hardhat",
        "Transaction maxFeePerGas (1) is too low for the next block, which has a "
        "baseFeePerGas of 875000000",
        "fee_too_low",
    ),
    ("erigon", "fee too low", "fee_too_low"),
    ("erigon", "FEE_TOO_LOW: fee too low", "fee_too_low"),
    ("nethermind<1.31", "FeeTooLow", "fee_too_low"),
    # tip above the fee cap
    ("geth", "max priority fee per gas higher than max fee per gas", "tip_above_fee_cap"),
    ("anvil", "max priority fee per gas higher than max fee per gas", "tip_above_fee_cap"),
    ("hardhat", "maxPriorityFeePerGas (2) is bigger than maxFeePerGas (1)", "tip_above_fee_cap"),
    (
        "nethermind",
        "Invalid, InvalidMaxPriorityFeePerGas: Cannot be higher than maxFeePerGas.",
        "tip_above_fee_cap",
    ),
    ("besu", "Max priority fee per gas exceeds max fee per gas", "tip_above_fee_cap"),
    ("revm", "priority fee is greater than max fee", "tip_above_fee_cap"),
    ("geth-docs", "tip higher than fee cap", "tip_above_fee_cap"),
    (
        "anvil",
        "Invalid input: `max_priority_fee_per_gas` greater than `max_fee_per_gas`",
        "tip_above_fee_cap",
    ),
    # intrinsic gas
    ("geth", "intrinsic gas too low: gas 20000, minimum needed 21000", "gas_too_low"),
    ("anvil", "intrinsic gas too low", "gas_too_low"),
    ("erigon", "IntrinsicGas", "gas_too_low"),
    ("besu", "Intrinsic gas exceeds gas limit", "gas_too_low"),
    ("revm", "call gas cost (21000) exceeds the gas limit (20000)", "gas_too_low"),
    ("hardhat", "Transaction requires at least 21000 gas but got 20000", "gas_too_low"),
    (
        "geth",
        "insufficient gas for floor data gas cost: gas 21000, minimum needed 21040",
        "gas_too_low",
    ),
    # gas limit above the cap
    ("geth", "exceeds block gas limit", "gas_limit_too_high"),
    ("geth", "transaction gas limit too high (cap: 16777216, tx: 30000000)", "gas_limit_too_high"),
    ("reth", "exceeds max transaction gas limit", "gas_limit_too_high"),
    ("anvil", "intrinsic gas too high -- tx.gas_limit > env.block.gas_limit", "gas_limit_too_high"),
    (
        "anvil",
        "Transaction gas limit is greater than the block gas limit, gas_limit: 40000000, "
        "cap: 30000000",
        "gas_limit_too_high",
    ),
    (
        "revm",
        "transaction gas limit (30000001) is greater than the cap (16777216)",
        "gas_limit_too_high",
    ),
    ("besu", "Transaction gas limit exceeds block gas limit", "gas_limit_too_high"),
    ("besu-enum", "EXCEEDS_PER_TRANSACTION_GAS_LIMIT", "gas_limit_too_high"),
    ("erigon", "gas limit is too high", "gas_limit_too_high"),
    ("nethermind", "gas limit reached", "gas_limit_too_high"),
    ("nethermind<1.31", "GasLimitExceeded", "gas_limit_too_high"),
    (
        "nethermind",
        "TxGasLimitCapExceeded: Gas limit 30000001 exceeded cap of 16777216.",
        "gas_limit_too_high",
    ),
    (
        "hardhat",
        "Transaction gas limit is 31061912 and exceeds block gas limit of 30000000",
        "gas_limit_too_high",
    ),
    (
        "hardhat",
        "Transaction gas limit is 30000000 and exceeds transaction gas cap of 16777216",
        "gas_limit_too_high",
    ),
    # wrong chain id
    ("geth", "invalid sender: invalid chain id for signer", "wrong_chain_id"),
    ("geth", "invalid sender", "wrong_chain_id"),
    ("geth", "only replay-protected (EIP-155) transactions allowed over RPC", "wrong_chain_id"),
    ("anvil", "invalid chain id for signer", "wrong_chain_id"),
    ("anvil", "Incompatible EIP-155 transaction, signed for another chain", "wrong_chain_id"),
    ("reth", "invalid chain ID", "wrong_chain_id"),
    ("erigon", "invalid chain id, expected: 1 got: 5", "wrong_chain_id"),
    ("besu", "Wrong chainId", "wrong_chain_id"),
    ("besu", "ChainId not supported", "wrong_chain_id"),
    ("besu-enum", "WRONG_CHAIN_ID", "wrong_chain_id"),
    ("nethermind", "Invalid, InvalidTxChainId: Expected 1, got 5.", "wrong_chain_id"),
    (
        "hardhat",
        "Trying to send an incompatible EIP-155 transaction, signed for another chain.",
        "wrong_chain_id",
    ),
    (
        "hardhat",
        "Trying to send a raw transaction with an invalid chainId. The expected chainId is 31337",
        "wrong_chain_id",
    ),
    # invalid signature
    ("geth", "invalid sender: invalid transaction v, r, s values", "invalid_signature"),
    ("besu", "Invalid signature", "invalid_signature"),
    ("nethermind", "Invalid, InvalidTxSignature: Signature is invalid.", "invalid_signature"),
    ("nethermind", "failed to recover sender", "invalid_signature"),
    ("nethermind<1.31", "FailedToResolveSender", "invalid_signature"),
    # a nonce gap
    ("geth", "nonce too high: tx nonce 7, gapped nonce 5", "nonce_too_high"),
    ("anvil", "Nonce too high", "nonce_too_high"),
    ("revm", "nonce 7 too high, expected 5", "nonce_too_high"),
    ("nethermind<1.31", "NonceGap", "nonce_too_high"),
    ("nethermind", "nonce too far in future", "nonce_too_high"),
    ("besu", "Transaction nonce is too distant from current sender nonce", "nonce_too_high"),
    ("besu", "An invalid transaction with a lower nonce exists", "nonce_too_high"),
    (
        "hardhat",
        "Nonce too high. Expected nonce to be 5 but got 7. Note that transactions can't be "
        "queued when automining.",
        "nonce_too_high",
    ),
    # the pool is full
    ("geth", "txpool is full", "pool_full"),
    ("reth", "txpool is full", "pool_full"),
    ("geth", "account limit exceeded: pooled 16 txs", "pool_full"),
    ("erigon", "pending sub-pool is full", "pool_full"),
    ("erigon", "baseFee sub-pool is full", "pool_full"),
    ("erigon", "Spammer", "pool_full"),
    # below the pool's minimum
    ("geth", "transaction underpriced: gas tip cap 1, minimum needed 2", "underpriced"),
    ("reth", "transaction underpriced", "underpriced"),
    ("erigon", "FEE_TOO_LOW: underpriced", "underpriced"),
    ("besu", "Gas price below configured minimum gas price", "underpriced"),
    ("nethermind<1.31", "FeeTooLowToCompete", "underpriced"),
    (
        "reth",
        "transaction priority fee below minimum required priority fee 1000000",
        "underpriced",
    ),
    ("hardhat", "Transaction gas price is 0, which is below the minimum of 1", "underpriced"),
    # too big
    ("geth", "oversized data: transaction size 131073, limit 131072", "oversized"),
    ("nethermind", "transaction too large", "oversized"),
    ("nethermind<1.31", "MaxTxSizeExceeded", "oversized"),
    ("erigon", "RLPTooLong", "oversized"),
    ("geth", "max initcode size exceeded: code size 49153, limit 49152", "oversized"),
    # a type the chain does not take
    (
        "geth",
        "transaction type not supported: tx type 3 not supported by this pool",
        "type_not_supported",
    ),
    ("nethermind", "unsupported transaction type", "type_not_supported"),
    ("nethermind<1.31", "NotSupportedTxType", "type_not_supported"),
    ("besu", "Invalid transaction type", "type_not_supported"),
    (
        "erigon",
        "fork supporting this transaction type is not activated yet",
        "type_not_supported",
    ),
    ("anvil", "Unknown transaction type not supported", "type_not_supported"),
    # the node's own fee cap
    ("geth", "tx fee (1.20 ether) exceeds the configured cap (1.00 ether)", "fee_above_node_cap"),
    ("besu", "Transaction fee cap exceeded", "fee_above_node_cap"),
    # a sender with code
    ("geth", "sender not an eoa", "sender_not_eoa"),
    ("revm", "reject transactions from senders with deployed code", "sender_not_eoa"),
    # The pinned Hardhat (2.29.1), as it answered.
    (
        "hardhat-2.29.1",
        "Sender doesn't have enough funds to send tx. The max upfront cost is: 63000000000001 "
        "and the sender's balance is: 0.",
        "insufficient_funds",
    ),
    (
        "hardhat-2.29.1",
        "Transaction maxFeePerGas (500000000) is too low for the next block, which has a "
        "baseFeePerGas of 875000000",
        "fee_too_low",
    ),
    ("hardhat-2.29.1", "Transaction requires at least 21000 gas but got 20000", "gas_too_low"),
    (
        "hardhat-2.29.1",
        "Transaction gas limit is 1000000000 and exceeds transaction gas cap of 16777216",
        "gas_limit_too_high",
    ),
    (
        "hardhat-2.29.1",
        "maxPriorityFeePerGas (4000000000) is bigger than maxFeePerGas (3000000000)",
        "tip_above_fee_cap",
    ),
    (
        "hardhat-2.29.1",
        "Trying to send a raw transaction with an invalid chainId. The expected chainId is 31337",
        "wrong_chain_id",
    ),
    (
        "hardhat-2.29.1",
        "Nonce too high. Expected nonce to be 0 but got 5. Note that transactions can't be "
        "queued when automining.",
        "nonce_too_high",
    ),
    (
        "hardhat-2.29.1",
        "Nonce too low. Expected nonce to be 1 but got 0. Note that transactions can't be "
        "queued when automining.",
        "nonce_too_low",
    ),
    ("hardhat-2.29.1", "input too short", "rejected"),
    # anything else
    ("anvil", "Failed to decode transaction", "rejected"),
    ("geth", "negative value", "rejected"),
    ("erigon", "INVALID: something new", "rejected"),
    ("-", "", "rejected"),
]


@pytest.mark.parametrize(
    ("client", "message", "reason"),
    SEND_REFUSALS,
    ids=[f"{client}:{message[:48]}" for client, message, _ in SEND_REFUSALS],
)
def test_each_known_send_refusal_reads_as_its_reason(
    client: str, message: str, reason: str
) -> None:
    assert send_refusal(message) == reason
    assert provider_fault(message) is None  # a refusal, not the provider's fault


PERMANENCE = {
    "gas_too_low": True,
    "gas_limit_too_high": True,
    "tip_above_fee_cap": True,
    "wrong_chain_id": True,
    "invalid_signature": True,
    "oversized": True,
    "type_not_supported": True,
    "insufficient_funds": False,
    "fee_too_low": False,
    "underpriced": False,
    "nonce_too_high": False,
    "pool_full": False,
    "fee_above_node_cap": False,
    "sender_not_eoa": False,
    "execution_reverted": False,
    "rejected": False,
    "already_known": False,
    "nonce_too_low": False,
    "replacement_underpriced": False,
}


@pytest.mark.parametrize(("reason", "permanent"), sorted(PERMANENCE.items()))
def test_only_refusals_no_chain_state_can_lift_are_permanent(reason: str, permanent: bool) -> None:
    assert (reason in PERMANENT) is permanent


def test_every_refusal_reason_is_listed_and_fits_an_attempt_note() -> None:
    assert set(PERMANENCE) == REFUSALS
    assert {reason for _, _, reason in SEND_REFUSALS} <= REFUSALS
    assert {"already_known", "nonce_too_low", "replacement_underpriced"} == ALREADY_SENT
    # services/broadcast.py writes "refused: <reason>" into a 64-character column.
    assert max(len(f"refused: {reason}") for reason in REFUSALS | CALL_FAILURES) <= 64


#: (client, message, code, reason) for calls that reverted or halted.
CALL_FAILURE_MESSAGES: list[tuple[str, str, object, str]] = [
    ("geth", "execution reverted", 3, "execution_reverted"),
    ("geth", "execution reverted: ERC20: transfer amount exceeds balance", 3, "execution_reverted"),
    ("anvil", "execution reverted", 3, "execution_reverted"),
    ("besu", "Execution reverted", -32000, "execution_reverted"),
    # A revert reason is the contract's text: whatever it says, the call reverted.
    ("geth", "execution reverted: rate limit exceeded, out of gas", 3, "execution_reverted"),
    (
        "hardhat",
        "VM Exception while processing transaction: reverted with reason string 'nope'",
        -32603,
        "execution_reverted",
    ),
    ("hardhat", "Transaction reverted without a reason string", -32603, "execution_reverted"),
    (
        "hardhat-2.29.1",
        "Error: Transaction reverted without a reason string",
        -32603,
        "execution_reverted",
    ),
    (
        "hardhat-2.29.1",
        "Error: VM Exception while processing transaction: reverted with an unrecognized custom "
        "error (return data: 0x626f6f6d)",
        -32603,
        "execution_reverted",
    ),
    (
        "hardhat-2.29.1",
        "Error: VM Exception while processing transaction: invalid opcode",
        -32603,
        "invalid_opcode",
    ),
    ("geth", "invalid opcode: INVALID", -32000, "invalid_opcode"),
    ("anvil", "EVM error InvalidFEOpcode", -32603, "invalid_opcode"),
    ("anvil", "EVM error OpcodeNotFound", -32603, "invalid_opcode"),
    ("reth", "EVM error: InvalidFEOpcode", -32603, "invalid_opcode"),
    (
        "hardhat",
        "VM Exception while processing transaction: invalid opcode",
        -32603,
        "invalid_opcode",
    ),
    ("geth", "gas required exceeds allowance (30000000)", -32000, "out_of_gas"),
    ("anvil", "Out of gas: gas required exceeds allowance: 30000000", -32003, "out_of_gas"),
    ("anvil", "EVM error OutOfGas", -32603, "out_of_gas"),
    ("reth", "out of gas: gas required exceeds: 100000", -32003, "out_of_gas"),
    ("geth", "stack underflow (0 <=> 2)", -32000, "execution_halted"),
    ("anvil", "EVM error StackUnderflow", -32603, "execution_halted"),
    ("geth", "invalid jump destination", -32000, "execution_halted"),
    ("geth", "write protection", -32000, "execution_halted"),
]


@pytest.mark.parametrize(
    ("client", "message", "code", "reason"),
    CALL_FAILURE_MESSAGES,
    ids=[f"{client}:{message[:48]}" for client, message, _, _ in CALL_FAILURE_MESSAGES],
)
def test_each_known_call_failure_reads_as_its_reason(
    client: str, message: str, code: object, reason: str
) -> None:
    assert call_failure(message, code) == reason
    assert reason in CALL_FAILURES


@pytest.mark.parametrize(
    "message",
    [
        "insufficient funds for transfer",
        "header not found",
        "missing trie node 0xabc (path )",
        "execution aborted (timeout = 5s)",
        "daily request count exceeded, request rate limited",
    ],
)
def test_other_error_answers_to_a_call_are_no_call_failure(message: str) -> None:
    assert call_failure(message, -32000) is None


@pytest.mark.parametrize(
    ("message", "code", "fault"),
    [
        ("daily request count exceeded, request rate limited", -32005, "rate_limited"),
        ("project ID request rate exceeded", -32005, "rate_limited"),
        (
            "Your app has exceeded its compute units per second capacity.",
            429,
            "rate_limited",
        ),
        ("request limit reached", -32007, "rate_limited"),
        ("Too Many Requests", -32000, "rate_limited"),
        (
            "Transaction pool not enabled. (Either txpool explicitly disabled, or node not yet "
            "in sync).",
            -32002,
            "node_syncing",
        ),
        ("Initial sync is still in progress", -32008, "node_syncing"),
        ("node is syncing", -32000, "node_syncing"),
        (
            "the method eth_sendRawTransaction does not exist/is not available",
            -32601,
            "method_unavailable",
        ),
        ("Method not enabled", -32604, "method_unavailable"),
        ("anything at all", -32601, "method_unavailable"),
    ],
)
def test_answers_about_the_provider_are_provider_faults(
    message: str, code: object, fault: str
) -> None:
    assert provider_fault(message, code) == fault


def test_besus_block_gas_limit_code_is_no_rate_limit() -> None:
    # Besu answers -32005 (EIP-1474's "limit exceeded") for a gas limit above the block's.
    assert provider_fault("Transaction gas limit exceeds block gas limit", -32005) is None


def test_messages_are_normalised_to_lowercase_words() -> None:
    assert normalise("MAX_FEE_PER_GAS_BELOW_CURRENT_BASE_FEE") == (
        "max fee per gas below current base fee"
    )
    assert normalise("maxFeePerGas (1) is too low") == "max fee per gas (1) is too low"
    assert normalise("EVM error InvalidFEOpcode") == "evm error invalid fe opcode"
    assert normalise("  Wrong  chainId\n") == "wrong chain id"
    assert normalise("`max_priority_fee_per_gas`") == "max priority fee per gas"
