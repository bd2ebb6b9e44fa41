"""`verify_network` checks every configured batch contract (batching on): one that does not
verify makes the network misconfigured with the reason; a node failing while one is read is an
outage, not a verdict."""

from __future__ import annotations

import pytest

from sluice.chains.batch_contract import OWNER_SELECTOR, artifact
from sluice.domain.addresses import Address
from sluice.domain.assets import Asset, Batching, Network
from sluice.errors import ChainUnavailableError, SluiceError
from sluice.services.network_health import MisconfiguredError, verify_network

WALLET = Address("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
OTHER_WALLET = Address("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
GOOD = Address("0x5FbDB2315678afecb367f032d93F642f64180aa3")
EMPTY = Address("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512")


class Endpoint:
    """One RPC URL on the configured chain, with contract code and ``owner()`` answers."""

    def __init__(self, *, failing: bool = False) -> None:
        self.codes: dict[Address, bytes] = {GOOD: artifact().deployed_bytecode}
        self.owners: dict[Address, Address] = {GOOD: WALLET}
        self.failing = failing
        self.read: list[Address] = []

    async def chain_id(self) -> int:
        return 31337

    async def token_decimals(self, token: Address) -> int:
        raise SluiceError("no tokens here")

    async def code(self, address: Address) -> bytes:
        self.read.append(address)
        if self.failing:
            raise ChainUnavailableError("eth_getCode failed: timeout")
        return self.codes.get(address, b"")

    async def call(self, to: Address, data: bytes) -> bytes:
        assert data == OWNER_SELECTOR
        return bytes.fromhex(self.owners[to][2:]).rjust(32, b"\0")

    async def close(self) -> None:
        return None


def _network(*pairs: tuple[Address, Address], enabled: bool = True) -> Network:
    return Network(
        name="devnet",
        chain_id=31337,
        native=Asset("devnet", "ETH", 18),
        batching=Batching(contracts=pairs, enabled=enabled),
    )


async def test_batch_contracts_that_verify_pass() -> None:
    endpoint = Endpoint()

    await verify_network(_network((WALLET, GOOD)), ["a"], lambda _: endpoint)

    assert endpoint.read == [GOOD]


async def test_each_batch_contract_that_does_not_verify_is_named_and_misconfigures() -> None:
    network = _network((WALLET, GOOD), (OTHER_WALLET, GOOD), (WALLET, EMPTY))

    with pytest.raises(MisconfiguredError) as excinfo:
        await verify_network(network, ["a"], lambda _: Endpoint())

    assert excinfo.value.detail == (
        f"network devnet: batch contract {GOOD} is owned by {WALLET}, not by hot wallet "
        f"{OTHER_WALLET}; batch contract {EMPTY} of hot wallet {WALLET} has no code on this chain"
    )


async def test_a_node_failing_while_a_batch_contract_is_read_is_an_outage() -> None:
    with pytest.raises(ChainUnavailableError, match="timeout"):
        await verify_network(_network((WALLET, GOOD)), ["a"], lambda _: Endpoint(failing=True))


async def test_batch_contracts_are_not_read_while_batching_is_off() -> None:
    endpoint = Endpoint()

    await verify_network(_network((WALLET, EMPTY), enabled=False), ["a"], lambda _: endpoint)

    assert endpoint.read == []
