"""Every SDK method against a real `sluice dev` (API, workers, Anvil mining every second).

The dev key has every scope, admin included. Each test works on users of its own, so the
tests share the instance without meeting. A withdrawal that must stay cancellable is made
larger than the hot wallet holds (it waits in VALIDATING, ``underfunded``), which is
deterministic where racing the workers to cancel would not be.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from sdk_dev_instance import DevInstance
from sluice_client import (
    AsyncSluiceClient,
    AuthenticationError,
    FeeLevel,
    IdempotencyConflictError,
    InvalidRequestError,
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    Retries,
    SigningKey,
    SluiceClient,
    TransportError,
    Withdrawal,
    WithdrawalStatus,
)

#: Anvil's second default account: an ordinary destination.
DESTINATION = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
#: More ETH than `sluice dev` gives its hot wallet (10,000): such a withdrawal waits, held.
TOO_MUCH_FOR_THE_HOT_WALLET = Decimal(500_000)
TIMEOUT_S = 60.0


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def sluice(sluice_dev: DevInstance) -> Iterator[SluiceClient]:
    with SluiceClient(sluice_dev.api_url, sluice_dev.api_key) as client:
        yield client


@pytest.fixture
async def async_sluice(sluice_dev: DevInstance) -> AsyncIterator[AsyncSluiceClient]:
    async with AsyncSluiceClient(sluice_dev.api_url, sluice_dev.api_key) as client:
        yield client


@pytest.fixture
def funded_user(sluice: SluiceClient, sluice_dev: DevInstance) -> str:
    """A new user with 10 ETH and 1,000 DEMO (credited through the SDK)."""
    user = fresh("sdk-user")
    token = sluice_dev.tokens["DEMO"]
    for amount, token_address in ((Decimal(10), None), (Decimal(1000), token)):
        result = sluice.credit_balance(
            user_id=user,
            network=sluice_dev.network,
            amount=amount,
            reference=f"{user}:{token_address}",
            token_address=token_address,
        )
        assert result.credited
    return user


def _held_and_waiting(sluice: SluiceClient, user: str, network: str) -> Withdrawal:
    """A withdrawal that validates (funds held) and then waits: the hot wallet is too poor."""
    sluice.credit_balance(
        user_id=user,
        network=network,
        amount=TOO_MUCH_FOR_THE_HOT_WALLET * 2,
        reference=fresh("whale"),
    )
    created = sluice.create_withdrawal(
        user_id=user, amount=TOO_MUCH_FOR_THE_HOT_WALLET, to_address=DESTINATION, network=network
    )
    return sluice.wait_for_withdrawal(
        created.id,
        until=lambda w: w.waiting_reason is not None or w.status.is_final,
        timeout_s=TIMEOUT_S,
        interval_s=0.2,
    )


def test_health_and_readiness(sluice: SluiceClient, sluice_dev: DevInstance) -> None:
    assert sluice.get_health().status == "ok"
    readiness = sluice.get_readiness()
    assert readiness.ready
    assert readiness.checks[f"chain:{sluice_dev.network}"].ok
    assert f"chain:{sluice_dev.network}" not in readiness.degraded


def test_a_native_withdrawal_completes_with_its_history_and_transaction(
    sluice: SluiceClient, sluice_dev: DevInstance, funded_user: str
) -> None:
    payout_id = fresh("payout")
    request_id = fresh("trace")
    created = sluice.create_withdrawal(
        id=payout_id,
        user_id=funded_user,
        amount=Decimal("0.25"),
        to_address=DESTINATION,
        network=sluice_dev.network,
        request_id=request_id,
    )
    assert (created.id, created.status, created.amount) == (
        payout_id,
        WithdrawalStatus.PENDING,
        Decimal("0.25"),
    )
    assert created.symbol == "ETH"
    assert created.token_address is None

    # The same request again is the same withdrawal (idempotent by id), whatever its status.
    again = sluice.create_withdrawal(
        id=payout_id,
        user_id=funded_user,
        amount="0.250",
        to_address=DESTINATION,
        network=sluice_dev.network,
    )
    assert (again.id, again.created_at) == (created.id, created.created_at)

    done = sluice.wait_for_withdrawal(payout_id, timeout_s=TIMEOUT_S, interval_s=0.5)
    assert done.status is WithdrawalStatus.COMPLETED, done
    assert done.transaction_hash is not None
    assert done.block_number is not None
    assert sluice.get_withdrawal(payout_id) == done

    events = sluice.list_withdrawal_events(payout_id)
    statuses = [e.status for e in events]
    assert statuses[0] is WithdrawalStatus.PENDING
    assert statuses[-1] is WithdrawalStatus.COMPLETED
    assert WithdrawalStatus.BROADCASTING in statuses
    assert events[0].request_id == request_id
    assert events[0].from_status is None
    assert all(a.at <= b.at for a, b in itertools.pairwise(events))

    transaction = sluice.get_withdrawal_transaction(payout_id)
    assert transaction.hot_wallet == sluice_dev.hot_wallet
    assert transaction.status == "CONFIRMED"
    assert transaction.mined_hash == done.transaction_hash
    assert transaction.block_number == done.block_number
    assert transaction.attempts[0].transaction_hash == done.transaction_hash
    assert transaction.attempts[0].max_fee_per_gas > 0

    (balance,) = [b for b in sluice.get_user_balances(funded_user) if b.token_address is None]
    assert (balance.available, balance.held) == (Decimal("9.75"), Decimal(0))


async def test_a_token_withdrawal_completes_through_the_async_client(
    async_sluice: AsyncSluiceClient, sluice_dev: DevInstance, funded_user: str
) -> None:
    token = sluice_dev.tokens["DEMO"]
    created = await async_sluice.create_withdrawal(
        user_id=funded_user,
        amount=Decimal("12.5"),
        to_address=DESTINATION,
        network=sluice_dev.network,
        token_address=token,
    )
    assert created.id.startswith("wd_")  # made by the SDK
    assert created.symbol == "DEMO"
    done = await async_sluice.wait_for_withdrawal(created.id, timeout_s=TIMEOUT_S, interval_s=0.5)
    assert done.status is WithdrawalStatus.COMPLETED, done
    assert done.token_address == token
    balances = {b.symbol: b for b in await async_sluice.get_user_balances(funded_user)}
    assert balances["DEMO"].available == Decimal("987.5")
    assert balances["DEMO"].held == 0
    transaction = await async_sluice.get_withdrawal_transaction(created.id)
    assert transaction.mined_hash == done.transaction_hash


def test_a_withdrawal_paid_at_a_priority_shows_the_fee_it_paid(
    sluice: SluiceClient, sluice_dev: DevInstance, funded_user: str
) -> None:
    payout_id = fresh("fast-payout")
    created = sluice.create_withdrawal(
        id=payout_id,
        user_id=funded_user,
        amount="0.5",
        to_address=DESTINATION,
        network=sluice_dev.network,
        priority=FeeLevel.FAST,
    )
    assert (created.priority, created.fee_paid) == (FeeLevel.FAST, None)
    # The priority is part of the request the id stands for.
    with pytest.raises(IdempotencyConflictError):
        sluice.create_withdrawal(
            id=payout_id,
            user_id=funded_user,
            amount="0.5",
            to_address=DESTINATION,
            network=sluice_dev.network,
            priority="slow",
        )
    done = sluice.wait_for_withdrawal(payout_id, timeout_s=TIMEOUT_S, interval_s=0.5)
    assert done.status is WithdrawalStatus.COMPLETED, done
    assert done.priority is FeeLevel.FAST
    # A native transfer to an account: 21,000 gas at the price the receipt says, in ETH.
    transaction = sluice.get_withdrawal_transaction(payout_id)
    assert done.fee_paid is not None
    assert 0 < done.fee_paid <= Decimal(21_000 * transaction.attempts[-1].max_fee_per_gas) / 10**18

    # Without a priority, the network's default.
    (network,) = [n for n in sluice.list_networks() if n.name == sluice_dev.network]
    plain = sluice.create_withdrawal(
        user_id=funded_user, amount="0.01", to_address=DESTINATION, network=sluice_dev.network
    )
    assert plain.priority is network.default_priority


async def test_list_networks_shows_the_dev_chain_its_assets_fees_and_hot_wallet(
    async_sluice: AsyncSluiceClient, sluice_dev: DevInstance
) -> None:
    networks = {n.name: n for n in await async_sluice.list_networks()}
    network = networks[sluice_dev.network]
    assert network.chain_id == 31337
    assert network.assets[0].token_address is None  # the native coin first
    assert network.assets[0].symbol == "ETH"
    assert sluice_dev.tokens["DEMO"] in {a.token_address for a in network.assets}
    assert network.fee_model in {"eip1559", "legacy"}
    assert network.finality.rule in {"finalized", "depth"}
    assert network.block_time_seconds > 0
    assert network.rpc.up, network.rpc
    assert network.rpc.head is not None
    assert network.rpc.providers >= 1
    assert network.fee_levels is not None
    assert set(network.fee_levels) == set(FeeLevel)
    slow, fast = network.fee_levels[FeeLevel.SLOW], network.fee_levels[FeeLevel.FAST]
    assert 0 < slow.max_fee_per_gas <= fast.max_fee_per_gas
    assert fast.max_fee_per_gas <= network.fee_limits.max_fee_per_gas
    (wallet,) = [w for w in network.hot_wallets if w.address == sluice_dev.hot_wallet]
    assert wallet.state == "active"
    assert wallet.native_balance is not None
    assert wallet.native_balance > 1000


def test_listing_pages_through_a_users_withdrawals_and_catches_up(
    sluice: SluiceClient, sluice_dev: DevInstance
) -> None:
    user = fresh("sdk-lister")  # no funds: each withdrawal FAILs (insufficient_funds) at once
    started = datetime.now(UTC)
    ids = [
        sluice.create_withdrawal(
            user_id=user, amount="1", to_address=DESTINATION, network=sluice_dev.network
        ).id
        for _ in range(5)
    ]
    for withdrawal_id in ids:
        failed = sluice.wait_for_withdrawal(withdrawal_id, timeout_s=TIMEOUT_S, interval_s=0.2)
        assert (failed.status, failed.error_code) == (
            WithdrawalStatus.FAILED,
            "insufficient_funds",
        )

    first = sluice.list_withdrawals(user_id=user, limit=2)
    assert len(first.items) == 2
    assert first.next_cursor is not None
    pages = list(sluice.iter_withdrawal_pages(user_id=user, page_size=2))
    assert [len(p.items) for p in pages] == [2, 2, 1]
    assert pages[-1].next_cursor is None
    newest_first = [w.id for w in sluice.iter_withdrawals(user_id=user, page_size=2)]
    assert newest_first == ids[::-1]
    failed_only = list(sluice.iter_withdrawals(user_id=user, status=WithdrawalStatus.FAILED))
    assert {w.id for w in failed_only} == set(ids)
    assert list(sluice.iter_withdrawals(user_id=user, status="COMPLETED")) == []

    changes = list(sluice.changes_since(started, user_id=user, page_size=2))
    assert {w.id for w in changes} == set(ids)
    assert [w.updated_at for w in changes] == sorted(w.updated_at for w in changes)
    later = max(w.updated_at for w in changes) + timedelta(seconds=30)
    assert list(sluice.changes_since(later, user_id=user)) == []


async def test_the_async_iterators_page_through_a_real_list(
    async_sluice: AsyncSluiceClient, sluice_dev: DevInstance
) -> None:
    user = fresh("sdk-async-lister")
    started = datetime.now(UTC)
    ids = {
        (
            await async_sluice.create_withdrawal(
                user_id=user, amount="1", to_address=DESTINATION, network=sluice_dev.network
            )
        ).id
        for _ in range(3)
    }
    listed = {w.id async for w in async_sluice.iter_withdrawals(user_id=user, page_size=1)}
    changed = {w.id async for w in async_sluice.changes_since(started, user_id=user, page_size=1)}
    assert listed == changed == ids


def test_a_withdrawal_held_before_signing_is_cancelled_and_its_hold_released(
    sluice: SluiceClient, sluice_dev: DevInstance
) -> None:
    user = fresh("sdk-canceller")
    waiting = _held_and_waiting(sluice, user, sluice_dev.network)
    assert waiting.status is WithdrawalStatus.VALIDATING, waiting
    assert waiting.waiting_reason is not None
    assert waiting.waiting_reason.startswith("underfunded")
    (held,) = sluice.get_user_balances(user)
    assert held.held == TOO_MUCH_FOR_THE_HOT_WALLET

    cancelled = sluice.cancel_withdrawal(waiting.id)
    assert cancelled.status is WithdrawalStatus.CANCELLED
    assert sluice.cancel_withdrawal(waiting.id).status is WithdrawalStatus.CANCELLED  # again: 200
    (released,) = sluice.get_user_balances(user)
    assert (released.available, released.held) == (TOO_MUCH_FOR_THE_HOT_WALLET * 2, Decimal(0))
    assert sluice.list_withdrawal_events(waiting.id)[-1].reason == "cancelled by the client"
    with pytest.raises(NotFoundError):
        sluice.get_withdrawal_transaction(waiting.id)  # never signed


def test_an_operator_cancels_with_a_reason(sluice: SluiceClient, sluice_dev: DevInstance) -> None:
    user = fresh("sdk-operator")
    waiting = _held_and_waiting(sluice, user, sluice_dev.network)
    cancelled = sluice.cancel_withdrawal_as_operator(waiting.id, reason="suspected fraud")
    assert cancelled.status is WithdrawalStatus.CANCELLED
    assert sluice.list_withdrawal_events(waiting.id)[-1].reason == "suspected fraud"


def test_a_completed_withdrawal_can_no_longer_be_cancelled(
    sluice: SluiceClient, sluice_dev: DevInstance, funded_user: str
) -> None:
    created = sluice.create_withdrawal(
        user_id=funded_user, amount="0.01", to_address=DESTINATION, network=sluice_dev.network
    )
    sluice.wait_for_withdrawal(created.id, timeout_s=TIMEOUT_S, interval_s=0.5)
    with pytest.raises(InvalidStateError) as by_client:
        sluice.cancel_withdrawal(created.id)
    with pytest.raises(InvalidStateError) as by_operator:
        sluice.cancel_withdrawal_as_operator(created.id)
    assert by_client.value.status == by_operator.value.status == 409
    assert by_client.value.code == "invalid_state"


def test_credits_are_once_per_reference(sluice: SluiceClient, sluice_dev: DevInstance) -> None:
    user, reference = fresh("sdk-credit"), fresh("deposit")
    network = sluice_dev.network
    first = sluice.credit_balance(user_id=user, network=network, amount="2.5", reference=reference)
    repeat = sluice.credit_balance(
        user_id=user, network=network, amount="2.50", reference=reference
    )
    assert (first.credited, repeat.credited) == (True, False)
    with pytest.raises(IdempotencyConflictError) as caught:
        sluice.credit_balance(user_id=user, network=network, amount="3", reference=reference)
    assert caught.value.code == "idempotency_conflict"
    (balance,) = sluice.get_user_balances(user)
    assert (balance.symbol, balance.available) == ("ETH", Decimal("2.5"))


def test_hot_wallets_and_dead_letters(sluice: SluiceClient, sluice_dev: DevInstance) -> None:
    wallets = sluice.list_hot_wallets()
    (wallet,) = [w for w in wallets if w.address == sluice_dev.hot_wallet]
    assert (wallet.network, wallet.state, wallet.native_symbol) == (
        sluice_dev.network,
        "active",
        "ETH",
    )
    assert wallet.native_balance is not None  # the dev chain is up
    assert wallet.native_balance > 1000
    assert wallet.in_flight >= 0
    letters = sluice.list_dead_letters()
    assert all(letter.attempts >= 1 for letter in letters)
    with pytest.raises(NotFoundError):
        sluice.requeue_dead_letter(fresh("no-such-message"))


def test_bad_requests_raise_errors_naming_the_field(
    sluice: SluiceClient, sluice_dev: DevInstance, funded_user: str
) -> None:
    network = sluice_dev.network
    with pytest.raises(InvalidRequestError) as bad_address:
        sluice.create_withdrawal(
            user_id=funded_user, amount="1", to_address="0x1234", network=network
        )
    assert bad_address.value.status == 422
    assert bad_address.value.code == "invalid_address"
    assert [(e.field, e.location) for e in bad_address.value.field_errors] == [
        ("toAddress", "body")
    ]
    assert bad_address.value.request_id

    with pytest.raises(InvalidRequestError) as too_precise:
        sluice.create_withdrawal(
            user_id=funded_user,
            amount="0.1234567890123456789",
            to_address=DESTINATION,
            network=network,
        )
    assert too_precise.value.field_errors[0].field == "amount"
    assert too_precise.value.field_errors[0].code == "invalid_amount"

    with pytest.raises(InvalidRequestError) as unknown:
        sluice.create_withdrawal(
            user_id=funded_user, amount="1", to_address=DESTINATION, network="no-such-chain"
        )
    assert unknown.value.code == "unknown_network"

    with pytest.raises(InvalidRequestError) as bad_limit:
        sluice.list_withdrawals(limit=1000)
    assert [(e.field, e.location) for e in bad_limit.value.field_errors] == [("limit", "query")]

    with pytest.raises(TypeError):
        sluice.create_withdrawal(
            user_id=funded_user,
            amount=0.5,  # type: ignore[arg-type]
            to_address=DESTINATION,
            network=network,
        )


def test_unknown_ids_and_reused_ids(
    sluice: SluiceClient, sluice_dev: DevInstance, funded_user: str
) -> None:
    with pytest.raises(NotFoundError) as missing:
        sluice.get_withdrawal(fresh("nope"))
    assert missing.value.code == "not_found"
    with pytest.raises(NotFoundError):
        sluice.list_withdrawal_events(fresh("nope"))

    payout_id = fresh("payout")
    sluice.create_withdrawal(
        id=payout_id,
        user_id=funded_user,
        amount="0.01",
        to_address=DESTINATION,
        network=sluice_dev.network,
    )
    with pytest.raises(IdempotencyConflictError) as conflict:
        sluice.create_withdrawal(
            id=payout_id,
            user_id=funded_user,
            amount="0.02",
            to_address=DESTINATION,
            network=sluice_dev.network,
        )
    assert (conflict.value.status, conflict.value.code) == (409, "idempotency_conflict")


def test_a_bad_key_is_refused_and_a_read_only_key_may_only_read(
    sluice_dev: DevInstance, sluice: SluiceClient, funded_user: str
) -> None:
    with SluiceClient(sluice_dev.api_url, "sluice_0000000000000000_nope") as stranger:
        with pytest.raises(AuthenticationError) as refused:
            stranger.list_withdrawals()
        assert (refused.value.status, refused.value.code) == (401, "unauthorized")
        assert stranger.get_health().status == "ok"  # needs no key

    read_only = sluice_dev.create_api_key(fresh("sdk-reader"), "--scope", "withdrawals:read")
    with SluiceClient(sluice_dev.api_url, read_only) as reader:
        assert reader.get_user_balances(funded_user)
        with pytest.raises(PermissionDeniedError) as write:
            reader.create_withdrawal(
                user_id=funded_user, amount="1", to_address=DESTINATION, network=sluice_dev.network
            )
        with pytest.raises(PermissionDeniedError) as admin:
            reader.list_hot_wallets()
    assert write.value.code == admin.value.code == "forbidden"
    assert "withdrawals:write" in write.value.detail


def test_a_signing_key_signs_every_request_and_its_token_alone_is_refused(
    sluice_dev: DevInstance, tmp_path: Path, funded_user: str
) -> None:
    key = SigningKey.generate()
    key.save(tmp_path / "caller.pem")
    public_file = tmp_path / "caller.pub"
    public_file.write_text(key.public_key_base64())
    token = sluice_dev.create_api_key(fresh("sdk-signed"), "--public-key", str(public_file))
    network = sluice_dev.network

    loaded = SigningKey.load(tmp_path / "caller.pem")
    with SluiceClient(sluice_dev.api_url, token, signing_key=loaded) as signed:
        created = signed.create_withdrawal(
            user_id=funded_user, amount="0.01", to_address=DESTINATION, network=network
        )
        # The same GET several times within a second: each gets a signature of its own.
        reads = [signed.get_withdrawal(created.id) for _ in range(3)]
        assert {r.id for r in reads} == {created.id}
        since = datetime.now(UTC) - timedelta(minutes=5)
        assert created.id in {w.id for w in signed.changes_since(since, user_id=funded_user)}

    # A leaked token, alone: refused.
    with SluiceClient(sluice_dev.api_url, token) as leaked:
        with pytest.raises(AuthenticationError) as unsigned:
            leaked.get_withdrawal(created.id)
        with pytest.raises(AuthenticationError) as unsigned_write:
            leaked.create_withdrawal(
                user_id=funded_user, amount="0.01", to_address=DESTINATION, network=network
            )
    assert unsigned.value.code == unsigned_write.value.code == "invalid_signature"
    # The token with a key of the thief's own: refused too.
    with (
        SluiceClient(sluice_dev.api_url, token, signing_key=SigningKey.generate()) as forged,
        pytest.raises(AuthenticationError) as wrong_key,
    ):
        forged.get_withdrawal(created.id)
    assert wrong_key.value.code == "invalid_signature"
    assert wrong_key.value.status == 401


async def test_the_async_client_signs_too(sluice_dev: DevInstance, funded_user: str) -> None:
    key = SigningKey.generate()
    token = sluice_dev.create_api_key(
        fresh("sdk-signed-async"), "--public-key", key.public_key_pem()
    )
    async with AsyncSluiceClient(sluice_dev.api_url, token, signing_key=key) as signed:
        created, balances = await asyncio.gather(
            signed.create_withdrawal(
                user_id=funded_user,
                amount="0.01",
                to_address=DESTINATION,
                network=sluice_dev.network,
            ),
            signed.get_user_balances(funded_user),
        )
        assert balances
        assert (await signed.get_withdrawal(created.id)).id == created.id


def test_the_sdk_waits_out_a_rate_limit(sluice_dev: DevInstance) -> None:
    token = sluice_dev.create_api_key(fresh("sdk-limited"), "--rate-limit", "1")

    def five_at_once(client: SluiceClient) -> None:
        for _ in range(5):
            client.list_withdrawals(limit=1)

    with (
        SluiceClient(sluice_dev.api_url, token, retries=0) as impatient,
        pytest.raises(RateLimitedError) as limited,
    ):
        five_at_once(impatient)
    assert limited.value.code == "rate_limited"
    assert limited.value.retry_after is not None
    assert limited.value.retry_after >= 1
    with SluiceClient(sluice_dev.api_url, token, retries=Retries(max_retries=3)) as patient:
        pages = [patient.list_withdrawals(limit=1) for _ in range(3)]
    assert len(pages) == 3


def test_no_server_is_a_transport_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port once the probe is closed.
    with (
        SluiceClient(
            f"http://127.0.0.1:{port}", "sluice_a_b", retries=Retries(backoff_s=0.01)
        ) as c,
        pytest.raises(TransportError) as caught,
    ):
        c.get_health()
    assert caught.value.status is None
    assert "ConnectError" in caught.value.detail
