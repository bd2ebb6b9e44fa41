// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title DemoToken
/// @notice A minimal, self-contained ERC-20 token for local development and tests.
/// @dev Deliberately dependency-free so the compiled artifact can be rebuilt and
///      verified from this single file (see `contracts/build.mjs`). It is NOT meant
///      for production: the owner can mint without limit.
contract DemoToken {
    // ---------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------

    /// @notice `account` tried to move `needed` tokens but only holds `balance`.
    error InsufficientBalance(address account, uint256 balance, uint256 needed);

    /// @notice `spender` tried to move `needed` tokens but is only allowed `allowance`.
    error InsufficientAllowance(address spender, uint256 allowance, uint256 needed);

    /// @notice Tokens may not be sent (or minted) to the zero address.
    error TransferToZeroAddress();

    /// @notice `caller` is not the owner, and the function is owner-only.
    error NotOwner(address caller);

    // ---------------------------------------------------------------------
    // Events (as specified by ERC-20)
    // ---------------------------------------------------------------------

    /// @notice Emitted when `value` tokens move from `from` to `to`.
    ///         Mints are reported with `from` set to the zero address.
    event Transfer(address indexed from, address indexed to, uint256 value);

    /// @notice Emitted when `owner` sets the allowance of `spender` to `value`.
    event Approval(address indexed owner, address indexed spender, uint256 value);

    // ---------------------------------------------------------------------
    // Storage
    // ---------------------------------------------------------------------

    /// @notice Human-readable token name, e.g. "Demo USD".
    string public name;

    /// @notice Ticker symbol, e.g. "DUSD".
    string public symbol;

    /// @notice Number of decimals used in the user-facing representation.
    uint8 public immutable decimals;

    /// @notice The deployer; the only account allowed to call `mint`.
    address public immutable owner;

    /// @notice Total number of tokens in existence (in base units).
    uint256 public totalSupply;

    /// @notice Token balance of each account (in base units).
    mapping(address account => uint256) public balanceOf;

    /// @notice Remaining amount `spender` may move on behalf of `holder`.
    mapping(address holder => mapping(address spender => uint256)) public allowance;

    // ---------------------------------------------------------------------
    // Construction
    // ---------------------------------------------------------------------

    /// @param name_ Token name.
    /// @param symbol_ Token symbol.
    /// @param decimals_ Token decimals.
    /// @param initialSupply Amount (in base units) minted to the deployer.
    constructor(string memory name_, string memory symbol_, uint8 decimals_, uint256 initialSupply) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
        owner = msg.sender;
        _mint(msg.sender, initialSupply);
    }

    // ---------------------------------------------------------------------
    // ERC-20
    // ---------------------------------------------------------------------

    /// @notice Move `amount` tokens from the caller to `to`.
    /// @return Always true; failures revert with a custom error.
    function transfer(address to, uint256 amount) external returns (bool) {
        _transfer(msg.sender, to, amount);
        return true;
    }

    /// @notice Move `amount` tokens from `from` to `to` using the caller's allowance.
    /// @dev An allowance of `type(uint256).max` is treated as unlimited and is not
    ///      decreased (a common ERC-20 convention).
    /// @return Always true; failures revert with a custom error.
    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < amount) {
                revert InsufficientAllowance(msg.sender, allowed, amount);
            }
            unchecked {
                // Cannot underflow: checked just above.
                allowance[from][msg.sender] = allowed - amount;
            }
        }
        _transfer(from, to, amount);
        return true;
    }

    /// @notice Allow `spender` to move up to `amount` of the caller's tokens.
    /// @dev Overwrites any previous allowance.
    /// @return Always true.
    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    // ---------------------------------------------------------------------
    // Development helpers
    // ---------------------------------------------------------------------

    /// @notice Create `amount` new tokens for `to`. Owner only; dev tooling uses
    ///         it to fund wallets on a local chain.
    function mint(address to, uint256 amount) external {
        if (msg.sender != owner) {
            revert NotOwner(msg.sender);
        }
        _mint(to, amount);
    }

    // ---------------------------------------------------------------------
    // Internals
    // ---------------------------------------------------------------------

    function _transfer(address from, address to, uint256 amount) private {
        if (to == address(0)) {
            revert TransferToZeroAddress();
        }
        uint256 fromBalance = balanceOf[from];
        if (fromBalance < amount) {
            revert InsufficientBalance(from, fromBalance, amount);
        }
        unchecked {
            // Cannot underflow: checked just above. Cannot overflow: the sum of
            // all balances is bounded by totalSupply, which is overflow-checked.
            balanceOf[from] = fromBalance - amount;
            balanceOf[to] += amount;
        }
        emit Transfer(from, to, amount);
    }

    function _mint(address to, uint256 amount) private {
        if (to == address(0)) {
            revert TransferToZeroAddress();
        }
        // Checked arithmetic: reverts with a panic if the supply would overflow.
        totalSupply += amount;
        unchecked {
            // Cannot overflow: balanceOf[to] <= totalSupply, checked above.
            balanceOf[to] += amount;
        }
        emit Transfer(address(0), to, amount);
    }
}
