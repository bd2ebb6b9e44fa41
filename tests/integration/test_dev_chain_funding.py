"""`sluice dev`'s chain set-up funds the hot wallet on either node, and fails loudly when it cannot.

Before, an ``anvil_setBalance`` the node did not support was ignored: the wallet held 0 and every
withdrawal failed much later. Now the answer and the resulting balance are both checked.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3
from web3.providers.base import BaseProvider
from web3.types import RPCEndpoint, RPCResponse

from sluice.devnet import setup
from sluice.domain.addresses import Address
from sluice.testing.anvil_control import control_for
from sluice.testing.hardhat import HardhatProcess
from sluice.testing.rpc_proxy import RpcFaultProxy


async def test_the_dev_chain_set_up_funds_the_hot_wallet_on_hardhat(
    hardhat: HardhatProcess, tmp_path: Path
) -> None:
    wallet = Address(Account.create().address)

    chain = await asyncio.to_thread(setup.prepare_chain, hardhat.rpc_url, tmp_path, wallet)

    async with control_for(hardhat) as control:
        assert await control.balance(wallet) == setup.HOT_WALLET_FUNDING
    assert chain.hot_wallet == wallet


async def test_a_node_that_refuses_the_balance_call_stops_the_set_up_with_the_reason(
    hardhat: HardhatProcess, tmp_path: Path
) -> None:
    wallet = Address(Account.create().address)
    async with RpcFaultProxy(hardhat.rpc_url) as proxy:
        # A node that does not say what it is gets Anvil's method, which Hardhat does not know.
        proxy.error("web3_clientVersion", code=-32601, message="method not found", probability=1.0)

        with pytest.raises(setup.DevChainError) as excinfo:
            await asyncio.to_thread(setup.prepare_chain, proxy.url, tmp_path, wallet)

    message = excinfo.value.detail
    assert f"could not fund the hot wallet {wallet}" in message
    assert "anvil_setBalance" in message
    assert "not supported" in message
    async with control_for(hardhat) as control:
        assert await control.balance(wallet) == 0


class _IgnoresSetBalance(BaseProvider):
    """A node that answers ``anvil_setBalance`` with success and changes nothing."""

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        results: dict[str, Any] = {
            "web3_clientVersion": "anvil/v1.7.1",
            "anvil_setBalance": None,
            "eth_getBalance": "0x0",
            "eth_chainId": hex(setup.CHAIN_ID),
        }
        return {"jsonrpc": "2.0", "id": 1, "result": results[method]}


def test_a_balance_call_that_changes_nothing_stops_the_set_up() -> None:
    wallet = Address(Account.create().address)

    with pytest.raises(setup.DevChainError, match="holds 0 wei") as excinfo:
        setup.fund_native(Web3(_IgnoresSetBalance()), wallet, setup.HOT_WALLET_FUNDING)

    assert "anvil_setBalance" in excinfo.value.detail


def test_the_balance_method_follows_the_nodes_client_version() -> None:
    class Node(BaseProvider):
        def __init__(self, version: str) -> None:
            super().__init__()
            self.version = version

        def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
            assert method == "web3_clientVersion"
            return {"jsonrpc": "2.0", "id": 1, "result": self.version}

    hardhat = "HardhatNetwork/2.29.1/@nomicfoundation/edr/0.3.8"
    assert setup.set_balance_method(Web3(Node("anvil/v1.7.1"))) == "anvil_setBalance"
    assert setup.set_balance_method(Web3(Node(hardhat))) == "hardhat_setBalance"
    assert setup.set_balance_method(Web3(Node("Geth/v1.14"))) == "anvil_setBalance"
