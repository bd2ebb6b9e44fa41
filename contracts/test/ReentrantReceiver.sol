// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

// TEST ONLY. A recipient that calls back into the batch contract that pays it, for tests that
// a batch cannot be re-entered. Compiled by `contracts/build.mjs`; the artifact beside this file
// is not part of the package (`sluice.testing.contracts` reads it from the source checkout).

/// @title ReentrantReceiver
/// @notice On each native payment, `receive()` calls the batch contract back: `payNative` paying
///         itself the amount it was just sent (with that value), then `payToken` paying itself
///         one base unit of `token`. It records what happened; with `bubble` set it then reverts
///         with the revert data of the first call back that failed (so the payment fails),
///         otherwise it accepts the payment.
contract ReentrantReceiver {
    /// @notice A call back into the batch contract succeeded (it should never).
    event Reentered(bytes4 selector);

    /// @notice A call back failed with `revertData`.
    event ReentryFailed(bytes4 selector, bytes revertData);

    /// @notice The batch contract it calls back.
    address public immutable batch;

    /// @notice The token `payToken` is asked to pay.
    address public immutable token;

    /// @notice Whether a failed call back makes the payment fail (revert with its data).
    bool public immutable bubble;

    /// @notice How many native payments it received (and accepted).
    uint256 public received;

    /// @notice How many calls back succeeded.
    uint256 public reentered;

    /// @notice How many calls back failed.
    uint256 public failed;

    /// @notice The revert data of the last call back that failed.
    bytes public lastRevertData;

    constructor(address batch_, address token_, bool bubble_) {
        batch = batch_;
        token = token_;
        bubble = bubble_;
    }

    receive() external payable {
        address[] memory to = new address[](1);
        to[0] = address(this);
        uint256[] memory amounts = new uint256[](1);

        amounts[0] = msg.value;
        bytes memory native = abi.encodeWithSignature("payNative(address[],uint256[])", to, amounts);
        bytes memory firstError = _callBack(native, msg.value);

        amounts[0] = 1;
        bytes memory tokens = abi.encodeWithSignature(
            "payToken(address,address[],uint256[])", token, to, amounts
        );
        bytes memory secondError = _callBack(tokens, 0);

        if (bubble) {
            bytes memory revertData = firstError.length > 0 ? firstError : secondError;
            if (revertData.length > 0) {
                assembly {
                    revert(add(revertData, 0x20), mload(revertData))
                }
            }
        }
        received += 1;
    }

    /// @dev One call back; the revert data if it failed (empty if it succeeded, or failed
    ///      without data: then `failed` still counts it).
    function _callBack(bytes memory data, uint256 value) private returns (bytes memory) {
        bytes4 selector = bytes4(data);
        (bool ok, bytes memory result) = batch.call{value: value}(data);
        if (ok) {
            reentered += 1;
            emit Reentered(selector);
            return "";
        }
        failed += 1;
        lastRevertData = result;
        emit ReentryFailed(selector, result);
        return result;
    }
}
