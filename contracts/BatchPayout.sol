// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title BatchPayout
/// @notice Pays many withdrawals in one transaction, in the native coin (`payNative`) or in an
///         ERC-20 token (`payToken`), for its owner only. A batch is atomic: if any payment
///         fails, the whole call reverts with `PaymentFailed(index)` and nothing is paid.
/// @dev Compiled by `contracts/build.mjs` for the "paris" EVM (no PUSH0, so it deploys on
///      chains from before Shanghai too). The owner lives in a storage slot, not in an
///      immutable: every deployment has the same runtime code, so Sluice verifies a deployed
///      batch contract against one code hash (`deployedBytecode` in the artifact).
///
///      There is no way to change the owner, and no `receive`/`fallback`: the contract never
///      holds any coin after a call (`payNative` pays out exactly what it is sent) and holds no
///      tokens (`payToken` moves them straight from the owner to each recipient, under the
///      allowance the owner gave this contract, which only the owner can make it spend).
///
///      The loops are inline assembly: one scratch region of memory holds the call data of
///      every token call, the owner is read from storage once, and each payment's `Paid` record is
///      the cheapest log that names it: a LOG0 (no topic) whose 4 bytes of data are the
///      payment's index, big-endian. That is 407 gas, against 1,006 for an ABI event
///      `Paid(uint256)` (LOG1 and a 32-byte word); a log costs 375 gas, 375 per topic and 8 per
///      byte of data. It is the only log this contract emits, so Sluice knows it by its emitter
///      (the wallet's own batch contract) and its length (`sluice.domain.batches.paid_indices`). Calldata layout is that of the ABI (each array: a length word, then its items).
contract BatchPayout {
    /// @notice The deployer: the only account allowed to pay. It never changes.
    address public owner;

    // Paid(index): once per payment, in order, a raw LOG0 of 4 bytes (see above); Solidity
    // cannot declare it as an event, whose data is whole 32-byte words.

    /// @notice The caller is not the owner.
    error NotOwner();

    /// @notice The recipients and the amounts are not arrays of the same length.
    error LengthMismatch();

    /// @notice `payNative` was sent `sent` wei, but the amounts add up to `total`
    ///         (`type(uint256).max` if their sum overflows).
    error ValueMismatch(uint256 sent, uint256 total);

    /// @notice The payment at `index` failed: the native send reverted, or the token's
    ///         `transferFrom` reverted, returned false, or returned something that is not true.
    error PaymentFailed(uint256 index);

    /// @notice `token` has no code: it cannot be an ERC-20 token.
    error NotAToken(address token);

    constructor() {
        owner = msg.sender;
    }

    /// @notice Send `amounts[i]` wei to `to[i]`, for each i in order. `msg.value` must be the
    ///         sum of the amounts, exactly. Each payment is a call with all the remaining gas
    ///         (so a contract recipient may run code); if one fails, everything reverts.
    function payNative(address[] calldata to, uint256[] calldata amounts) external payable {
        // The owner check also stops re-entrancy: a recipient calling back is not the owner.
        if (msg.sender != owner) revert NotOwner();
        if (to.length != amounts.length) revert LengthMismatch();

        bytes4 paymentFailed = PaymentFailed.selector;
        bytes4 valueMismatch = ValueMismatch.selector;
        assembly {
            // 1. The amounts must add up to msg.value, before anything is paid. A sum that wraps
            //    is smaller than its last term: then it overflowed and cannot equal msg.value.
            let total := 0
            let amountsEnd := add(amounts.offset, shl(5, amounts.length))
            for { let p := amounts.offset } lt(p, amountsEnd) { p := add(p, 0x20) } {
                let amount := calldataload(p)
                total := add(total, amount)
                if lt(total, amount) {
                    total := not(0)
                    break
                }
            }
            if iszero(eq(total, callvalue())) {
                mstore(0x00, valueMismatch)
                mstore(0x04, callvalue())
                mstore(0x24, total)
                revert(0x00, 0x44)
            }

            // 2. Pay. `o` is the byte offset of the current item in both arrays: index * 32.
            let end := shl(5, to.length)
            let dirty := 0
            for { let o := 0 } lt(o, end) { o := add(o, 0x20) } {
                let recipient := calldataload(add(to.offset, o))
                // OR of every recipient word, checked after the loop (cheaper than once per
                // item; the revert undoes any payment): an address with dirty upper bits is
                // malformed calldata, which the ABI decoder would reject, so we refuse it rather
                // than pay the truncated address.
                dirty := or(dirty, recipient)
                // No return data is copied: a recipient cannot make us pay for memory.
                if iszero(call(gas(), recipient, calldataload(add(amounts.offset, o)), 0x00, 0x00, 0x00, 0x00)) {
                    mstore(0x00, paymentFailed)
                    mstore(0x04, shr(5, o))
                    revert(0x00, 0x24)
                }
                mstore(0x00, shl(224, shr(5, o))) // the index as the first 4 bytes
                log0(0x00, 0x04) // Paid(index)
            }
            if shr(160, dirty) { revert(0x00, 0x00) }
        }
    }

    /// @notice Move `amounts[i]` of `token` from the owner to `to[i]`, for each i in order, with
    ///         `token.transferFrom(owner, to[i], amounts[i])`: the owner must have approved this
    ///         contract for the total. Tokens that return nothing (as Ethereum's USDT) work.
    ///         If one payment fails, everything reverts.
    function payToken(address token, address[] calldata to, uint256[] calldata amounts) external {
        if (msg.sender != owner) revert NotOwner();
        if (to.length != amounts.length) revert LengthMismatch();
        // Once, before the loop: a call to an address without code succeeds and returns
        // nothing, which would look like a token that returns nothing. Code cannot disappear
        // in the middle of a transaction (SELFDESTRUCT takes effect at its end, if at all).
        if (token.code.length == 0) revert NotAToken(token);

        bytes4 paymentFailed = PaymentFailed.selector;
        assembly {
            // The call data of `transferFrom(owner, recipient, amount)`, reused by every call:
            //   0x80 selector (4 bytes) | 0x84 from | 0xa4 to | 0xc4 amount   (0x64 bytes)
            // The owner is msg.sender (checked above), so its storage slot is not read again.
            // 0x00 receives the first word of each return data; 0x20 holds Paid's data.
            mstore(0x80, shl(224, 0x23b872dd)) // bytes4(keccak256("transferFrom(address,address,uint256)"))
            mstore(0x84, caller())

            // `o` is the byte offset of the current item in both arrays: index * 32.
            let end := shl(5, to.length)
            let dirty := 0 // the OR of every recipient word, as in payNative
            for { let o := 0 } lt(o, end) { o := add(o, 0x20) } {
                let recipient := calldataload(add(to.offset, o))
                dirty := or(dirty, recipient)
                mstore(0xa4, recipient)
                mstore(0xc4, calldataload(add(amounts.offset, o)))
                // Cleared each time: return data shorter than a word must not be completed by
                // what an earlier call left there.
                mstore(0x00, 0)
                let success := call(gas(), token, 0, 0x80, 0x64, 0x00, 0x20)
                // As OpenZeppelin v5's SafeERC20 `_callOptionalReturn` (token/ERC20/utils/
                // SafeERC20.sol): the call must succeed, and then either return no data (the
                // token has code: checked before the loop) or return a first word equal to 1.
                // Anything else, and a revert, is PaymentFailed(i) here (OpenZeppelin bubbles a
                // revert, and raises SafeERC20FailedOperation otherwise).
                if iszero(and(success, or(iszero(returndatasize()), eq(mload(0x00), 1)))) {
                    mstore(0x00, paymentFailed)
                    mstore(0x04, shr(5, o))
                    revert(0x00, 0x24)
                }
                mstore(0x20, shl(224, shr(5, o))) // the index as the first 4 bytes
                log0(0x20, 0x04) // Paid(index)
            }
            if shr(160, dirty) { revert(0x00, 0x00) }
        }
    }
}
