"""`ConfigChecker` on fake chains: every RPC URL, token and hot wallet gets a row; problems name
what differs from the configuration."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from sluice.chains import batch_contract
from sluice.config import NetworkConfig
from sluice.domain.addresses import Address
from sluice.errors import ChainUnavailableError, ConfigurationError
from sluice.services.config_check import (
    ChainProbe,
    ConfigChecker,
    Outcome,
    Probe,
    Row,
    Wallet,
    redacted,
)
from sluice.testing.fakes import FakeChain

TOKEN = Address("0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238")
WALLET = Address("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
OTHER = Address("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
GOOD = "https://good.example/v3/secret-key"
SECOND = "https://second.example/"


def network(*rpc_urls: str, decimals: int = 6, finality: str = "depth") -> NetworkConfig:
    return NetworkConfig.model_validate(
        {
            "chain_id": 11155111,
            "finality": finality,
            "rpc_urls": list(rpc_urls),
            "hot_wallet_keystore": "/keys/hot.json",
            "tokens": [{"symbol": "USDC", "address": TOKEN, "decimals": decimals}],
        }
    )


def funded_chain(chain_id: int = 11155111) -> FakeChain:
    chain = FakeChain(chain_id=chain_id)
    chain.code_sizes[TOKEN] = 1200
    chain.token_decimals_of[TOKEN] = 6
    chain.balances[WALLET] = 10**18
    chain.token_balances[(TOKEN, WALLET)] = 5_000_000
    return chain


async def no_wallets(_name: str, _config: NetworkConfig) -> Sequence[Wallet]:
    return ()


def keystore(address: Address | None = WALLET, problem: str | None = None) -> Wallet:
    return Wallet("keystore /keys/hot.json", address, problem)


async def check(
    config: NetworkConfig,
    chains: dict[str, FakeChain],
    found: Sequence[Wallet] = (keystore(),),
    services: Sequence[Probe] = (),
) -> list[Row]:
    async def find(_name: str, _config: NetworkConfig) -> Sequence[Wallet]:
        return found

    def probe(url: str) -> ChainProbe:
        chain = chains.get(url)
        if chain is None:
            chain = FakeChain()
            chain.go_down()
            chains[url] = chain
        return chain

    checker = ConfigChecker(probe=probe, wallets=find, services=services)
    return await checker.run({"sepolia": config})


def problems(rows: list[Row]) -> list[Row]:
    return [row for row in rows if row.result is Outcome.PROBLEM]


async def test_a_configuration_matching_its_chain_has_no_problem() -> None:
    chains = {GOOD: funded_chain()}
    rows = await check(network(GOOD), chains)
    assert problems(rows) == []
    assert [(row.check, row.result) for row in rows] == [
        ("rpc", Outcome.OK),
        ("token", Outcome.OK),
        ("hot wallet", Outcome.OK),
        ("balance", Outcome.OK),
        ("balance", Outcome.OK),
    ]
    balances = [row.detail for row in rows if row.check == "balance"]
    assert balances == ["1 ETH", "5 USDC"]
    assert chains[GOOD].closed


async def test_an_rpc_url_on_another_chain_is_a_problem_naming_both_ids() -> None:
    chains = {GOOD: funded_chain(chain_id=1), SECOND: funded_chain()}
    rows = await check(network(GOOD, SECOND), chains)
    (problem,) = problems(rows)
    assert problem.check == "rpc"
    assert problem.detail == "chain id 1, configured 11155111"
    # The second URL has the right chain: tokens and balances are checked through it.
    assert {row.check for row in rows if row.result is Outcome.OK} == {
        "rpc",
        "token",
        "hot wallet",
        "balance",
    }
    assert chains[GOOD].closed
    assert chains[SECOND].closed


async def test_on_no_rpc_url_of_the_configured_chain_the_first_answering_one_is_read() -> None:
    chains = {GOOD: funded_chain(chain_id=1), SECOND: funded_chain(chain_id=5)}
    rows = await check(network(GOOD, SECOND, decimals=18), chains)
    assert [(row.check, row.detail) for row in problems(rows)] == [
        ("rpc", "chain id 1, configured 11155111"),
        ("rpc", "chain id 5, configured 11155111"),
        ("token", "decimals() is 6, configured 18 (read on chain 1, which the RPC serves)"),
    ]
    balances = [row.detail for row in rows if row.check == "balance"]
    note = " (read on chain 1, which the RPC serves)"
    # In the configured decimals (18): the amount shows how far off they are.
    assert balances == ["1 ETH" + note, "0.000000000005 USDC" + note]
    assert chains[GOOD].closed
    assert chains[SECOND].closed


async def test_a_token_without_code_on_the_chain_the_rpc_serves_names_that_chain() -> None:
    chain = funded_chain(chain_id=1)
    del chain.code_sizes[TOKEN]
    rows = await check(network(GOOD), {GOOD: chain})
    token = next(row for row in rows if row.check == "token")
    assert token.detail == "no contract at this address on chain 1, which the RPC serves"


async def test_a_later_rpc_url_of_the_configured_chain_is_preferred_to_an_earlier_one() -> None:
    wrong = funded_chain(chain_id=1)
    wrong.token_decimals_of[TOKEN] = 18
    chains = {GOOD: wrong, SECOND: funded_chain()}
    rows = await check(network(GOOD, SECOND), chains)
    (problem,) = problems(rows)
    assert problem.check == "rpc"
    assert all("read on chain" not in row.detail for row in rows)
    assert wrong.closed


async def test_the_rpc_url_is_shown_without_its_path() -> None:
    rows = await check(network(GOOD), {GOOD: funded_chain()})
    assert rows[0].target == "sepolia #1 https://good.example"
    assert all("secret-key" not in row.target + row.detail for row in rows)


async def test_an_unreachable_rpc_url_skips_what_needs_the_chain() -> None:
    rows = await check(network(GOOD), {})
    rpc, token, wallet, native, usdc = rows
    assert rpc.result is Outcome.PROBLEM
    assert rpc.detail.startswith("unreachable: ")
    assert token.result is Outcome.SKIPPED
    assert wallet.result is Outcome.OK  # the keystore loaded; its balances could not be read
    assert (native.result, usdc.result) == (Outcome.SKIPPED, Outcome.SKIPPED)
    assert "no RPC URL answered with chain id 11155111" in native.detail


async def test_a_probe_that_cannot_be_made_is_a_row() -> None:
    def refuse(url: str) -> ChainProbe:
        raise ConfigurationError("the RPC URL must be an http:// or https:// URL with a host")

    checker = ConfigChecker(probe=refuse, wallets=no_wallets)
    (row, token) = await checker.run({"sepolia": network("ftp://x")})
    assert row.result is Outcome.PROBLEM
    assert "http:// or https://" in row.detail
    assert token.result is Outcome.SKIPPED


async def test_wrong_token_decimals_are_a_problem_naming_both() -> None:
    rows = await check(network(GOOD, decimals=18), {GOOD: funded_chain()})
    (problem,) = problems(rows)
    assert problem.check == "token"
    assert problem.detail == "decimals() is 6, configured 18"
    assert TOKEN in problem.target


async def test_a_token_address_without_code_is_a_problem() -> None:
    chain = funded_chain()
    del chain.code_sizes[TOKEN]
    (problem,) = problems(await check(network(GOOD), {GOOD: chain}))
    assert problem.detail == "no contract at this address on chain 11155111"


async def test_a_contract_without_decimals_is_a_problem() -> None:
    chain = funded_chain()
    del chain.token_decimals_of[TOKEN]
    (problem,) = problems(await check(network(GOOD), {GOOD: chain}))
    assert problem.detail.startswith("decimals() failed: ")


async def test_an_empty_hot_wallet_is_a_problem_per_asset() -> None:
    chain = funded_chain()
    chain.balances[WALLET] = 0
    chain.token_balances[(TOKEN, WALLET)] = 0
    found = problems(await check(network(GOOD), {GOOD: chain}))
    assert [row.detail for row in found] == [
        "0 ETH: no gas for any transaction",
        "0 USDC: it cannot pay USDC",
    ]


async def test_an_empty_draining_wallet_is_fine() -> None:
    chain = funded_chain()
    draining = Wallet("keystore /keys/old.json", OTHER, draining=True)
    rows = await check(network(GOOD), {GOOD: chain}, found=(keystore(), draining))
    assert problems(rows) == []
    assert any(row.detail.endswith("(draining)") for row in rows)


async def test_a_wallet_that_cannot_load_is_a_problem_and_its_balances_still_show() -> None:
    wrong = keystore(problem="cannot decrypt the keystore /keys/hot.json: wrong passphrase")
    rows = await check(network(GOOD), {GOOD: funded_chain()}, found=(wrong,))
    (problem,) = problems(rows)
    assert problem.check == "hot wallet"
    assert problem.detail == (
        "keystore /keys/hot.json: cannot decrypt the keystore /keys/hot.json: wrong passphrase"
    )
    assert [row.result for row in rows if row.check == "balance"] == [Outcome.OK, Outcome.OK]


async def test_a_wallet_without_an_address_has_no_balance_rows() -> None:
    unreadable = keystore(address=None, problem="cannot read the keystore: No such file")
    rows = await check(network(GOOD), {GOOD: funded_chain()}, found=(unreadable,))
    assert [row.check for row in rows] == ["rpc", "token", "hot wallet"]
    assert "(unknown address)" in rows[-1].target


async def test_a_wallet_configured_twice_is_a_problem() -> None:
    rows = await check(network(GOOD), {GOOD: funded_chain()}, found=(keystore(), keystore()))
    (problem,) = problems(rows)
    assert problem.detail.endswith("configured twice")


async def test_a_failing_wallet_finder_is_one_row() -> None:
    async def broken(_name: str, _config: NetworkConfig) -> Sequence[Wallet]:
        raise ConfigurationError("the signer refused SLUICE_SIGNER_TOKEN")

    checker = ConfigChecker(probe=lambda url: funded_chain(), wallets=broken)
    rows = await checker.run({"sepolia": network(GOOD)})
    (problem,) = problems(rows)
    assert (problem.check, problem.detail) == (
        "hot wallet",
        "the signer refused SLUICE_SIGNER_TOKEN",
    )


async def test_services_come_first_and_a_failure_is_a_row() -> None:
    async def fine() -> str:
        return "migrated"

    async def down() -> str:
        raise ChainUnavailableError("the signer is unreachable (ConnectError)")

    services = (Probe("database", "/data/sluice.db", fine), Probe("signer", "unix:///s", down))
    rows = await check(network(GOOD), {GOOD: funded_chain()}, services=services)
    assert rows[0] == Row("database", "/data/sluice.db", Outcome.OK, "migrated")
    assert rows[1] == Row(
        "signer", "unix:///s", Outcome.PROBLEM, "the signer is unreachable (ConnectError)"
    )
    assert rows[1].as_dict() == {
        "check": "signer",
        "target": "unix:///s",
        "result": "problem",
        "detail": "the signer is unreachable (ConnectError)",
    }


async def test_finality_by_the_finalized_tag_needs_a_node_that_serves_it() -> None:
    chain = funded_chain()
    chain.head, chain.finalized_lag = 500, 64
    rows = await check(network(GOOD, finality="finalized"), {GOOD: chain})
    assert problems(rows) == []
    assert rows[1] == Row("finality", "sepolia", Outcome.OK, "finalized block 436, 64 behind")

    class NoFinalizedTag(FakeChain):
        async def finalized_block(self) -> int:
            raise ChainUnavailableError("eth_getBlockByNumber failed: rpc_error (invalid tag)")

    bare = NoFinalizedTag(chain_id=11155111)
    bare.code_sizes[TOKEN] = 1
    bare.token_decimals_of[TOKEN] = 6
    bare.balances[WALLET] = 1
    bare.token_balances[(TOKEN, WALLET)] = 1
    (problem,) = problems(await check(network(GOOD, finality="finalized"), {GOOD: bare}))
    assert problem.check == "finality"
    assert problem.detail.startswith("the node does not serve the finalized block tag: ")


async def test_a_balance_that_cannot_be_read_is_a_problem() -> None:
    class NoBalances(FakeChain):
        async def balance(self, address: Address) -> int:
            raise ChainUnavailableError("eth_getBalance failed: timeout")

    chain = NoBalances(chain_id=11155111)
    chain.code_sizes[TOKEN] = 1200
    chain.token_decimals_of[TOKEN] = 6
    chain.token_balances[(TOKEN, WALLET)] = 1
    (problem,) = problems(await check(network(GOOD), {GOOD: chain}))
    assert (problem.check, problem.detail) == ("balance", "eth_getBalance failed: timeout")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://eth-sepolia.g.alchemy.com/v2/KEY", "https://eth-sepolia.g.alchemy.com"),
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        ("redis://user:pw@cache:6379/0", "redis://cache:6379"),
        ("not a url", "(malformed URL)"),
        ("http://host:99999", "(malformed URL)"),
    ],
)
def test_urls_are_shown_without_their_secrets(url: str, shown: str) -> None:
    assert redacted(url) == shown


# ── Batch contracts ───────────────────────────────────────────────────────────────────────────

BATCH = Address("0x5FbDB2315678afecb367f032d93F642f64180aa3")


def batching(contract: Address = BATCH, *, enabled: bool = True) -> NetworkConfig:
    data = network("http://a").model_dump(mode="json")
    data["batching"] = {"enabled": enabled, "contracts": {WALLET: contract}}
    return NetworkConfig.model_validate(data)


def batch_contract_on(chain: FakeChain, owner: Address = WALLET) -> None:
    chain.codes[BATCH] = batch_contract.artifact().deployed_bytecode
    chain.call_answers[(BATCH, batch_contract.OWNER_SELECTOR)] = bytes(12) + bytes.fromhex(
        owner[2:]
    )


def _batch_rows(rows: list[Row]) -> list[tuple[Outcome, str]]:
    return [(row.result, row.detail) for row in rows if row.check == "batch contract"]


async def test_a_batch_payout_of_its_hot_wallet_is_ok() -> None:
    chain = funded_chain()
    batch_contract_on(chain)
    rows = await check(batching(), {"http://a": chain})
    assert _batch_rows(rows) == [(Outcome.OK, f"BatchPayout of {WALLET}")]


@pytest.mark.parametrize(
    ("set_up", "reason"),
    [
        pytest.param(lambda chain: None, "has no code on this chain", id="no-code"),
        pytest.param(
            lambda chain: chain.codes.__setitem__(BATCH, b"\x60\x00"),
            "is not a BatchPayout",
            id="other-code",
        ),
        pytest.param(
            lambda chain: batch_contract_on(chain, owner=TOKEN), "is owned by", id="other-owner"
        ),
    ],
)
async def test_a_batch_contract_that_is_not_its_wallets_batch_payout_is_a_problem(
    set_up: Callable[[FakeChain], None], reason: str
) -> None:
    chain = funded_chain()
    set_up(chain)
    rows = await check(batching(), {"http://a": chain})
    [(outcome, detail)] = _batch_rows(rows)
    assert outcome is Outcome.PROBLEM
    assert reason in detail


async def test_batch_contracts_of_a_network_with_batching_off_are_not_checked() -> None:
    rows = await check(batching(enabled=False), {"http://a": funded_chain()})
    assert _batch_rows(rows) == []
