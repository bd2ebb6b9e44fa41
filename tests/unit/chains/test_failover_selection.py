"""`FailoverChainClient` over `FakeChain`s: which provider answers, benching, lag, chain ids."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from sluice.chains.evm import ChainRpcError, TransactionRefusedRpcError
from sluice.chains.failover import FailoverChainClient, RpcProvider
from sluice.domain.addresses import Address
from sluice.domain.fees import FeeMarket
from sluice.errors import (
    CallRevertedError,
    ChainUnavailableError,
    ConfigurationError,
    TransactionRefusedError,
)
from sluice.testing.fakes import FakeChain, transaction_hash

NAME_A = "https://mainnet.infura.io"
NAME_B = "https://eth-mainnet.g.alchemy.com"
ADDRESS = Address("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
ORACLE = Address("0x420000000000000000000000000000000000000F")
BLOCKS = 5
PERCENTILES = (10, 50, 85)
_networks = itertools.count()


class Ticker:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class SlowChain(FakeChain):
    """A node that takes its time over the block number."""

    async def block_number(self) -> int:
        await asyncio.sleep(5)
        return await super().block_number()


def _network() -> str:
    return f"testnet-{next(_networks)}"  # a fresh metric label per test


def _client(
    *chains: FakeChain,
    clock: Ticker,
    names: tuple[str, ...] = (NAME_A, NAME_B, "https://third.example"),
    network: str | None = None,
    **options: float,
) -> FailoverChainClient:
    providers = [RpcProvider(name, chain) for name, chain in zip(names, chains, strict=False)]
    return FailoverChainClient(
        providers,
        network=network or _network(),
        monotonic=clock,
        **options,  # type: ignore[arg-type]
    )


def _failovers(network: str, provider: str, reason: str) -> float:
    labels = {"network": network, "provider": provider, "reason": reason}
    return REGISTRY.get_sample_value("sluice_rpc_failovers_total", labels) or 0.0


@pytest.fixture
def clock() -> Ticker:
    return Ticker()


async def test_the_first_provider_answers_while_healthy(clock: Ticker) -> None:
    a, b = FakeChain(), FakeChain()
    client = _client(a, b, clock=clock)

    assert await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES) == a.market
    assert await client.balance(ADDRESS) == 0
    assert await client.chain_id() == 31337

    assert (a.calls["fee_market"], a.calls["balance"]) == (1, 1)
    assert (b.calls["fee_market"], b.calls["balance"]) == (0, 0)


async def test_a_failure_benches_the_provider_and_the_next_one_answers(clock: Ticker) -> None:
    a, b = FakeChain(), FakeChain()
    network = _network()
    client = _client(a, b, clock=clock, network=network)
    await client.fee_market(
        blocks=BLOCKS, percentiles=PERCENTILES
    )  # first use: chain ids and heads checked
    a.fail_next(1, ChainRpcError("eth_maxPriorityFeePerGas", "timeout"))

    with capture_logs() as logs:
        assert await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES) == b.market
        assert (
            await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES) == b.market
        )  # still benched: not asked again

    assert (a.calls["fee_market"], b.calls["fee_market"]) == (2, 2)
    benched = [e for e in logs if e["event"] == "rpc provider benched"]
    assert len(benched) == 1
    assert benched[0]["provider"] == NAME_A
    assert benched[0]["reason"] == "timeout"
    assert benched[0]["cooldown_s"] == 30.0
    assert _failovers(network, NAME_A, "timeout") == 1.0


async def test_a_bench_expires_and_the_first_provider_is_used_again(clock: Ticker) -> None:
    a, b = FakeChain(), FakeChain()
    client = _client(a, b, clock=clock)
    await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)
    a.fail_next(1)
    await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)
    clock.advance(29)
    await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)
    assert (a.calls["fee_market"], b.calls["fee_market"]) == (2, 2)

    clock.advance(1)
    with capture_logs() as logs:
        await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)

    assert (a.calls["fee_market"], b.calls["fee_market"]) == (3, 2)
    assert any(e["event"] == "rpc provider answers again" for e in logs)


async def test_the_cooldown_doubles_on_repeated_failure_up_to_a_cap_and_resets(
    clock: Ticker,
) -> None:
    a, b = FakeChain(), FakeChain()
    client = _client(a, b, clock=clock, cooldown_s=10.0, max_cooldown_s=25.0)
    await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)
    with capture_logs() as logs:
        for _ in range(3):
            a.fail_next(1)
            await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)
            clock.advance(25)
        await client.fee_market(
            blocks=BLOCKS, percentiles=PERCENTILES
        )  # a answers: its strikes are forgotten
        a.fail_next(1)
        await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)

    cooldowns = [e["cooldown_s"] for e in logs if e["event"] == "rpc provider benched"]
    assert cooldowns == [10.0, 20.0, 25.0, 10.0]


async def test_when_every_provider_is_benched_the_soonest_to_return_is_tried(
    clock: Ticker,
) -> None:
    a, b = FakeChain(), FakeChain()
    client = _client(a, b, clock=clock, lag_check_interval_s=10_000)
    await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)
    a.fail_next(1)
    await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)  # a benched for 30 s
    clock.advance(31)
    a.fail_next(1)
    await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)  # a benched again, for 60 s
    b.fail_next(1)
    with pytest.raises(ChainUnavailableError):
        await client.fee_market(
            blocks=BLOCKS, percentiles=PERCENTILES
        )  # b benched for 30 s: nobody left
    assert (a.calls["fee_market"], b.calls["fee_market"]) == (3, 3)

    clock.advance(1)
    assert (
        await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES) == b.market
    )  # both benched: b's bench ends first

    assert (a.calls["fee_market"], b.calls["fee_market"]) == (3, 4)


async def test_when_every_provider_fails_the_error_names_no_provider(clock: Ticker) -> None:
    a, b = FakeChain(), FakeChain()
    network = _network()
    client = _client(a, b, clock=clock, network=network)
    a.go_down(ChainRpcError("eth_chainId", "connection_failed"))
    b.go_down(ChainRpcError("eth_chainId", "http_503"))

    with pytest.raises(ChainUnavailableError) as caught:
        await client.send_raw_transaction(b"\x02raw")

    message = str(caught.value)
    assert network in message
    assert "send_raw_transaction" in message
    for leak in ("infura", "alchemy", "https://"):
        assert leak not in message
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


async def test_a_send_fails_over_and_the_first_acceptance_wins(clock: Ticker) -> None:
    a, b, c = FakeChain(), FakeChain(), FakeChain()
    client = _client(a, b, c, clock=clock)
    await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)
    a.fail_next(1)
    raw = b"\x02signed"

    result = await client.send_raw_transaction(raw)

    assert result.accepted
    assert b.sends[transaction_hash(raw)] == 1
    assert transaction_hash(raw) not in a.sends
    assert transaction_hash(raw) not in c.sends


async def test_a_refusal_is_raised_without_benching_or_failing_over(clock: Ticker) -> None:
    a, b = FakeChain(), FakeChain()
    client = _client(a, b, clock=clock)
    await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)
    a.fail_next(1, ChainRpcError("eth_sendRawTransaction", "insufficient_funds"))

    with pytest.raises(ChainRpcError) as caught:
        await client.send_raw_transaction(b"\x02signed")
    assert caught.value.reason == "insufficient_funds"
    assert b.calls["send_raw_transaction"] == 0

    await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)
    assert (a.calls["fee_market"], b.calls["fee_market"]) == (2, 0)


@pytest.mark.parametrize(
    "refusal",
    [
        pytest.param(
            TransactionRefusedRpcError(
                "eth_sendRawTransaction", "gas_too_low", "intrinsic gas too low", permanent=True
            ),
            id="for good",
        ),
        pytest.param(
            TransactionRefusedRpcError("eth_sendRawTransaction", "fee_too_low"), id="for now"
        ),
        pytest.param(TransactionRefusedRpcError("eth_sendRawTransaction", "rejected"), id="other"),
        pytest.param(TransactionRefusedError("refused", reason="rejected"), id="any adapter's"),
    ],
)
async def test_a_refused_send_benches_nothing_and_goes_nowhere_else(
    clock: Ticker, refusal: TransactionRefusedError
) -> None:
    a, b = FakeChain(), FakeChain()
    network = _network()
    client = _client(a, b, clock=clock, network=network)
    await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)
    a.fail_next(1, refusal)

    with capture_logs() as logs, pytest.raises(TransactionRefusedError) as caught:
        await client.send_raw_transaction(b"\x02signed")

    assert caught.value is refusal
    assert b.calls["send_raw_transaction"] == 0  # the same bytes are not tried elsewhere
    assert not [e for e in logs if e["event"] == "rpc provider benched"]
    assert _failovers(network, NAME_A, refusal.reason) == 0.0
    await client.send_raw_transaction(b"\x02other")
    assert (a.calls["send_raw_transaction"], b.calls["send_raw_transaction"]) == (2, 0)


@pytest.mark.parametrize("reason", ["execution_reverted", "invalid_opcode"])
async def test_a_reverted_call_benches_nothing_and_goes_nowhere_else(
    clock: Ticker, reason: str
) -> None:
    a, b = FakeChain(), FakeChain()
    network = _network()
    client = _client(a, b, clock=clock, network=network)
    await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)
    a.fail_next(1, CallRevertedError(f"eth_estimateGas failed: {reason}", reason=reason))

    with capture_logs() as logs, pytest.raises(CallRevertedError) as caught:
        await client.estimate_gas(ADDRESS, ADDRESS, 0, b"")

    assert caught.value.reason == reason
    assert b.calls["estimate_gas"] == 0
    assert not [e for e in logs if e["event"] == "rpc provider benched"]
    assert await client.estimate_gas(ADDRESS, ADDRESS, 0, b"") == a.gas_estimate
    assert b.calls["estimate_gas"] == 0


@pytest.mark.parametrize("reason", ["rate_limited", "node_syncing", "method_unavailable"])
async def test_an_error_answer_about_the_provider_benches_it(clock: Ticker, reason: str) -> None:
    a, b = FakeChain(), FakeChain()
    network = _network()
    client = _client(a, b, clock=clock, network=network)
    await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)
    a.fail_next(1, ChainRpcError("eth_sendRawTransaction", reason))

    result = await client.send_raw_transaction(b"\x02signed")

    assert result.accepted
    assert b.calls["send_raw_transaction"] == 1
    assert _failovers(network, NAME_A, reason) == 1.0


async def test_the_fee_market_comes_from_the_first_healthy_provider(clock: Ticker) -> None:
    a = FakeChain(market=FeeMarket(base_fee=7, priority_fee=2))
    b = FakeChain(market=FeeMarket(base_fee=9, priority_fee=3))
    client = _client(a, b, clock=clock)

    assert await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES) == FeeMarket(
        base_fee=7, priority_fee=2
    )
    a.fail_next(1, ChainRpcError("eth_feeHistory", "timeout"))
    assert await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES) == FeeMarket(
        base_fee=9, priority_fee=3
    )


async def test_the_fee_history_asked_for_reaches_the_provider(clock: Ticker) -> None:
    market = FeeMarket(base_fee=7, priority_fee=2, rewards=(1, 2, 3))
    a, b = FakeChain(market=market), FakeChain()
    client = _client(a, b, clock=clock)

    assert await client.fee_market(blocks=20, percentiles=(5, 60, 95)) == market
    assert a.fee_history_asks == [(20, (5, 60, 95))]
    assert b.fee_history_asks == []


async def test_the_gas_price_and_the_l1_fee_fail_over_like_any_read(clock: Ticker) -> None:
    a = FakeChain(gas_price=3 * 10**9, l1_fee=40_000)
    b = FakeChain(gas_price=5 * 10**9, l1_fee=60_000)
    client = _client(a, b, clock=clock)

    assert await client.gas_price() == 3 * 10**9
    assert await client.l1_fee(ORACLE, b"\x02unsigned") == 40_000
    assert a.l1_fee_asks == [(ORACLE, b"\x02unsigned")]
    a.fail_next(1, ChainRpcError("eth_gasPrice", "timeout"))
    assert await client.gas_price() == 5 * 10**9  # a is benched now
    assert await client.l1_fee(ORACLE, b"\x02other") == 60_000
    assert (a.calls["l1_fee"], b.calls["l1_fee"]) == (1, 1)


async def test_a_reverted_l1_fee_call_benches_nothing(clock: Ticker) -> None:
    a, b = FakeChain(), FakeChain()
    a.l1_fee_error = CallRevertedError("eth_call failed: execution_reverted")
    client = _client(a, b, clock=clock)

    with pytest.raises(CallRevertedError):
        await client.l1_fee(ORACLE, b"\x02unsigned")
    assert b.calls["l1_fee"] == 0
    assert await client.gas_price() == a.gas_price_value  # a is still in use


async def test_other_errors_propagate_without_benching(clock: Ticker) -> None:
    a, b = FakeChain(), FakeChain()
    client = _client(a, b, clock=clock)
    await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)
    a.fail_next(1, ValueError("not a hash"))

    with pytest.raises(ValueError, match="not a hash"):
        await client.receipt("nonsense")
    assert b.calls["receipt"] == 0


async def test_none_from_the_current_provider_is_an_answer(clock: Ticker) -> None:
    a, b = FakeChain(), FakeChain(auto_mine=True)
    client = _client(a, b, clock=clock)
    raw = b"\x02mined-elsewhere"
    await b.send_raw_transaction(raw)

    assert await client.receipt(transaction_hash(raw)) is None
    assert await client.is_known(transaction_hash(raw)) is False
    assert (b.calls["receipt"], b.calls["is_known"]) == (0, 0)


async def test_a_lagging_provider_is_benched_by_the_periodic_check(clock: Ticker) -> None:
    a, b = FakeChain(head=100), FakeChain(head=100)
    network = _network()
    client = _client(a, b, clock=clock, network=network)
    await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)
    b.advance_blocks(6)
    clock.advance(4.9)
    await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)  # no check due yet
    assert (a.calls["fee_market"], b.calls["fee_market"]) == (2, 0)

    clock.advance(0.1)
    with capture_logs() as logs:
        await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)

    assert (a.calls["fee_market"], b.calls["fee_market"]) == (2, 1)
    [event] = [e for e in logs if e["event"] == "rpc provider benched"]
    assert event["provider"] == NAME_A
    assert event["reason"] == "lagging"
    assert event["lag_blocks"] == 6
    assert _failovers(network, NAME_A, "lagging") == 1.0


async def test_a_provider_within_the_lag_tolerance_stays_in_use(clock: Ticker) -> None:
    a, b = FakeChain(head=100), FakeChain(head=105)
    client = _client(a, b, clock=clock)

    await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)

    assert (a.calls["fee_market"], b.calls["fee_market"]) == (1, 0)


async def test_a_lagging_block_number_is_not_returned(clock: Ticker) -> None:
    a, b = FakeChain(head=100), FakeChain(head=100)
    client = _client(a, b, clock=clock, lag_check_interval_s=10_000)
    await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)
    a.fail_next(1)
    b.advance_blocks(10)
    assert await client.block_number() == 110  # from b, a benched
    clock.advance(30)

    assert await client.block_number() == 110  # a answered 100: benched as lagging

    assert a.calls["block_number"] == 3  # the first-use check, the failure, the lagging answer


async def test_a_slow_provider_is_benched_by_the_check(clock: Ticker) -> None:
    a, b = SlowChain(), FakeChain()
    client = _client(a, b, clock=clock, lag_check_timeout_s=0.05)

    with capture_logs() as logs:
        assert await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES) == b.market

    assert a.calls["fee_market"] == 0
    assert [e["reason"] for e in logs if e["event"] == "rpc provider benched"] == ["timeout"]


async def test_a_nonsense_block_number_benches_the_provider(clock: Ticker) -> None:
    a, b = FakeChain(head=-1), FakeChain(head=100)
    client = _client(a, b, clock=clock)

    with capture_logs() as logs:
        assert await client.block_number() == 100

    assert [e["reason"] for e in logs if e["event"] == "rpc provider benched"] == [
        "malformed_response"
    ]


async def test_a_provider_on_another_chain_is_never_used(clock: Ticker) -> None:
    a, b = FakeChain(chain_id=31337), FakeChain(chain_id=1)
    network = _network()
    client = _client(a, b, clock=clock, network=network)

    with capture_logs() as logs:
        await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)

    [event] = [e for e in logs if e["log_level"] == "error"]
    assert event["provider"] == NAME_B
    assert (event["chain_id"], event["expected_chain_id"]) == (1, 31337)
    assert _failovers(network, NAME_B, "chain_id_mismatch") == 1.0

    a.go_down()
    clock.advance(100_000)
    with pytest.raises(ChainUnavailableError):
        await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)
    assert b.calls["fee_market"] == 0
    assert await b.chain_id() == 1  # (the fake itself is fine)


async def test_the_expected_chain_id_rules_out_even_the_first_provider(clock: Ticker) -> None:
    a, b = FakeChain(chain_id=1), FakeChain(chain_id=31337)
    client = FailoverChainClient(
        [RpcProvider(NAME_A, a), RpcProvider(NAME_B, b)],
        network=_network(),
        expected_chain_id=31337,
        monotonic=clock,
    )

    assert await client.chain_id() == 31337
    await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)

    assert (a.calls["fee_market"], b.calls["fee_market"]) == (0, 1)


async def test_a_provider_unreachable_at_first_use_is_checked_before_it_is_used(
    clock: Ticker,
) -> None:
    a, b = FakeChain(chain_id=31337), FakeChain(chain_id=5)
    client = _client(a, b, clock=clock, lag_check_interval_s=10_000)
    b.fail_next(1)  # b misses the first-use check
    await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)
    a.go_down()
    clock.advance(30)  # b's bench is over, and it is still unchecked

    with pytest.raises(ChainUnavailableError, match="last: chain_id_mismatch"):
        await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)

    assert b.calls["fee_market"] == 0


async def test_with_no_provider_on_the_expected_chain_every_call_fails(clock: Ticker) -> None:
    client = FailoverChainClient(
        [RpcProvider(NAME_A, FakeChain(chain_id=1))],
        network=_network(),
        expected_chain_id=31337,
        monotonic=clock,
    )
    with pytest.raises(ChainUnavailableError):
        await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)
    with pytest.raises(ChainUnavailableError, match="on its chain"):
        await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)


async def test_close_closes_every_provider(clock: Ticker) -> None:
    a, b = FakeChain(), FakeChain()
    client = _client(a, b, clock=clock)

    await client.close()
    await client.close()

    assert a.closed
    assert b.closed
    with pytest.raises(RuntimeError):
        await client.fee_market(blocks=BLOCKS, percentiles=PERCENTILES)


def test_names_are_kept_apart_and_the_configuration_is_checked() -> None:
    same = "https://mainnet.infura.io"
    client = FailoverChainClient(
        [RpcProvider(same, FakeChain()), RpcProvider(same, FakeChain())], network="x"
    )
    assert client.provider_names == [f"{same}#1", f"{same}#2"]
    assert repr(client) == f"FailoverChainClient('x', ['{same}#1', '{same}#2'])"
    with pytest.raises(ConfigurationError):
        FailoverChainClient([], network="x")
    with pytest.raises(ConfigurationError):
        FailoverChainClient([RpcProvider("", FakeChain())], network="x")
    with pytest.raises(ConfigurationError):
        FailoverChainClient([RpcProvider(same, FakeChain())], network="x", cooldown_s=0)
