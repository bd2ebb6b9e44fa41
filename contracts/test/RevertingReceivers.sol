// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

// TEST ONLY. Destinations that refuse the native coin, for tests of withdrawals that revert
// on chain. Compiled by `contracts/build.mjs`; the artifacts beside this file are not part of
// the package (`sluice.testing.contracts` reads them from the source checkout).

/// @title RevertingReceiver
/// @notice Refuses every native-coin transfer with REVERT: the transaction fails, the
///         unused gas is refunded, and the revert data is `Error(string)`.
contract RevertingReceiver {
    receive() external payable {
        revert("RevertingReceiver: refuses the native coin");
    }
}

/// @title InvalidReceiver
/// @notice Refuses every native-coin transfer with the INVALID opcode (0xfe): the
///         transaction fails, uses all the gas it was given, and returns no data.
contract InvalidReceiver {
    receive() external payable {
        assembly {
            invalid()
        }
    }
}
