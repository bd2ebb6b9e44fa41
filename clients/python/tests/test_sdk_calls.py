"""What each operation sends and how its answer is read, and the pagination helpers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from sluice_client import (
    AsyncSluiceClient,
    FeeLevel,
    FeeLevelPrice,
    Network,
    Readiness,
    SluiceClient,
    UnexpectedResponseError,
    Withdrawal,
    WithdrawalStatus,
)

ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def withdrawal_json(id: str = "wd-1", **changes: Any) -> dict[str, Any]:
    return {
        "id": id,
        "userId": "user-42",
        "amount": "1.5",
        "symbol": "ETH",
        "toAddress": ADDRESS,
        "tokenAddress": None,
        "network": "anvil",
        "status": "PENDING",
        "transactionHash": None,
        "blockNumber": None,
        "error": None,
        "errorCode": None,
        "waitingReason": None,
        "priority": "normal",
        "feePaid": None,
        "createdAt": "2026-12-02T10:00:00.123456Z",
        "updatedAt": "2026-12-02T10:00:01Z",
        **changes,
    }


class Recorder:
    """A MockTransport handler that answers from a function and keeps every request."""

    def __init__(self, answer: Any) -> None:
        self.requests: list[httpx.Request] = []
        self._answer = answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        result = self._answer(request)
        return result if isinstance(result, httpx.Response) else httpx.Response(200, json=result)

    def query(self, index: int = -1) -> dict[str, list[str]]:
        return parse_qs(urlsplit(str(self.requests[index].url)).query)

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def sync_client(recorder: Recorder) -> SluiceClient:
    return SluiceClient(
        "http://sluice.test/", "sluice_id_secret", transport=httpx.MockTransport(recorder)
    )


def async_client(recorder: Recorder) -> AsyncSluiceClient:
    return AsyncSluiceClient(
        "http://sluice.test", "sluice_id_secret", transport=httpx.MockTransport(recorder)
    )


def test_a_withdrawal_is_read_with_exact_amounts_and_aware_times() -> None:
    withdrawal = Withdrawal.from_json(withdrawal_json(amount="0.000000000000000001"))
    assert withdrawal.amount == Decimal("1E-18")
    assert withdrawal.status is WithdrawalStatus.PENDING
    assert withdrawal.created_at == datetime(2026, 12, 2, 10, 0, 0, 123456, tzinfo=UTC)
    assert withdrawal.raw["userId"] == "user-42"


def test_a_withdrawal_reads_its_priority_and_the_exact_fee_it_paid() -> None:
    paid = Withdrawal.from_json(
        withdrawal_json(status="COMPLETED", priority="fast", feePaid="0.000031502000000001")
    )
    assert paid.priority is FeeLevel.FAST
    assert paid.fee_paid == Decimal("0.000031502000000001")
    pending = Withdrawal.from_json(withdrawal_json())
    assert (pending.priority, pending.fee_paid) == (FeeLevel.NORMAL, None)
    # A Sluice before fee levels sends neither field.
    older = withdrawal_json()
    del older["priority"], older["feePaid"]
    assert (Withdrawal.from_json(older).priority, Withdrawal.from_json(older).fee_paid) == (
        None,
        None,
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"priority": "urgent"}, "priority"),
        ({"feePaid": 0.000021}, "feePaid"),
        ({"feePaid": "NaN"}, "feePaid"),
    ],
)
def test_an_unknown_priority_or_a_fee_paid_that_is_not_a_decimal_string_is_refused(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(UnexpectedResponseError, match=f"Withdrawal.{field}"):
        Withdrawal.from_json(withdrawal_json(**changes))


def test_an_unknown_status_is_an_unexpected_response() -> None:
    with pytest.raises(UnexpectedResponseError, match="status"):
        Withdrawal.from_json(withdrawal_json(status="ON_THE_MOON"))


def test_a_bool_is_not_read_as_a_count() -> None:
    with pytest.raises(UnexpectedResponseError, match="blockNumber"):
        Withdrawal.from_json(withdrawal_json(blockNumber=True))


def test_create_sends_the_amount_as_a_decimal_string_and_the_given_id() -> None:
    recorder = Recorder(lambda r: httpx.Response(202, json=withdrawal_json("payout-42")))
    with sync_client(recorder) as sluice:
        withdrawal = sluice.create_withdrawal(
            id="payout-42",
            user_id="user-42",
            amount=Decimal("1.50"),
            to_address=ADDRESS,
            network="anvil",
        )
    assert recorder.requests[0].method == "POST"
    assert recorder.requests[0].url.path == "/v1/withdrawals"
    assert recorder.requests[0].headers["Content-Type"] == "application/json"
    assert recorder.body() == {
        "id": "payout-42",
        "userId": "user-42",
        "amount": "1.50",
        "toAddress": ADDRESS,
        "tokenAddress": None,
        "network": "anvil",
    }
    assert withdrawal.id == "payout-42"


def test_create_without_an_id_sends_one_of_its_own() -> None:
    recorder = Recorder(
        lambda r: httpx.Response(202, json=withdrawal_json(json.loads(r.content)["id"]))
    )
    with sync_client(recorder) as sluice:
        first = sluice.create_withdrawal(
            user_id="u", amount="1", to_address=ADDRESS, network="anvil"
        )
        second = sluice.create_withdrawal(
            user_id="u", amount="1", to_address=ADDRESS, network="anvil"
        )
    assert first.id.startswith("wd_")
    assert len(first.id) == 35
    assert first.id != second.id


@pytest.mark.parametrize(
    ("priority", "sent"), [(FeeLevel.FAST, "fast"), ("slow", "slow"), (None, None)]
)
async def test_create_sends_the_priority_only_when_given(
    priority: FeeLevel | str | None, sent: str | None
) -> None:
    recorder = Recorder(lambda r: httpx.Response(202, json=withdrawal_json(priority=sent)))
    with sync_client(recorder) as sluice:
        created = sluice.create_withdrawal(
            user_id="u", amount="1", to_address=ADDRESS, network="anvil", priority=priority
        )
    async with async_client(recorder) as async_sluice:
        await async_sluice.create_withdrawal(
            user_id="u", amount="1", to_address=ADDRESS, network="anvil", priority=priority
        )
    for index in (0, 1):
        # Absent, not null: a Sluice before fee levels refuses the field.
        assert recorder.body(index).get("priority", "absent") == (sent or "absent")
    assert created.priority == sent


def test_an_amount_in_exponent_form_is_sent_in_plain_digits() -> None:
    recorder = Recorder(lambda r: httpx.Response(202, json=withdrawal_json()))
    with sync_client(recorder) as sluice:
        sluice.create_withdrawal(
            user_id="u", amount=Decimal("1E+2"), to_address=ADDRESS, network="n"
        )
        sluice.create_withdrawal(
            user_id="u", amount=Decimal("1E-7"), to_address=ADDRESS, network="n"
        )
    assert [recorder.body(i)["amount"] for i in (0, 1)] == ["100", "0.0000001"]


@pytest.mark.parametrize("amount", [1.5, 0.1, 1, True, None])
def test_an_amount_that_is_not_a_decimal_or_a_string_is_refused_before_sending(amount: Any) -> None:
    recorder = Recorder(lambda r: httpx.Response(202, json=withdrawal_json()))
    with (
        sync_client(recorder) as sluice,
        pytest.raises(TypeError, match=r"decimal\.Decimal or a str"),
    ):
        sluice.create_withdrawal(user_id="u", amount=amount, to_address=ADDRESS, network="n")
    assert recorder.requests == []


def test_a_float_amount_says_how_to_pass_it_exactly() -> None:
    with SluiceClient("http://sluice.test", "k") as sluice, pytest.raises(TypeError) as caught:
        sluice.credit_balance(user_id="u", network="n", amount=0.1, reference="r")  # type: ignore[arg-type]
    assert "never a float" in str(caught.value)
    assert "Decimal('0.1')" in str(caught.value)


def test_path_parameters_stay_one_segment() -> None:
    recorder = Recorder(lambda r: withdrawal_json() if "withdrawals" in r.url.path else [])
    with sync_client(recorder) as sluice:
        sluice.get_withdrawal("a/b?c")
        sluice.get_user_balances("user:42@x")
    assert recorder.requests[0].url.raw_path == b"/v1/withdrawals/a%2Fb%3Fc"
    assert recorder.requests[1].url.raw_path == b"/v1/users/user%3A42%40x/balances"


def test_each_operation_calls_its_route() -> None:
    transaction = {
        "id": "tx-1",
        "network": "anvil",
        "hotWallet": ADDRESS,
        "nonce": 3,
        "kind": "PAYOUT",
        "status": "CONFIRMED",
        "blockNumber": 10,
        "blockHash": "0xbb",
        "minedHash": "0xaa",
        "cancelRequestedAt": None,
        "attempts": [
            {
                "seq": 1,
                "purpose": "PAYLOAD",
                "transactionHash": "0xaa",
                "maxFeePerGas": "2000000000",
                "maxPriorityFeePerGas": "1000000000",
                "createdAt": "2026-12-02T10:00:00Z",
                "sentAt": "2026-12-02T10:00:00Z",
                "outcome": "MINED",
                "note": None,
            }
        ],
    }
    event = {
        "fromStatus": "SIGNED",
        "status": "BROADCASTING",
        "at": "2026-12-02T10:00:00Z",
        "reason": "sent",
        "errorCode": None,
        "requestId": "r-1",
        "data": {"nonce": 3, "maxFeePerGas": "2000000000", "transactionHash": "0xaa"},
    }
    answers: dict[tuple[str, str], Any] = {
        ("GET", "/v1/withdrawals/wd-1/events"): {"withdrawalId": "wd-1", "events": [event]},
        ("GET", "/v1/withdrawals/wd-1/transaction"): transaction,
        ("POST", "/v1/withdrawals/wd-1/cancel"): withdrawal_json(status="CANCELLED"),
        ("POST", "/v1/admin/withdrawals/wd-1/cancel"): withdrawal_json(status="CANCELLED"),
        ("GET", "/v1/users/user-42/balances"): [
            {
                "network": "anvil",
                "tokenAddress": None,
                "symbol": "ETH",
                "available": "2.5",
                "held": "0.5",
            }
        ],
        ("POST", "/v1/admin/ledger/credits"): {"reference": "r-1", "credited": False},
        ("GET", "/v1/admin/hot-wallets"): [
            {
                "network": "anvil",
                "address": ADDRESS,
                "state": "active",
                "inFlight": 0,
                "nativeSymbol": "ETH",
                "nativeBalance": "3.2",
            }
        ],
        ("GET", "/v1/admin/dead-letters"): [
            {
                "id": "m-1",
                "job": "withdrawal.validate",
                "payload": {"withdrawal_id": "wd-1"},
                "attempts": 5,
                "reason": "max attempts",
                "lastError": "boom",
                "deadAt": "2026-12-02T10:00:00Z",
            }
        ],
        ("POST", "/v1/admin/dead-letters/m-1/requeue"): httpx.Response(202),
        ("GET", "/health"): {"status": "ok"},
        ("GET", "/ready"): {
            "status": "ready",
            "checks": {"database": {"ok": True, "detail": "ok"}},
        },
    }
    recorder = Recorder(lambda r: answers[(r.method, r.url.path)])
    with sync_client(recorder) as sluice:
        (read_event,) = sluice.list_withdrawal_events("wd-1")
        read_transaction = sluice.get_withdrawal_transaction("wd-1")
        cancelled = sluice.cancel_withdrawal("wd-1")
        by_operator = sluice.cancel_withdrawal_as_operator("wd-1", reason="fraud")
        (balance,) = sluice.get_user_balances("user-42")
        credit = sluice.credit_balance(
            user_id="user-42", network="anvil", amount="2.5", reference="r-1"
        )
        (wallet,) = sluice.list_hot_wallets()
        (letter,) = sluice.list_dead_letters()
        sluice.requeue_dead_letter("m-1")
        assert sluice.get_health().status == "ok"
        assert sluice.get_readiness().ready
    assert read_event.from_status is WithdrawalStatus.SIGNED
    assert read_event.data is not None
    assert (read_event.data.nonce, read_event.data.max_fee_per_gas) == (3, 2_000_000_000)
    assert read_transaction.attempts[0].max_priority_fee_per_gas == 1_000_000_000
    assert read_transaction.nonce == 3
    assert cancelled.status is by_operator.status is WithdrawalStatus.CANCELLED
    assert (balance.available, balance.held) == (Decimal("2.5"), Decimal("0.5"))
    assert credit.credited is False
    assert wallet.native_balance == Decimal("3.2")
    assert letter.payload == {"withdrawal_id": "wd-1"}
    operator_request = recorder.requests[3]
    assert json.loads(operator_request.content) == {"reason": "fraud"}
    cancel_request = recorder.requests[2]
    assert cancel_request.content == b""


def network_json(**changes: Any) -> dict[str, Any]:
    return {
        "name": "sepolia",
        "displayName": "Sepolia",
        "preset": "sepolia",
        "chainId": 11155111,
        "assets": [
            {"symbol": "ETH", "decimals": 18, "tokenAddress": None},
            {"symbol": "USDC", "decimals": 6, "tokenAddress": ADDRESS},
        ],
        "finality": {"rule": "finalized", "confirmations": 6},
        "blockTimeSeconds": 12.0,
        "feeModel": "eip1559",
        "defaultPriority": "normal",
        "feeLevels": {
            "slow": {"maxFeePerGas": "2530000000", "maxPriorityFeePerGas": "100000000"},
            "normal": {"maxFeePerGas": "3430000000", "maxPriorityFeePerGas": "1000000000"},
            "fast": {"maxFeePerGas": "4430000000", "maxPriorityFeePerGas": "2000000000"},
        },
        "feeLimits": {
            "maxFeePerGas": "500000000000",
            "maxTipPerGas": None,
            "minTipPerGas": "0",
            "minGasPrice": "0",
            "bumpPercent": 20,
        },
        "rpc": {"status": "up", "detail": "ok", "head": 7212345, "providers": 2},
        "hotWallets": [{"address": ADDRESS, "state": "active", "nativeBalance": "3.2"}],
        "explorer": {
            "transaction": "https://sepolia.etherscan.io/tx/{hash}",
            "address": "https://sepolia.etherscan.io/address/{address}",
        },
        **changes,
    }


async def test_list_networks_reads_fee_levels_in_wei_and_balances_exactly() -> None:
    down = network_json(
        name="bsc",
        preset=None,
        chainId=56,
        blockTimeSeconds=3,
        feeModel="legacy",
        defaultPriority="fast",
        feeLevels=None,
        rpc={"status": "down", "detail": "down: timed out", "head": None, "providers": 1},
        hotWallets=[{"address": ADDRESS, "state": "draining", "nativeBalance": None}],
        explorer=None,
    )
    recorder = Recorder(lambda r: [network_json(), down])
    with sync_client(recorder) as sluice:
        sepolia, bsc = sluice.list_networks(request_id="r-net")
    async with async_client(recorder) as async_sluice:
        assert await async_sluice.list_networks() == [sepolia, bsc]
    assert [(r.method, r.url.path) for r in recorder.requests] == [("GET", "/v1/networks")] * 2
    assert recorder.requests[0].headers["X-Request-ID"] == "r-net"

    assert (sepolia.name, sepolia.display_name, sepolia.chain_id) == (
        "sepolia",
        "Sepolia",
        11155111,
    )
    assert [(a.symbol, a.decimals, a.token_address) for a in sepolia.assets] == [
        ("ETH", 18, None),
        ("USDC", 6, ADDRESS),
    ]
    assert (sepolia.finality.rule, sepolia.finality.confirmations) == ("finalized", 6)
    assert sepolia.default_priority is FeeLevel.NORMAL
    assert sepolia.fee_levels is not None
    assert sepolia.fee_levels[FeeLevel.FAST] == FeeLevelPrice(4_430_000_000, 2_000_000_000)
    assert list(sepolia.fee_levels) == [FeeLevel.SLOW, FeeLevel.NORMAL, FeeLevel.FAST]
    assert sepolia.fee_limits.max_fee_per_gas == 500_000_000_000
    assert sepolia.fee_limits.max_tip_per_gas is None
    assert sepolia.fee_limits.bump_percent == 20
    assert sepolia.rpc.up
    assert (sepolia.rpc.head, sepolia.rpc.providers) == (7212345, 2)
    assert sepolia.hot_wallets[0].native_balance == Decimal("3.2")
    assert sepolia.explorer is not None
    assert sepolia.explorer.transaction_url("0xaa") == "https://sepolia.etherscan.io/tx/0xaa"
    assert sepolia.explorer.address_url(ADDRESS).endswith(f"/address/{ADDRESS}")
    assert sepolia.raw["chainId"] == 11155111

    # A network that is down is listed like the others, with what cannot be known as None.
    assert (bsc.preset, bsc.fee_model, bsc.block_time_seconds) == (None, "legacy", 3.0)
    assert bsc.default_priority is FeeLevel.FAST
    assert bsc.fee_levels is None
    assert not bsc.rpc.up
    assert bsc.rpc.head is None
    assert (bsc.hot_wallets[0].state, bsc.hot_wallets[0].native_balance) == ("draining", None)
    assert bsc.explorer is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            {"feeLevels": {"urgent": {"maxFeePerGas": "1", "maxPriorityFeePerGas": "1"}}},
            "feeLevels",
        ),
        ({"feeLevels": {"fast": {"maxFeePerGas": 1, "maxPriorityFeePerGas": "1"}}}, "maxFeePerGas"),
        ({"defaultPriority": "urgent"}, "defaultPriority"),
        ({"blockTimeSeconds": "12"}, "blockTimeSeconds"),
        ({"blockTimeSeconds": True}, "blockTimeSeconds"),
        ({"chainId": "1"}, "chainId"),
        ({"rpc": None}, "rpc"),
    ],
)
def test_a_network_that_is_not_what_sluice_sends_names_the_field(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(UnexpectedResponseError, match=field):
        Network.from_json(network_json(**changes))


def test_a_network_shows_its_circuit_breaker_and_the_pause_holding_it() -> None:
    paused = Network.from_json(
        network_json(
            circuitBreaker={"windowSeconds": 3600, "maxOutflow": {"ETH": "50", "USDC": "0.5"}},
            paused={
                "network": "*",
                "since": "2026-12-04T12:00:00Z",
                "kind": "manual",
                "reason": "incident 42",
                "actor": "operator:op_1",
            },
        )
    )
    assert paused.circuit_breaker is not None
    assert paused.circuit_breaker.window_seconds == 3600
    assert paused.circuit_breaker.max_outflow == {"ETH": Decimal("50"), "USDC": Decimal("0.5")}
    assert paused.paused is not None
    assert (paused.paused.network, paused.paused.kind) == ("*", "manual")
    assert paused.paused.since.tzinfo is not None
    running = Network.from_json(network_json(circuitBreaker=None, paused=None))
    assert (running.circuit_breaker, running.paused) == (None, None)
    older = Network.from_json(network_json())  # a Sluice before pauses sends neither
    assert older.paused is None


def test_readiness_names_the_degraded_checks() -> None:
    degraded = Readiness.from_json(
        {
            "status": "degraded",
            "checks": {
                "database": {"ok": True, "detail": "ok"},
                "chain:polygon": {"ok": False, "detail": "down: timed out"},
            },
            "degraded": ["chain:polygon"],
        }
    )
    assert degraded.ready
    assert degraded.degraded == ["chain:polygon"]
    # A Sluice before per-network health sends no list.
    older = Readiness.from_json({"status": "ready", "checks": {}})
    assert older.degraded == []
    with pytest.raises(UnexpectedResponseError, match="degraded"):
        Readiness.from_json({"status": "degraded", "checks": {}, "degraded": [1]})


def test_list_sends_only_the_filters_given_and_updated_since_in_utc() -> None:
    recorder = Recorder(lambda r: {"items": [withdrawal_json()], "nextCursor": "c2"})
    since = datetime(2026, 12, 2, 11, 30, tzinfo=timezone(timedelta(hours=1)))
    with sync_client(recorder) as sluice:
        page = sluice.list_withdrawals(
            user_id="user-42", status=WithdrawalStatus.COMPLETED, updated_since=since, limit=10
        )
        sluice.list_withdrawals()
    assert recorder.query(0) == {
        "userId": ["user-42"],
        "status": ["COMPLETED"],
        "updatedSince": ["2026-12-02T10:30:00Z"],
        "limit": ["10"],
    }
    assert recorder.query(1) == {}
    assert page.next_cursor == "c2"


def test_a_naive_updated_since_is_refused() -> None:
    with SluiceClient("http://sluice.test", "k") as sluice, pytest.raises(ValueError, match="zone"):
        sluice.list_withdrawals(updated_since=datetime(2026, 12, 2))


def _paged(total: int) -> Recorder:
    """A server with ``total`` withdrawals, in pages of ``limit``; the cursor is the offset."""

    def answer(request: httpx.Request) -> dict[str, Any]:
        query = parse_qs(urlsplit(str(request.url)).query)
        limit = int(query["limit"][0])
        start = int(query.get("cursor", ["0"])[0])
        end = min(total, start + limit)
        return {
            "items": [withdrawal_json(f"wd-{i}") for i in range(start, end)],
            "nextCursor": str(end) if end < total else None,
        }

    return Recorder(answer)


def test_iter_withdrawals_follows_every_cursor() -> None:
    recorder = _paged(5)
    with sync_client(recorder) as sluice:
        ids = [w.id for w in sluice.iter_withdrawals(user_id="user-42", page_size=2)]
    assert ids == [f"wd-{i}" for i in range(5)]
    assert [recorder.query(i).get("cursor") for i in range(3)] == [None, ["2"], ["4"]]
    assert all(recorder.query(i)["userId"] == ["user-42"] for i in range(3))


def test_pages_are_fetched_only_as_they_are_used() -> None:
    recorder = _paged(5)
    with sync_client(recorder) as sluice:
        pages = sluice.iter_withdrawal_pages(page_size=2)
        first = next(pages)
    assert [w.id for w in first.items] == ["wd-0", "wd-1"]
    assert len(recorder.requests) == 1


def test_a_page_size_outside_the_api_limits_is_refused() -> None:
    with (
        SluiceClient("http://sluice.test", "k") as sluice,
        pytest.raises(ValueError, match="1-200"),
    ):
        next(sluice.iter_withdrawals(page_size=500))


def test_changes_since_reaches_back_by_the_overlap_and_pages_to_the_end() -> None:
    recorder = _paged(3)
    since = datetime(2026, 12, 2, 10, 0, 10, tzinfo=UTC)
    with sync_client(recorder) as sluice:
        changes = list(sluice.changes_since(since, page_size=2))
        list(sluice.changes_since(since, overlap=timedelta(0), page_size=2))
    assert [w.id for w in changes] == ["wd-0", "wd-1", "wd-2"]
    assert recorder.query(0)["updatedSince"] == ["2026-12-02T10:00:05Z"]
    assert recorder.query(2)["updatedSince"] == ["2026-12-02T10:00:10Z"]


def test_changes_since_needs_an_aware_time() -> None:
    with SluiceClient("http://sluice.test", "k") as sluice, pytest.raises(ValueError, match="zone"):
        next(sluice.changes_since(datetime(2026, 12, 2)))


async def test_the_async_helpers_page_the_same_way() -> None:
    recorder = _paged(5)
    async with async_client(recorder) as sluice:
        ids = [w.id async for w in sluice.iter_withdrawals(page_size=2)]
        since = datetime(2026, 12, 2, 10, 0, 10, tzinfo=UTC)
        changed = [w.id async for w in sluice.changes_since(since, page_size=3)]
    assert ids == [f"wd-{i}" for i in range(5)]
    assert changed == ids
    assert recorder.query(3)["updatedSince"] == ["2026-12-02T10:00:05Z"]


def test_wait_for_withdrawal_polls_until_final() -> None:
    statuses = iter(["PENDING", "BROADCASTING", "COMPLETED"])
    recorder = Recorder(lambda r: withdrawal_json(status=next(statuses)))
    with sync_client(recorder) as sluice:
        done = sluice.wait_for_withdrawal("wd-1", interval_s=0.0)
    assert done.status is WithdrawalStatus.COMPLETED
    assert len(recorder.requests) == 3


def test_wait_for_withdrawal_gives_up_saying_where_it_is() -> None:
    recorder = Recorder(lambda r: withdrawal_json(status="VALIDATING"))
    with sync_client(recorder) as sluice, pytest.raises(TimeoutError, match="VALIDATING"):
        sluice.wait_for_withdrawal("wd-1", timeout_s=0.05, interval_s=0.01)


async def test_async_wait_for_withdrawal_takes_a_condition() -> None:
    statuses = iter(["PENDING", "VALIDATING"])
    recorder = Recorder(lambda r: withdrawal_json(status=next(statuses)))
    async with async_client(recorder) as sluice:
        held = await sluice.wait_for_withdrawal(
            "wd-1", until=lambda w: w.status is WithdrawalStatus.VALIDATING, interval_s=0.0
        )
    assert held.status is WithdrawalStatus.VALIDATING


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "ftp://x", "http://"])
def test_a_base_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        SluiceClient(url, "k")


def test_an_api_key_with_spaces_is_refused() -> None:
    with pytest.raises(ValueError, match="api_key"):
        SluiceClient("http://sluice.test", " sluice_a_b\n")


def test_statuses_know_whether_they_are_final_or_cancellable() -> None:
    final = {s for s in WithdrawalStatus if s.is_final}
    assert final == {
        WithdrawalStatus.COMPLETED,
        WithdrawalStatus.FAILED,
        WithdrawalStatus.CANCELLED,
    }
    assert WithdrawalStatus.VALIDATING.is_cancellable
    assert not WithdrawalStatus.SIGNED.is_cancellable
    assert WithdrawalStatus.COMPLETED == "COMPLETED"
