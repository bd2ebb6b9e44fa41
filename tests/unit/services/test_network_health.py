"""`verify_network` and `NetworkHealth`: verification against each RPC URL, the states of a
network (starting, up, down, misconfigured), ``on_up`` before each opening, and probe rounds
that ask every network at once, on fakes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from sluice.domain.addresses import Address
from sluice.domain.assets import Asset, Network
from sluice.errors import ChainUnavailableError, SluiceError
from sluice.services import network_health
from sluice.services.network_health import (
    MisconfiguredError,
    NetworkHealth,
    NetworkStatus,
    UnreachableError,
    describe_failure,
    verify_network,
)
from sluice.services.registry import NetworkEntry, NetworkRegistry
from sluice.testing.fakes import FakeChain

USDC = Address("0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238")
USDT = Address("0xaA8E23Fb1079EA71e0a56F48a2aA51851D8433D0")

#: A guard so a broken test fails instead of hanging (never part of an assertion).
GUARD_S = 5.0


def network(name: str = "devnet", chain_id: int = 31337, tokens: tuple[Asset, ...] = ()) -> Network:
    return Network(name=name, chain_id=chain_id, native=Asset(name, "ETH", 18), tokens=tokens)


def registry(**chains: FakeChain) -> NetworkRegistry:
    return NetworkRegistry(
        {
            name: NetworkEntry(network=network(name), chain=chain, signers=())
            for name, chain in chains.items()
        }
    )


class FakeEndpoint:
    """One RPC URL as verification sees it: its chain id (or a failure) and tokens' decimals."""

    def __init__(
        self,
        chain_id: int = 31337,
        *,
        error: Exception | None = None,
        decimals: dict[Address, int] | None = None,
    ) -> None:
        self.chain_id_value = chain_id
        self.error = error
        self.decimals = decimals or {}
        self.decimals_asked: list[Address] = []
        self.closed = False

    async def chain_id(self) -> int:
        if self.error is not None:
            raise self.error
        return self.chain_id_value

    async def token_decimals(self, token: Address) -> int:
        self.decimals_asked.append(token)
        if token not in self.decimals:
            raise SluiceError("eth_call failed: execution_reverted")
        return self.decimals[token]

    async def code(self, address: Address) -> bytes:
        return b""

    async def call(self, to: Address, data: bytes) -> bytes:
        raise SluiceError("eth_call failed: execution_reverted")

    async def close(self) -> None:
        self.closed = True


def probe_of(endpoints: dict[str, FakeEndpoint]) -> Callable[[str], FakeEndpoint]:
    return endpoints.__getitem__


async def verified(_: Network) -> None:
    return None


class OnUp:
    """An ``on_up`` callback that counts its calls per network and fails while ``error`` is set."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.error: Exception | None = None

    async def __call__(self, entry: NetworkEntry) -> None:
        self.calls.append(entry.network.name)
        if self.error is not None:
            raise self.error


# ── verify_network ────────────────────────────────────────────────────────────────────────────


async def test_every_url_on_the_configured_chain_and_tokens_of_the_configured_decimals_pass() -> (
    None
):
    tokens = (Asset("devnet", "USDC", 6, USDC), Asset("devnet", "USDT", 18, USDT))
    endpoints = {
        "a": FakeEndpoint(decimals={USDC: 6, USDT: 18}),
        "b": FakeEndpoint(decimals={USDC: 6, USDT: 18}),
    }

    await verify_network(network(tokens=tokens), ["a", "b"], probe_of(endpoints))

    assert endpoints["a"].decimals_asked == [USDC, USDT]  # tokens asked of one URL only
    assert endpoints["b"].decimals_asked == []
    assert all(e.closed for e in endpoints.values())


async def test_one_of_two_urls_on_another_chain_is_misconfigured_naming_it_by_number() -> None:
    endpoints = {"https://good.example": FakeEndpoint(), "https://bad.example": FakeEndpoint(5)}

    with pytest.raises(MisconfiguredError) as raised:
        await verify_network(network(), list(endpoints), probe_of(endpoints))

    assert raised.value.detail == (
        "network devnet: RPC URL #2 serves chain id 5, the configuration says 31337"
    )
    assert "example" not in raised.value.detail  # never a URL
    assert all(e.closed for e in endpoints.values())


async def test_a_token_of_other_decimals_names_the_token_and_both_decimals() -> None:
    tokens = (Asset("devnet", "USDC", 6, USDC),)
    endpoints = {"a": FakeEndpoint(decimals={USDC: 18})}

    with pytest.raises(MisconfiguredError) as raised:
        await verify_network(network(tokens=tokens), ["a"], probe_of(endpoints))

    assert raised.value.detail == (
        f"network devnet: token USDC {USDC} has 18 decimals on chain, the configuration says 6"
    )


async def test_every_mistake_is_named_at_once_and_a_token_without_decimals_is_one() -> None:
    tokens = (Asset("devnet", "USDC", 6, USDC), Asset("devnet", "USDT", 6, USDT))
    endpoints = {"a": FakeEndpoint(decimals={USDC: 18}), "b": FakeEndpoint(1)}

    with pytest.raises(MisconfiguredError) as raised:
        await verify_network(network(tokens=tokens), ["a", "b"], probe_of(endpoints))

    assert raised.value.detail == (
        "network devnet: RPC URL #2 serves chain id 1, the configuration says 31337; "
        f"token USDC {USDC} has 18 decimals on chain, the configuration says 6; "
        f"token USDT {USDT}: decimals() failed (eth_call failed: execution_reverted); "
        "is it a token on chain 31337?"
    )


async def test_no_url_answering_is_unreachable_not_misconfigured() -> None:
    endpoints = {
        "a": FakeEndpoint(error=ChainUnavailableError("connection refused")),
        "b": FakeEndpoint(error=TimeoutError()),
    }

    with pytest.raises(UnreachableError) as raised:
        await verify_network(network(), ["a", "b"], probe_of(endpoints))

    assert not isinstance(raised.value, MisconfiguredError)
    assert raised.value.detail == "no RPC URL of devnet answered"
    assert all(e.closed for e in endpoints.values())


async def test_an_unreachable_url_beside_one_that_answers_is_an_outage_not_a_mistake() -> None:
    tokens = (Asset("devnet", "USDC", 6, USDC),)
    endpoints = {
        "a": FakeEndpoint(error=ChainUnavailableError("connection refused")),
        "b": FakeEndpoint(decimals={USDC: 6}),
    }

    await verify_network(network(tokens=tokens), ["a", "b"], probe_of(endpoints))

    assert endpoints["b"].decimals_asked == [USDC]


class HangingEndpoint(FakeEndpoint):
    """A URL that takes the connection and never answers (a black-holed node)."""

    async def chain_id(self) -> int:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_url_that_hangs_does_not_keep_the_others_from_verifying_the_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(network_health, "URL_TIMEOUT_S", 0.01)
    tokens = (Asset("devnet", "USDC", 6, USDC),)
    endpoints = {"a": HangingEndpoint(), "b": FakeEndpoint(decimals={USDC: 6})}
    entry = NetworkEntry(network=network(tokens=tokens), chain=FakeChain(), signers=())
    health = NetworkHealth(
        NetworkRegistry({"devnet": entry}),
        verify=lambda net: verify_network(net, ["a", "b"], probe_of(endpoints)),
        timeout_s=GUARD_S,
    )

    await health.check_all()

    assert health.is_open("devnet")
    assert endpoints["b"].decimals_asked == [USDC]
    assert all(e.closed for e in endpoints.values())


async def test_an_unreachable_url_beside_one_on_another_chain_is_misconfigured() -> None:
    endpoints = {"a": FakeEndpoint(error=TimeoutError()), "b": FakeEndpoint(5)}

    with pytest.raises(MisconfiguredError, match="RPC URL #2 serves chain id 5"):
        await verify_network(network(), ["a", "b"], probe_of(endpoints))


def test_a_failure_is_described_in_a_few_words_without_its_message() -> None:
    assert describe_failure(TimeoutError()) == "timed out"
    assert describe_failure(ChainUnavailableError("node said no")) == "node said no"
    assert describe_failure(OSError("http://user:secret@node.example")) == "OSError"


# ── NetworkHealth ─────────────────────────────────────────────────────────────────────────────


async def test_a_network_down_at_start_stays_closed_and_opens_once_its_node_answers() -> None:
    chain = FakeChain()
    chain.go_down()
    on_up = OnUp()
    health = NetworkHealth(registry(devnet=chain), verify=verified, on_up=on_up)
    assert health.state("devnet").status is NetworkStatus.STARTING
    assert not health.is_open("devnet")

    states = await health.check_all()

    assert states["devnet"].status is NetworkStatus.DOWN
    assert states["devnet"].detail == "fake node unavailable"
    assert not health.is_open("devnet")
    assert health.misconfigured() == []
    assert on_up.calls == []

    await health.check_all()  # still down: still closed
    assert not health.is_open("devnet")

    chain.come_back()
    chain.head = 123
    await health.check_all()

    assert health.is_open("devnet")
    assert health.state("devnet").head == 123
    assert health.state("devnet").detail == "ok"
    assert on_up.calls == ["devnet"]


async def test_on_up_runs_once_per_opening_not_once_per_round() -> None:
    chain = FakeChain()
    on_up = OnUp()
    health = NetworkHealth(registry(devnet=chain), verify=verified, on_up=on_up)

    await health.check_all()
    await health.check_all()
    assert health.is_open("devnet")
    assert on_up.calls == ["devnet"]

    chain.go_down()
    await health.check_all()
    assert not health.is_open("devnet")
    chain.come_back()
    await health.check_all()
    await health.check_all()

    assert health.is_open("devnet")
    assert on_up.calls == ["devnet", "devnet"]


async def test_a_failing_on_up_keeps_the_network_closed_until_it_succeeds() -> None:
    on_up = OnUp()
    on_up.error = ChainUnavailableError("nonce reconciliation failed")
    health = NetworkHealth(registry(devnet=FakeChain()), verify=verified, on_up=on_up)

    await health.check_all()

    state = health.state("devnet")
    assert state.status is NetworkStatus.DOWN
    assert state.detail == "nonce reconciliation failed"
    assert not health.is_open("devnet")

    on_up.error = None
    await health.check_all()

    assert health.is_open("devnet")
    assert on_up.calls == ["devnet", "devnet"]


async def test_verification_runs_until_it_passes_then_never_again() -> None:
    asked: list[str] = []
    failures: list[Exception] = [UnreachableError("no RPC URL of devnet answered")]

    async def verify(net: Network) -> None:
        asked.append(net.name)
        if failures:
            raise failures.pop()

    chain = FakeChain()
    health = NetworkHealth(registry(devnet=chain), verify=verify)

    await health.check_all()
    assert health.state("devnet").status is NetworkStatus.DOWN
    assert health.state("devnet").detail == "no RPC URL of devnet answered"
    assert not health.state("devnet").verified
    assert chain.calls["block_number"] == 0

    await health.check_all()
    chain.go_down()
    await health.check_all()
    chain.come_back()
    await health.check_all()

    assert health.is_open("devnet")
    assert asked == ["devnet", "devnet"]


async def test_a_misconfigured_network_stays_closed_and_is_never_probed_again() -> None:
    asked: list[str] = []

    async def verify(net: Network) -> None:
        asked.append(net.name)
        if net.name == "wrong":
            raise MisconfiguredError("network wrong: RPC URL #1 serves chain id 1, ...")

    on_up = OnUp()
    wrong, right = FakeChain(), FakeChain()
    health = NetworkHealth(registry(wrong=wrong, right=right), verify=verify, on_up=on_up)

    await health.check_all()
    await health.check_all()

    assert health.state("wrong").status is NetworkStatus.MISCONFIGURED
    assert not health.is_open("wrong")
    assert health.misconfigured() == ["network wrong: RPC URL #1 serves chain id 1, ..."]
    assert sorted(asked) == ["right", "wrong"]  # verified once each
    assert wrong.calls["block_number"] == 0
    assert health.is_open("right")
    assert on_up.calls == ["right"]


async def test_a_worker_reporting_a_failed_node_closes_the_network_until_a_probe_answers() -> None:
    on_up = OnUp()
    health = NetworkHealth(
        registry(devnet=FakeChain()), verify=verified, on_up=on_up, interval_s=7.0
    )
    await health.check_all()

    delay = health.failed("devnet", ChainUnavailableError("read timed out"))

    assert delay == 7.0 == health.retry_after("devnet")
    assert health.state("devnet").status is NetworkStatus.DOWN
    assert health.state("devnet").detail == "read timed out"
    assert not health.is_open("devnet")

    await health.check_all()

    assert health.is_open("devnet")
    assert on_up.calls == ["devnet", "devnet"]  # reconciled again before it reopened


async def test_a_failure_reported_before_verification_leaves_the_network_starting() -> None:
    health = NetworkHealth(registry(devnet=FakeChain()), verify=verified)

    health.failed("devnet", ChainUnavailableError("boom"))
    health.failed("elsewhere", ChainUnavailableError("boom"))

    assert health.state("devnet").status is NetworkStatus.STARTING


def test_a_network_not_served_here_is_never_open() -> None:
    health = NetworkHealth(registry(devnet=FakeChain()), verify=verified)

    assert not health.is_open("mainnet")
    assert health.state("mainnet").status is NetworkStatus.MISCONFIGURED
    assert set(health.states()) == {"devnet"}


async def test_a_round_probes_every_network_at_once() -> None:
    """Each network's verification waits for the other's to have started: run one after the
    other, neither would finish."""
    started = {"alpha": asyncio.Event(), "beta": asyncio.Event()}

    async def verify(net: Network) -> None:
        started[net.name].set()
        other = "beta" if net.name == "alpha" else "alpha"
        await started[other].wait()

    health = NetworkHealth(
        registry(alpha=FakeChain(), beta=FakeChain()), verify=verify, timeout_s=60.0
    )

    states = await asyncio.wait_for(health.check_all(), GUARD_S)

    assert {n: s.status for n, s in states.items()} == {
        "alpha": NetworkStatus.UP,
        "beta": NetworkStatus.UP,
    }


async def test_a_hanging_network_does_not_delay_another_opening() -> None:
    release = asyncio.Event()
    beta_up = asyncio.Event()

    async def verify(net: Network) -> None:
        if net.name == "alpha":
            await release.wait()  # a node that does not answer

    async def on_up(entry: NetworkEntry) -> None:
        if entry.network.name == "beta":
            beta_up.set()

    health = NetworkHealth(
        registry(alpha=FakeChain(), beta=FakeChain()),
        verify=verify,
        on_up=on_up,
        timeout_s=60.0,
    )
    round_ = asyncio.create_task(health.check_all())

    await asyncio.wait_for(beta_up.wait(), GUARD_S)
    await asyncio.sleep(0)  # let beta's probe record its state

    assert health.is_open("beta")
    assert health.state("alpha").status is NetworkStatus.STARTING
    assert not round_.done()

    release.set()
    await asyncio.wait_for(round_, GUARD_S)
    assert health.is_open("alpha")


async def test_a_probe_over_its_timeout_closes_only_its_network() -> None:
    async def verify(net: Network) -> None:
        if net.name == "alpha":
            await asyncio.Event().wait()  # never answers

    health = NetworkHealth(
        registry(alpha=FakeChain(), beta=FakeChain()), verify=verify, timeout_s=0.01
    )

    states = await asyncio.wait_for(health.check_all(), GUARD_S)

    assert states["alpha"].status is NetworkStatus.DOWN
    assert states["alpha"].detail == "timed out"
    assert states["beta"].status is NetworkStatus.UP


async def test_state_changes_are_stamped_with_the_injected_clock() -> None:
    now = [100.0]
    chain = FakeChain()
    health = NetworkHealth(registry(devnet=chain), verify=verified, monotonic=lambda: now[0])
    assert health.state("devnet").since == 100.0

    now[0] = 105.0
    await health.check_all()
    now[0] = 109.0
    await health.check_all()  # still up: no change

    state = health.state("devnet")
    assert state.since == 105.0
    assert state.checked == 109.0


async def test_run_keeps_probing_in_rounds_until_cancelled() -> None:
    opened = asyncio.Event()
    rounds: list[None] = []

    async def verify(_: Network) -> None:
        rounds.append(None)
        if len(rounds) < 3:
            raise UnreachableError("no RPC URL of devnet answered")

    async def on_up(_: NetworkEntry) -> None:
        opened.set()

    health = NetworkHealth(registry(devnet=FakeChain()), verify=verify, on_up=on_up, interval_s=0)
    runner = asyncio.create_task(health.run())

    await asyncio.wait_for(opened.wait(), GUARD_S)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner

    assert len(rounds) == 3
    assert health.is_open("devnet")


async def test_work_on_a_closed_network_looks_again_less_often_the_longer_it_is_closed() -> None:
    now = [0.0]
    chain = FakeChain()
    chain.go_down()
    health = NetworkHealth(
        registry(devnet=chain), verify=verified, interval_s=2.0, monotonic=lambda: now[0]
    )
    await health.check_all()  # down since 0

    assert health.retry_after("devnet") == 2.0  # at first: one probe interval
    now[0] = 20.0
    assert health.retry_after("devnet") == 5.0  # a quarter of how long it has been closed
    now[0] = 600.0
    assert health.retry_after("devnet") == network_health.MAX_RETRY_AFTER_S

    chain.come_back()
    await health.check_all()
    assert health.retry_after("devnet") == 2.0  # open again: back to the interval
