"""`RpcFaultProxy` in front of the pinned Anvil: each fault as the engine's chain client sees it.

Each test gets its own node (they mine, lag and send from the default accounts), started through
the shared `anvil` fixture's skip rule and marker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from eth_account import Account

from sluice.chains.evm import ChainRpcError, EvmChainClient
from sluice.devnet.anvil import DEV_ACCOUNTS, AnvilProcess, free_port
from sluice.testing.anvil_control import AnvilControl
from sluice.testing.rpc_proxy import RpcFaultProxy

CHAIN_ID = 31337
GWEI = 10**9
SENDER = DEV_ACCOUNTS[0]
RECIPIENT = DEV_ACCOUNTS[1].address


def _transfer(nonce: int) -> tuple[bytes, str]:
    signed = Account.from_key(SENDER.private_key).sign_transaction(
        {
            "type": 2,
            "chainId": CHAIN_ID,
            "nonce": nonce,
            "to": RECIPIENT,
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": 100 * GWEI,
            "maxPriorityFeePerGas": GWEI,
        }
    )
    return bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()


def _request(method: str, params: list[Any] | None = None, request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or []}


@pytest.fixture
async def node(anvil: AnvilProcess) -> AsyncIterator[AnvilProcess]:
    """A node of this test's own. Asks for `anvil` for its skip rule and marker."""
    process = AnvilProcess()
    await process.astart()
    yield process
    await process.astop()


@pytest.fixture
async def control(node: AnvilProcess) -> AsyncIterator[AnvilControl]:
    """Direct access to the node, past the proxy."""
    async with AnvilControl(node.rpc_url) as client:
        yield client


@pytest.fixture
async def proxy(node: AnvilProcess) -> AsyncIterator[RpcFaultProxy]:
    async with RpcFaultProxy(node.rpc_url) as running:
        yield running


@pytest.fixture
async def chain(proxy: RpcFaultProxy) -> AsyncIterator[EvmChainClient]:
    """The engine's chain client, through the proxy."""
    client = EvmChainClient(proxy.url, timeout_s=2.0)
    yield client
    await client.close()


@pytest.fixture
async def http(proxy: RpcFaultProxy) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=proxy.url, timeout=2.0) as client:
        yield client


async def test_the_proxy_forwards_and_counts(
    proxy: RpcFaultProxy, chain: EvmChainClient, control: AnvilControl
) -> None:
    assert proxy.url.startswith("http://127.0.0.1:")
    assert await chain.chain_id() == CHAIN_ID
    assert await chain.block_number() == await control.block_number()

    assert proxy.calls == {"eth_chainId": 1, "eth_blockNumber": 1}
    assert proxy.forwarded == proxy.calls
    assert not proxy.injected
    proxy.reset_counters()
    assert not proxy.calls


async def test_a_dropped_send_response_still_lands_the_transaction(
    proxy: RpcFaultProxy, chain: EvmChainClient, control: AnvilControl
) -> None:
    raw, tx_hash = _transfer(await control.nonce(SENDER.address, "pending"))
    rule = proxy.drop_response("eth_sendRawTransaction")

    with pytest.raises(ChainRpcError) as excinfo:
        await chain.send_raw_transaction(raw)

    assert excinfo.value.reason == "connection_failed"
    # The node took it: it is mined although the client never heard back.
    receipt = await control.wait_for_receipt(tx_hash)
    assert receipt["status"] == "0x1"
    assert proxy.forwarded["eth_sendRawTransaction"] == 1
    assert proxy.injected["drop"] == 1
    assert proxy.injected_by_method[("drop", "eth_sendRawTransaction")] == 1
    assert rule.remaining == 0
    assert rule.injected == 1
    # The rule fired once: sending the same bytes again gets through, as a known transaction.
    again = await chain.send_raw_transaction(raw)
    assert again.accepted
    assert again.note in {"already_known", "nonce_too_low"}


async def test_a_delayed_answer_times_the_client_out(
    proxy: RpcFaultProxy, node: AnvilProcess
) -> None:
    proxy.timeout("eth_blockNumber", seconds=5)
    client = EvmChainClient(proxy.url, timeout_s=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(ChainRpcError) as excinfo:
            await client.block_number()
        elapsed = time.monotonic() - started

        assert excinfo.value.reason == "timeout"
        assert elapsed < 3
        assert proxy.forwarded["eth_blockNumber"] == 1  # forwarded at once, answered late
        assert await client.block_number() >= 0  # count=1: the next call is answered
    finally:
        await client.close()


async def test_a_timeout_without_forwarding_never_reaches_the_node(
    proxy: RpcFaultProxy, http: httpx.AsyncClient, control: AnvilControl
) -> None:
    raw, tx_hash = _transfer(await control.nonce(SENDER.address, "pending"))
    proxy.timeout("eth_sendRawTransaction", seconds=None, forward=False)

    with pytest.raises(httpx.ReadTimeout):
        await http.post(
            "/", json=_request("eth_sendRawTransaction", ["0x" + raw.hex()]), timeout=0.3
        )

    assert await control.transaction(tx_hash) is None
    assert proxy.calls["eth_sendRawTransaction"] == 1
    assert proxy.forwarded["eth_sendRawTransaction"] == 0


async def test_heal_releases_a_held_call_unanswered(
    proxy: RpcFaultProxy, http: httpx.AsyncClient
) -> None:
    proxy.timeout("eth_chainId")  # held until healed
    call = asyncio.create_task(http.post("/", json=_request("eth_chainId"), timeout=10))
    await asyncio.sleep(0.2)
    assert not call.done()

    proxy.heal()

    with pytest.raises(httpx.RemoteProtocolError):
        await call
    assert not proxy.rules
    answer = await http.post("/", json=_request("eth_chainId"))
    assert answer.json()["result"] == hex(CHAIN_ID)


async def test_errors_are_answered_without_forwarding(
    proxy: RpcFaultProxy, chain: EvmChainClient
) -> None:
    proxy.error("eth_blockNumber", code=-32005, message="limit exceeded", count=2)
    proxy.error("eth_chainId", http_status=503)

    for _ in range(2):
        with pytest.raises(ChainRpcError) as rpc_error:
            await chain.block_number()
        assert rpc_error.value.reason == "rpc_error"
        assert "limit exceeded" in str(rpc_error.value)
    assert await chain.block_number() >= 0  # the count is spent
    with pytest.raises(ChainRpcError) as http_error:
        await chain.chain_id()

    assert http_error.value.reason == "http_503"
    assert proxy.calls == {"eth_blockNumber": 3, "eth_chainId": 1}
    assert proxy.forwarded == {"eth_blockNumber": 1}
    assert proxy.injected == {"error": 3}


async def test_a_json_rpc_error_keeps_the_request_id(
    proxy: RpcFaultProxy, http: httpx.AsyncClient
) -> None:
    proxy.error("*", code=-32603, message="internal")

    answer = (await http.post("/", json=_request("eth_gasPrice", request_id=42))).json()

    assert answer == {"jsonrpc": "2.0", "id": 42, "error": {"code": -32603, "message": "internal"}}


async def test_probabilistic_faults_repeat_with_the_seed(node: AnvilProcess) -> None:
    patterns = []
    for _ in range(2):
        async with (
            RpcFaultProxy(node.rpc_url, seed=7) as proxy,
            httpx.AsyncClient(base_url=proxy.url, timeout=2.0) as http,
        ):
            proxy.error("eth_chainId", code=-32000, message="flaky", probability=0.5)
            pattern = []
            for _ in range(20):
                answer = (await http.post("/", json=_request("eth_chainId"))).json()
                pattern.append("error" in answer)
            patterns.append(pattern)
            assert proxy.injected["error"] == sum(pattern)

    assert patterns[0] == patterns[1]
    assert 0 < sum(patterns[0]) < 20


async def test_lag_makes_the_node_look_behind(
    proxy: RpcFaultProxy, chain: EvmChainClient, http: httpx.AsyncClient, control: AnvilControl
) -> None:
    await control.mine(10)
    raw, tx_hash = _transfer(await control.nonce(SENDER.address, "pending"))
    await control.send_raw(raw)
    receipt = await control.wait_for_receipt(tx_hash)
    head = await control.block_number()
    assert int(receipt["blockNumber"], 16) == head
    behind = await control.block(head - 3)

    proxy.lag(3)

    assert await chain.block_number() == head - 3
    latest = await http.post("/", json=_request("eth_getBlockByNumber", ["latest", False]))
    assert (latest.json()["result"]["number"], latest.json()["result"]["hash"]) == (
        hex(behind.number),
        behind.hash,
    )
    above = await http.post("/", json=_request("eth_getBlockByNumber", [hex(head), False]))
    assert above.json()["result"] is None
    assert await chain.receipt(tx_hash) is None  # mined in a block the node "has not seen"
    assert await chain.transaction_count(SENDER.address) == 0  # as of block head - 3
    assert proxy.injected["lag"] >= 5
    # Batches are rewritten too.
    batch = await http.post(
        "/", json=[_request("eth_blockNumber", request_id=1), _request("eth_chainId", request_id=2)]
    )
    assert [item["result"] for item in batch.json()] == [hex(head - 3), hex(CHAIN_ID)]

    proxy.lag(0)

    assert await chain.block_number() == head
    assert await chain.receipt(tx_hash) is not None


async def test_fail_all_until_healed(
    proxy: RpcFaultProxy, chain: EvmChainClient, http: httpx.AsyncClient
) -> None:
    proxy.fail_all()

    for call in (chain.chain_id, chain.block_number, chain.gas_price):
        with pytest.raises(ChainRpcError) as excinfo:
            await call()
        assert excinfo.value.reason == "http_503"
    batch = await http.post("/", json=[_request("eth_chainId"), _request("eth_blockNumber")])
    assert batch.status_code == 503
    assert proxy.injected["fail_all"] == 4
    assert not proxy.forwarded

    proxy.heal()

    assert await chain.chain_id() == CHAIN_ID


async def test_batches_pass_through_and_a_json_rpc_error_hits_one_call(
    proxy: RpcFaultProxy, http: httpx.AsyncClient
) -> None:
    batch = [_request("eth_chainId", request_id=1), _request("eth_blockNumber", request_id=2)]

    plain = (await http.post("/", json=batch)).json()
    proxy.error("eth_blockNumber", code=-32005, message="limit")
    faulted = (await http.post("/", json=batch)).json()
    proxy.drop_response("eth_chainId")
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post("/", json=batch)

    assert [item["id"] for item in plain] == [1, 2]
    assert plain[0]["result"] == hex(CHAIN_ID)
    assert faulted[0] == plain[0]
    assert faulted[1] == {"jsonrpc": "2.0", "id": 2, "error": {"code": -32005, "message": "limit"}}
    assert proxy.calls == {"eth_chainId": 3, "eth_blockNumber": 3}
    assert proxy.forwarded == {"eth_chainId": 3, "eth_blockNumber": 2}


async def test_the_upstream_url_is_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk_live_FAKE0123456789SECRET"
    upstream = f"http://127.0.0.1:{free_port()}/v3/{secret}?key={secret}"  # nothing listens
    caplog.set_level(logging.DEBUG)
    async with (
        RpcFaultProxy(upstream) as proxy,
        httpx.AsyncClient(base_url=proxy.url, timeout=2.0) as http,
    ):
        proxy.drop_response("eth_chainId")
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post("/", json=_request("eth_chainId"))
        unavailable = await http.post("/", json=_request("eth_chainId"))
        text = repr(proxy)

    assert unavailable.status_code == 502
    assert secret not in text
    assert secret not in caplog.text
    assert "injected drop on eth_chainId" in caplog.text


def test_rules_are_checked() -> None:
    proxy = RpcFaultProxy("http://127.0.0.1:1")
    with pytest.raises(ValueError, match="count"):
        proxy.drop_response(count=0)
    with pytest.raises(ValueError, match="probability"):
        proxy.error(probability=1.5)
    with pytest.raises(ValueError, match="http_status"):
        proxy.error(http_status=200)
    with pytest.raises(ValueError, match="upstream"):
        RpcFaultProxy("ftp://127.0.0.1")
    with pytest.raises(RuntimeError, match="not started"):
        _ = proxy.url
    once = proxy.drop_response("eth_call")
    assert (once.remaining, once.probability) == (1, None)
    sometimes = proxy.timeout("eth_call", 1.0, probability=0.25)
    assert (sometimes.remaining, sometimes.probability) == (None, 0.25)
    proxy.remove(once)
    assert proxy.rules == (sometimes,)
