// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

// TEST ONLY. An ERC-20 token whose functions return nothing, as Ethereum's USDT does, for tests of
// code that must handle such tokens (SafeERC20-style return data checks). Compiled by
// `contracts/build.mjs`; the artifact beside this file is not part of the package
// (`sluice.testing.contracts` reads it from the source checkout). The owner can mint without
// limit: never deploy it anywhere but a local test chain.

/// @title NoReturnToken
/// @notice A working ERC-20 whose `transfer`, `transferFrom` and `approve` return no data (USDT's
///         ABI): a failure reverts, a success returns nothing, not `true`. Its owner can mint.
contract NoReturnToken {
    /// @notice `account` tried to move `needed` tokens but only holds `balance`.
    error InsufficientBalance(address account, uint256 balance, uint256 needed);

    /// @notice `spender` tried to move `needed` tokens but is only allowed `allowance`.
    error InsufficientAllowance(address spender, uint256 allowance, uint256 needed);

    /// @notice Tokens may not be sent (or minted) to the zero address.
    error TransferToZeroAddress();

    /// @notice `caller` is not the owner, and the function is owner-only.
    error NotOwner(address caller);

    /// @notice Emitted when `value` tokens move from `from` to `to` (mints: `from` is zero).
    event Transfer(address indexed from, address indexed to, uint256 value);

    /// @notice Emitted when `owner` sets the allowance of `spender` to `value`.
    event Approval(address indexed owner, address indexed spender, uint256 value);

    string public name;
    string public symbol;
    uint8 public immutable decimals;

    /// @notice The deployer: the only account allowed to mint.
    address public immutable owner;

    uint256 public totalSupply;
    mapping(address account => uint256) public balanceOf;
    mapping(address holder => mapping(address spender => uint256)) public allowance;

    /// @param initialSupply Amount (in base units) minted to the deployer.
    constructor(string memory name_, string memory symbol_, uint8 decimals_, uint256 initialSupply) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
        owner = msg.sender;
        _mint(msg.sender, initialSupply);
    }

    /// @notice Move `amount` tokens from the caller to `to`. Returns nothing.
    function transfer(address to, uint256 amount) external {
        _transfer(msg.sender, to, amount);
    }

    /// @notice Move `amount` tokens from `from` to `to` under the caller's allowance (an
    ///         allowance of `type(uint256).max` is unlimited). Returns nothing.
    function transferFrom(address from, address to, uint256 amount) external {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < amount) {
                revert InsufficientAllowance(msg.sender, allowed, amount);
            }
            unchecked {
                allowance[from][msg.sender] = allowed - amount;
            }
        }
        _transfer(from, to, amount);
    }

    /// @notice Allow `spender` to move up to `amount` of the caller's tokens. Returns nothing.
    function approve(address spender, uint256 amount) external {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
    }

    /// @notice Create `amount` new tokens for `to`. Owner only.
    function mint(address to, uint256 amount) external {
        if (msg.sender != owner) {
            revert NotOwner(msg.sender);
        }
        _mint(to, amount);
    }

    function _transfer(address from, address to, uint256 amount) private {
        if (to == address(0)) {
            revert TransferToZeroAddress();
        }
        uint256 fromBalance = balanceOf[from];
        if (fromBalance < amount) {
            revert InsufficientBalance(from, fromBalance, amount);
        }
        unchecked {
            balanceOf[from] = fromBalance - amount;
            balanceOf[to] += amount;
        }
        emit Transfer(from, to, amount);
    }

    function _mint(address to, uint256 amount) private {
        if (to == address(0)) {
            revert TransferToZeroAddress();
        }
        totalSupply += amount;
        unchecked {
            balanceOf[to] += amount;
        }
        emit Transfer(address(0), to, amount);
    }
}
