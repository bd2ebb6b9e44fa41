"""What a node's JSON-RPC error answer means: the request's verdict, or the provider's fault.

A JSON-RPC error answer (a well-formed response carrying an ``error`` object) is, for a send,
the node's verdict on the transaction; for ``eth_call`` and ``eth_estimateGas`` that reverts or
halts, the chain's answer to the call. Another node of the same chain would answer the same, so
neither benches the provider nor moves to the next one. The exceptions are the few answers that
are about the provider itself, whatever was asked (rate limits, a node still syncing, a method
it does not serve): another provider may well answer, so those are provider faults.

Clients word their errors differently, and none documents them as stable, so the classification
is by message, from the source of each client (cited per pattern). Messages are compared
*normalised* (`normalise`): camelCase split into words, ``_`` and ``-`` read as spaces,
backticks dropped, lowercased, so that geth's ``max fee per gas less than block base fee``,
Hardhat's ``maxFeePerGas (…) is too low``, Besu's ``MAX_FEE_PER_GAS_BELOW_CURRENT_BASE_FEE`` and
Nethermind's ``FeeTooLow`` meet one pattern each. The first pattern that matches wins, so the
specific ones come before the general ones.

Sources, at the versions read (paths relative to each repository):

- geth: ethereum/go-ethereum ``core/txpool/errors.go``, ``core/error.go``,
  ``core/txpool/validation.go``, ``core/txpool/legacypool/legacypool.go``,
  ``core/types/transaction.go``, ``core/types/transaction_signing.go``,
  ``internal/ethapi/api.go``, ``core/vm/errors.go``.
- Nethermind: NethermindEth/nethermind ``src/Nethermind/Nethermind.TxPool/AcceptTxResult.cs``
  (before 1.31 the codes were the member names, ``OldNonce``, ``FeeTooLow``…),
  ``src/Nethermind/Nethermind.TxPool/TxPoolErrorMessages.cs``,
  ``src/Nethermind/Nethermind.Core/Messages/TxErrorMessages.cs``.
- Besu: hyperledger/besu ``ethereum/api/src/main/java/org/hyperledger/besu/ethereum/api/jsonrpc/
  internal/response/RpcErrorType.java`` and ``ethereum/core/src/main/java/org/hyperledger/besu/
  ethereum/transaction/TransactionInvalidReason.java``.
- Erigon: erigontech/erigon ``txnprovider/txpool/txpoolcfg/txpoolcfg.go`` (``DiscardReason``)
  and ``rpc/jsonrpc/send_transaction.go``, which prefixes the reason with the pool's
  ``ImportResult`` (``FEE_TOO_LOW: replacement transaction underpriced``).
- reth: paradigmxyz/reth ``crates/rpc/rpc-eth-types/src/error/mod.rs`` (``RpcPoolError``,
  ``RpcInvalidTransactionError``), and revm's ``InvalidTransaction`` display strings
  (bluealloy/revm ``crates/context/interface/src/result.rs``), which Anvil and EDR forward too.
- Anvil: foundry-rs/foundry ``crates/anvil/src/eth/error.rs``; the answers of the pinned Anvil
  (1.7.1) are in tests/integration/test_evm_chain_client.py.
- Hardhat: NomicFoundation/edr ``crates/edr_provider/src/error.rs`` and the mempool's
  ``MemPoolAddTransactionError`` (``crates/edr_evm/src/mempool.rs``); the messages of the older
  JavaScript network are the same (NomicFoundation/hardhat ``packages/hardhat-core/src/
  internal/hardhat-network/provider/node.ts`` and ``TxPool.ts``). The answers of the pinned
  Hardhat (2.29.1) are in tests/unit/chains/test_rpc_errors.py.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "ALREADY_SENT",
    "CALL_FAILURES",
    "PERMANENT",
    "REFUSALS",
    "call_failure",
    "normalise",
    "provider_fault",
    "send_refusal",
]

#: Refusals meaning this transaction, or another with its nonce, is already pooled or mined:
#: the send counts as done and confirmation tracking takes over.
ALREADY_SENT: Final = frozenset({"already_known", "nonce_too_low", "replacement_underpriced"})

#: Refusals of signed bytes that no chain state can ever make acceptable.
PERMANENT: Final = frozenset(
    {
        "gas_too_low",
        "gas_limit_too_high",
        "tip_above_fee_cap",
        "wrong_chain_id",
        "invalid_signature",
        "oversized",
        "type_not_supported",
    }
)

#: What a call that reverts or halts is classified as.
CALL_FAILURES: Final = frozenset(
    {"execution_reverted", "invalid_opcode", "out_of_gas", "execution_halted"}
)

#: Every reason a refusal of a send can have (``rejected``: none of the known messages).
REFUSALS: Final = (
    ALREADY_SENT
    | PERMANENT
    | {
        "insufficient_funds",
        "fee_too_low",
        "underpriced",
        "nonce_too_high",
        "pool_full",
        "fee_above_node_cap",
        "sender_not_eoa",
        "execution_reverted",
        "rejected",
    }
)


def _patterns(*table: tuple[str, str]) -> tuple[tuple[re.Pattern[str], str], ...]:
    return tuple((re.compile(pattern), name) for pattern, name in table)


# Answers about the provider, not the request: another provider may answer. Checked before the
# refusals of a send (and after the revert check of a call: a revert reason is the contract's
# text and may say anything).
_PROVIDER_FAULTS: Final = _patterns(
    # Hosted providers' throttling, answered as a JSON-RPC error (Infura: "daily request count
    # exceeded, request rate limited", "project ID request rate exceeded"; Alchemy: "exceeded
    # its compute units per second capacity"; QuickNode: "request limit reached").
    (
        r"\brate limit|\brequest rate exceeded\b|\btoo many requests\b|\brequest limit reached\b"
        r"|\bdaily request count exceeded\b|\bcompute units per second\b|\bcapacity exceeded\b",
        "rate_limited",
    ),
    # A node that cannot take transactions yet. Besu RpcErrorType TX_POOL_DISABLED ("Transaction
    # pool not enabled. (Either txpool explicitly disabled, or node not yet in sync).") and
    # CHAIN_HEAD_WORLD_STATE_NOT_AVAILABLE ("Initial sync is still in progress"); Nethermind
    # TxPoolErrorMessages.NodeIsSyncing ("node is syncing").
    (
        r"\btransaction pool not enabled\b|\bnot yet in sync\b|\binitial sync is still in "
        r"progress\b|\bnode is syncing\b",
        "node_syncing",
    ),
    # A provider that does not serve the method (geth: "the method … does not exist/is not
    # available"; Besu METHOD_NOT_ENABLED "Method not enabled"; Anvil "Rpc Endpoint not
    # implemented"; -32601 is JSON-RPC's "Method not found").
    (
        r"\bmethod not found\b|\bdoes not exist/is not available\b|\bmethod not enabled\b"
        r"|\bendpoint not implemented\b|\bmethod not supported\b|\bunsupported method\b",
        "method_unavailable",
    ),
)

# Refusals of eth_sendRawTransaction, most specific first.
_SEND_REFUSALS: Final = _patterns(
    # ── already sent ──────────────────────────────────────────────────────────────────────
    # geth/reth/Nethermind "already known" (Nethermind < 1.31 "AlreadyKnown"); Besu "Known
    # transaction"; Anvil "Tx: [0x…] already Imported"; Erigon ImportResult ALREADY_EXISTS and
    # DuplicateHash "existing txn with same hash"; Hardhat "Known transaction: 0x…".
    (
        r"\balready known\b|\bknown transaction\b|\balready imported\b|\balready exists\b"
        r"|\bexisting txn with same hash\b",
        "already_known",
    ),
    # geth/reth/Erigon/Besu/Hardhat "replacement transaction underpriced"; Anvil "insufficient
    # gas price to replace existing transaction"; Erigon NotReplaced "could not replace
    # existing tx"; Nethermind < 1.31 "ReplacementNotAllowed".
    (
        r"\breplacement (?:transaction )?underpriced\b|\binsufficient gas price to replace\b"
        r"|\bcould not replace existing tx\b|\breplacement not allowed\b",
        "replacement_underpriced",
    ),
    # geth/reth/Anvil/Besu/Hardhat/Nethermind "nonce too low" (reth adds ": next nonce 5, tx
    # nonce 4"); revm "nonce 4 too low, expected 5"; Nethermind < 1.31 "OldNonce". Not geth's
    # "authority nonce too low", about an EIP-7702 authorisation.
    (r"(?<!authority )\bnonce (?:\d+ )?too low\b|\bold nonce\b", "nonce_too_low"),
    # ── for good ──────────────────────────────────────────────────────────────────────────
    # The tip above the fee cap. geth/reth/Anvil "max priority fee per gas higher than max fee
    # per gas"; Hardhat "maxPriorityFeePerGas (2) is bigger than maxFeePerGas (1)"; Nethermind
    # "InvalidMaxPriorityFeePerGas: Cannot be higher than maxFeePerGas."; Besu "Max priority fee
    # per gas exceeds max fee per gas"; revm "priority fee is greater than max fee"; Anvil
    # "`max_priority_fee_per_gas` greater than `max_fee_per_gas`"; "tip higher than fee cap" is
    # geth's wording in its RPC docs.
    (
        r"\bmax priority fee per gas\b.*\b(?:higher|greater|bigger) than\b.*\bmax fee per gas\b"
        r"|\bmax priority fee per gas exceeds max fee per gas\b"
        r"|\bpriority fee is greater than max fee\b|\btip (?:higher than|above) fee cap\b"
        r"|\bmax fee per gas cannot be less than max priority fee per gas\b",
        "tip_above_fee_cap",
    ),
    # A bad signature (before the chain id: geth says "invalid sender: invalid transaction v,
    # r, s values"). geth ErrInvalidSig; Besu INVALID_SIGNATURE "Invalid signature";
    # Nethermind "InvalidTxSignature: Signature is invalid.", "failed to recover sender" (and
    # < 1.31 "FailedToResolveSender").
    (
        r"\binvalid (?:transaction )?v, r, s values\b|\binvalid (?:tx )?signature\b"
        r"|\bsignature is invalid\b|\bfailed to (?:recover|resolve) sender\b",
        "invalid_signature",
    ),
    # Signed for another chain. geth "invalid sender: invalid chain id for signer" (its
    # ErrInvalidSender is, in practice, a chain id mismatch) and "only replay-protected
    # (EIP-155) transactions allowed over RPC"; reth/revm "invalid chain ID"; Erigon "invalid
    # chain id, expected: 1 got: 5"; Besu WRONG_CHAIN_ID "Wrong chainId", "ChainId not
    # supported", "ChainId is required"; Nethermind "InvalidTxChainId: Expected 1, got 5.";
    # Anvil "invalid chain id for signer", "Incompatible EIP-155 transaction, signed for another
    # chain"; Hardhat "Trying to send an incompatible EIP-155 transaction, signed for another
    # chain.", "Trying to send a raw transaction with an invalid chainId".
    (
        r"\binvalid (?:tx )?chain ?id\b|\bwrong chain ?id\b|\bchain ?id mismatch\b"
        r"|\bincompatible eip 155\b|\bsigned for another chain\b|\breplay protected\b"
        r"|\bchain ?id (?:not supported|is required)\b|\binvalid sender\b",
        "wrong_chain_id",
    ),
    # The gas limit above what a block or a transaction may use (before the intrinsic gas:
    # Anvil and reth say "intrinsic gas too high" for it). geth/reth/Hardhat "exceeds block gas
    # limit" (Hardhat: "Transaction gas limit is X and exceeds block gas limit of Y"), geth
    # EIP-7825 "transaction gas limit too high"; reth "exceeds max transaction gas limit";
    # Anvil "intrinsic gas too high -- tx.gas_limit > env.block.gas_limit", "Transaction gas
    # limit is greater than the block gas limit"; revm "caller gas limit exceeds the block gas
    # limit", "transaction gas limit (X) is greater than the cap (Y)"; Besu
    # EXCEEDS_BLOCK_GAS_LIMIT "Transaction gas limit exceeds block gas limit",
    # EXCEEDS_TRANSACTION_GAS_LIMIT; Erigon "gas limit is too high"; Nethermind
    # "gas limit reached" (GasLimitExceeded; < 1.31 "GasLimitExceeded") and
    # "TxGasLimitCapExceeded"; Hardhat "exceeds transaction gas cap of 16777216".
    (
        r"\bintrinsic gas too high\b|\bexceeds (?:the )?block gas limit\b"
        r"|\bexceeds (?:the )?(?:max(?:imum)? |per )?transaction gas (?:cap|limit)\b"
        r"|\bgas limit (?:is )?too high\b|\bgas limit (?:\(\d+\) )?is greater than the\b"
        r"|\bgas limit exceeds (?:the )?block gas limit\b|\bgas limit reached\b"
        r"|\bgas limit exceeded\b|\btx gas limit cap exceeded\b",
        "gas_limit_too_high",
    ),
    # Gas below the intrinsic cost. geth/reth/Anvil/Nethermind "intrinsic gas too low" (geth
    # adds ": gas 20000, minimum needed 21000"); Erigon "IntrinsicGas"; Besu
    # INTRINSIC_GAS_EXCEEDS_GAS_LIMIT "Intrinsic gas exceeds gas limit"; revm "call gas cost
    # (21000) exceeds the gas limit (20000)", "gas floor (X) exceeds the gas limit (Y)" (EIP-7623,
    # geth "insufficient gas for floor data gas cost"); Hardhat "Transaction requires at least
    # 21000 gas but got 20000".
    (
        r"\bintrinsic gas\b|\bcall gas cost\b.*\bexceeds the gas limit\b"
        r"|\bgas floor\b.*\bexceeds the gas limit\b|\bfloor data gas\b"
        r"|\brequires at least \d+ gas\b",
        "gas_too_low",
    ),
    # Too big for a pool. geth/reth "oversized data"; Nethermind "transaction too large" (< 1.31
    # "MaxTxSizeExceeded"); Erigon "RLPTooLong"; Besu EXCEEDS_MAX_TX_BYTES; and the initcode
    # limit (geth/reth "max initcode size exceeded", Erigon "initcode too large", Besu
    # INITCODE_TOO_LARGE, revm "create initcode size limit").
    (
        r"\boversized data\b|\btransaction too large\b|\bmax tx size exceeded\b"
        r"|\brlp too long\b|\bexceeds max tx bytes\b|\bmax initcode size exceeded\b"
        r"|\binitcode too large\b|\bcreate initcode size limit\b",
        "oversized",
    ),
    # A type the chain (or its current fork) does not take. geth/reth "transaction type not
    # supported"; Nethermind "unsupported transaction type" (< 1.31 "NotSupportedTxType");
    # Besu INVALID_TRANSACTION_TYPE "Invalid transaction type"; Erigon TypeNotActivated "fork
    # supporting this transaction type is not activated yet"; Anvil "Unknown transaction type
    # not supported", "… not supported by the current hardfork"; Hardhat "… not supported by the
    # current hardfork", "Invalid transaction type 5.".
    (
        r"\btransaction type not supported\b|\btx type not supported\b"
        r"|\bunsupported transaction type\b|\bnot supported tx type\b"
        r"|\binvalid transaction type\b|\bunknown transaction type\b"
        r"|\btransaction type is not activated\b|\bnot supported by the current hardfork\b",
        "type_not_supported",
    ),
    # ── for now ───────────────────────────────────────────────────────────────────────────
    # geth/reth "insufficient funds for gas * price + value" (and "… for transfer"); Anvil
    # "Insufficient funds for gas * price + value"; Nethermind (< 1.31 "InsufficientFunds");
    # Erigon "insufficient funds"; Besu UPFRONT_COST_EXCEEDS_BALANCE "Upfront cost exceeds
    # account balance"; revm "lack of funds (X) for max fee (Y)"; Hardhat "Sender doesn't have
    # enough funds to send tx".
    (
        r"\binsufficient funds\b|\bupfront cost exceeds\b|\black of funds\b"
        r"|\bdoesn't have enough funds\b|\bnot enough funds\b",
        "insufficient_funds",
    ),
    # Below the pool's minimum price or tip, or outbid in a full pool (before "fee too low":
    # Nethermind < 1.31 says "FeeTooLowToCompete"). geth/reth/Nethermind "transaction
    # underpriced" (geth: "…: gas tip cap 1, minimum needed 2"), geth "transaction gas price
    # below minimum"; Erigon "underpriced"; Besu GAS_PRICE_TOO_LOW "Gas price below configured
    # minimum gas price"; reth "transaction priority fee below minimum required priority fee";
    # Hardhat "Transaction gas price is 0, which is below the minimum of 1".
    (
        r"\bfee too low to compete\b|\bunderpriced\b|\bgas price below (?:the )?(?:configured )?"
        r"minimum\b|\bbelow the minimum\b|\bpriority fee below minimum\b"
        r"|\btransaction price too low\b|\bgas price too low\b",
        "underpriced",
    ),
    # The fee cap below the (next) block's base fee. geth/reth/Anvil "max fee per gas less than
    # block base fee"; Besu "Gas price below current base fee",
    # MAX_FEE_PER_GAS_BELOW_CURRENT_BASE_FEE; revm "gas price is less than basefee"; Hardhat
    # "Transaction maxFeePerGas (X) is too low for the next block, which has a baseFeePerGas of
    # Y"; Erigon FeeTooLow "fee too low" (and ImportResult FEE_TOO_LOW); Nethermind < 1.31
    # "FeeTooLow".
    (
        r"\bless than (?:the )?block base ?fee\b|\bbelow (?:the )?current base ?fee\b"
        r"|\bless than (?:the )?base ?fee\b|\btoo low for the next block\b|\bfee too low\b"
        r"|\bfee cap too low\b",
        "fee_too_low",
    ),
    # A gap before this nonce. geth/reth/Nethermind "nonce too high" (Nethermind < 1.31
    # "NonceGap"); revm "nonce 7 too high, expected 5"; Hardhat "Nonce too high. Expected nonce
    # to be 5 but got 7."; Nethermind "nonce too far in future"; Besu NONCE_TOO_HIGH,
    # NONCE_TOO_FAR_IN_FUTURE_FOR_SENDER "Transaction nonce is too distant from current sender
    # nonce", INCORRECT_NONCE, LOWER_NONCE_INVALID_TRANSACTION_EXISTS "An invalid transaction
    # with a lower nonce exists"; Nethermind "delegation nonce gap".
    (
        r"\bnonce (?:\d+ )?too high\b|\bnonce gap\b|\bnonce too far in (?:the )?future\b"
        r"|\bnonce is too distant\b|\bincorrect nonce\b"
        r"|\binvalid transaction with a lower nonce exists\b",
        "nonce_too_high",
    ),
    # The pool (or the sender's share of it) is full. geth/reth "txpool is full"; geth/Besu
    # "account limit exceeded"; Erigon "pending sub-pool is full", "queued sub-pool is full",
    # "baseFee sub-pool is full", "blobs limit in txpool is full", "Spammer".
    (
        r"\btxpool is full\b|\bsub pool is full\b|\bpool is full\b|\bpool overflow\b"
        r"|\baccount limit exceeded\b|\bspammer\b",
        "pool_full",
    ),
    # A fee above the node's own safety cap (--rpc.txfeecap): this node's policy, not the
    # chain's. geth/Erigon "tx fee (1.20 ether) exceeds the configured cap (1.00 ether)"; reth
    # "tx fee (X wei) exceeds the configured cap (Y wei)"; Besu TX_FEECAP_EXCEEDED "Transaction
    # fee cap exceeded".
    (
        r"\bexceeds the configured cap\b|\btransaction fee cap exceeded\b|\btx feecap exceeded\b",
        "fee_above_node_cap",
    ),
    # A sender with code. geth/Nethermind "sender not an eoa"; reth "sender is not an EOA";
    # revm "reject transactions from senders with deployed code".
    (
        r"\bsender (?:is )?not an eoa\b|\bsenders with deployed code\b|\bsender is contract\b",
        "sender_not_eoa",
    ),
    # Nodes that simulate a transaction before pooling it (some L2 sequencers).
    (r"\bexecution reverted\b", "execution_reverted"),
)

# How a call (eth_call, eth_estimateGas) that did not complete failed. The revert comes first:
# its reason string is the contract's and may say anything.
_CALL_FAILURES: Final = _patterns(
    # geth/reth/Anvil "execution reverted" (code 3, with ": reason" when there is one); Besu
    # REVERT_ERROR "Execution reverted"; Hardhat "VM Exception while processing transaction:
    # reverted with reason string '…'", "Transaction reverted without a reason string", "…
    # reverted with panic code 0x11", "… reverted with custom error '…'".
    (r"\bexecution reverted\b|\breverted\b|\brevert\b", "execution_reverted"),
    # INVALID (0xfe) or an undefined opcode. geth "invalid opcode: INVALID" (vm
    # ErrInvalidOpCode "invalid opcode: %v"); Anvil "EVM error InvalidFEOpcode" and "EVM error
    # OpcodeNotFound", reth "EVM error: InvalidFEOpcode" (revm HaltReason); Hardhat "VM
    # Exception while processing transaction: invalid opcode"; revm NotActivated for an opcode
    # of a later fork.
    (
        r"\binvalid opcode\b|\binvalid fe opcode\b|\bopcode not found\b|\bundefined opcode\b"
        r"|\bevm error:? not activated\b",
        "invalid_opcode",
    ),
    # Out of gas. geth "out of gas" and, from eth_estimateGas, "gas required exceeds allowance
    # (30000000)"; reth "out of gas: gas required exceeds: 100000"; Anvil "Out of gas: gas
    # required exceeds allowance: 30000000", "EVM error OutOfGas"; Hardhat "Transaction ran out
    # of gas".
    (
        r"\bout of gas\b|\bgas required exceeds\b|\bran out of gas\b|\bgas exhausted\b",
        "out_of_gas",
    ),
    # Any other exceptional halt. geth vm/errors.go "stack underflow (0 <=> 2)", "stack limit
    # reached 1024 (1023)", "invalid jump destination", "write protection", "return data out of
    # bounds", "max call depth exceeded", "contract address collision", "max code size
    # exceeded", "invalid code: must not begin with 0xef"; Anvil/reth "EVM error StackUnderflow",
    # "EVM error InvalidJump"…; Hardhat "VM Exception while processing transaction: …".
    (
        r"\bstack underflow\b|\bstack overflow\b|\bstack limit reached\b"
        r"|\binvalid jump(?: destination)?\b|\bwrite protection\b|\bstate change during static"
        r"\b|\breturn data out of bounds\b|\bmax call depth exceeded\b|\bcall too deep\b"
        r"|\bcontract address collision\b|\bcreate collision\b|\bmax code size exceeded\b"
        r"|\binvalid code\b|\bevm error\b|\bvm exception while processing transaction\b",
        "execution_halted",
    ),
)

#: JSON-RPC's "Method not found".
_METHOD_NOT_FOUND: Final = -32601

#: The code geth, reth and Anvil give a reverted call.
_EXECUTION_REVERTED_CODE: Final = 3

# Erigon's eth_sendRawTransaction prefixes the pool's verdict with its ImportResult name.
_ERIGON_IMPORT_RESULT: Final = re.compile(
    r"^(?:already exists|fee too low|stale|invalid|internal error): "
)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def normalise(message: str) -> str:
    """A node's message as the patterns read it: camelCase split into words, ``_`` and ``-``
    read as spaces, backticks dropped, lowercased, whitespace collapsed."""
    text = _CAMEL.sub(" ", message).replace("`", "")
    text = text.replace("_", " ").replace("-", " ").lower()
    return " ".join(text.split())


def provider_fault(message: str, code: object = None) -> str | None:
    """The reason an error answer is the provider's fault rather than the request's, or None."""
    if code == _METHOD_NOT_FOUND:
        return "method_unavailable"
    return _first(_PROVIDER_FAULTS, normalise(message))


def send_refusal(message: str) -> str:
    """The reason of a refusal of ``eth_sendRawTransaction`` (``rejected`` if unknown).

    The reasons in `ALREADY_SENT` mean the nonce is taken (perhaps by this very transaction);
    those in `PERMANENT` that these bytes can never be accepted.
    """
    text = normalise(message)
    prefix = _ERIGON_IMPORT_RESULT.match(text)
    reason = _first(_SEND_REFUSALS, text[prefix.end() :] if prefix else text)
    if reason is None and prefix:
        # The pool's own words said nothing known: its ImportResult is all there is.
        reason = _first(_SEND_REFUSALS, prefix.group(0))
    return reason or "rejected"


def call_failure(message: str, code: object = None) -> str | None:
    """How a call that reverted or halted failed (one of `CALL_FAILURES`), or None if the
    answer is not about the call's execution."""
    if code == _EXECUTION_REVERTED_CODE:
        return "execution_reverted"
    return _first(_CALL_FAILURES, normalise(message))


def _first(table: tuple[tuple[re.Pattern[str], str], ...], text: str) -> str | None:
    return next((name for pattern, name in table if pattern.search(text)), None)
