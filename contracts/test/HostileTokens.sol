// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

// TEST ONLY. ERC-20 tokens that misbehave the way some real tokens do, for tests of token
// withdrawals that fail. Compiled by `contracts/build.mjs`; the artifacts beside this file are
// not part of the package (`sluice.testing.contracts` reads them from the source checkout).
// The owner can mint without limit: never deploy these anywhere but a local test chain.

/// @title TestToken
/// @notice A minimal ERC-20 with an owner-only `mint`, the base of the hostile tokens below.
///         Its `transfer`, `transferFrom` and its hooks are virtual so each token changes only
///         what it must.
abstract contract TestToken {
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

    /// @notice The deployer: the only account allowed to mint (and to block, where it can).
    address public immutable owner;

    uint256 public totalSupply;
    mapping(address account => uint256) public balanceOf;
    mapping(address holder => mapping(address spender => uint256)) public allowance;

    modifier onlyOwner() {
        if (msg.sender != owner) {
            revert NotOwner(msg.sender);
        }
        _;
    }

    /// @param initialSupply Amount (in base units) minted to the deployer.
    constructor(string memory name_, string memory symbol_, uint8 decimals_, uint256 initialSupply) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
        owner = msg.sender;
        _mint(msg.sender, initialSupply);
    }

    function transfer(address to, uint256 amount) external virtual returns (bool) {
        _transfer(msg.sender, to, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount)
        external
        virtual
        returns (bool)
    {
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
        return true;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    /// @notice Create `amount` new tokens for `to`. Owner only.
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }

    function _transfer(address from, address to, uint256 amount) internal virtual {
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

    function _mint(address to, uint256 amount) internal virtual {
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

/// @title FalseToken
/// @notice An ERC-20 whose `transfer` and `transferFrom` return false without reverting: they
///         move nothing and emit no `Transfer`, and their transaction succeeds (receipt status
///         1). Like the tokens that report failure by return value instead of reverting.
///         Everything else (mint, approve, balances) is normal.
contract FalseToken is TestToken {
    constructor(string memory name_, string memory symbol_, uint8 decimals_, uint256 initialSupply)
        TestToken(name_, symbol_, decimals_, initialSupply)
    {}

    function transfer(address, uint256) external pure override returns (bool) {
        return false;
    }

    function transferFrom(address, address, uint256) external pure override returns (bool) {
        return false;
    }
}

/// @title BlockingToken
/// @notice An ERC-20 with a block list, as USDC's blacklist and USDT's: a transfer (or mint)
///         from or to a blocked account reverts with `Blocked(account)`. The owner sets it.
contract BlockingToken is TestToken {
    /// @notice `account` is on the block list: it may neither send nor receive.
    error Blocked(address account);

    /// @notice Emitted when the owner puts `account` on the block list or takes it off.
    event BlockedSet(address indexed account, bool blocked);

    /// @notice Whether `account` is on the block list.
    mapping(address account => bool) public isBlocked;

    constructor(string memory name_, string memory symbol_, uint8 decimals_, uint256 initialSupply)
        TestToken(name_, symbol_, decimals_, initialSupply)
    {}

    /// @notice Put `account` on the block list (`blocked` true) or take it off. Owner only.
    function setBlocked(address account, bool blocked) external onlyOwner {
        isBlocked[account] = blocked;
        emit BlockedSet(account, blocked);
    }

    function _transfer(address from, address to, uint256 amount) internal override {
        _requireNotBlocked(from);
        _requireNotBlocked(to);
        super._transfer(from, to, amount);
    }

    function _mint(address to, uint256 amount) internal override {
        _requireNotBlocked(to);
        super._mint(to, amount);
    }

    function _requireNotBlocked(address account) private view {
        if (isBlocked[account]) {
            revert Blocked(account);
        }
    }
}
