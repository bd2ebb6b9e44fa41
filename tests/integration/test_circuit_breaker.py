"""The circuit breaker and network pauses through the real services and database, against
`FakeChain` (docs/circuit-breaker.md): a breaker trips at its limit and pauses only its network,
the withdrawals it holds wait with a reason, an audit entry records the trip, a resume lets them
go; an operator's pause and freeze hold new payouts but not what is signed; and on PostgreSQL,
racing signers of one network never push its window past the limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest
from eth_utils.address import to_checksum_address
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.bootstrap import build_services
from sluice.domain.addresses import Address
from sluice.domain.assets import NATIVE, Asset
from sluice.domain.audit import Actor, AuditEntry, AuditFilter
from sluice.domain.pauses import CircuitBreaker, PauseKind
from sluice.domain.withdrawal import WithdrawalStatus
from sluice.errors import InvalidRequestError, UnknownNetworkError
from sluice.services import jobs
from sluice.services.pauses import PAUSE_RETRY_S
from sluice.services.registry import NetworkEntry, NetworkRegistry
from sluice.services.withdrawals import WithdrawalRequest
from sluice.testing.databases import selected_backend
from sluice.testing.fakes import FakeChain, FakeClock, LocalSigner
from sluice.testing.pipeline import (
    CHAIN_ID,
    DEST,
    ETH,
    HOT_KEY,
    NET,
    TOKEN,
    CountingSigner,
    Pipeline,
    wire,
)

W = WithdrawalStatus
#: A second network, its own chain and hot wallet (Anvil's third development key).
OTHER = "othernet"
OTHER_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
#: A second hot wallet of `NET` (Anvil's fifth development key), for racing signers.
SECOND_KEY = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a"
WINDOW_S = 3600
ADMIN = Actor("operator", "op_admin", api_key_id="key_admin", address="10.0.0.7")


def breaker(eth: int = 5, tkn: int | None = None) -> CircuitBreaker:
    """A one-hour breaker: ``eth`` ETH on `NET` (and ``tkn`` TKN, if given)."""
    limits = {NATIVE: eth * ETH}
    if tkn is not None:
        limits[TOKEN.lower()] = tkn * 10**6
    return CircuitBreaker(window_s=WINDOW_S, limits=limits)


async def _pipeline(
    engine: AsyncEngine,
    limits: CircuitBreaker | None,
    *,
    second_wallet: bool = False,
    **options: object,
) -> Pipeline:
    """`wire`'s pipeline for `NET` (with ``limits`` as its breaker), plus `OTHER`, a network of
    its own chain and wallet with no breaker, wired by the same `build_services`."""
    more = (LocalSigner(SECOND_KEY),) if second_wallet else ()
    p = wire(
        engine,
        FakeChain(chain_id=CHAIN_ID),
        CountingSigner(LocalSigner(HOT_KEY)),
        FakeClock(),
        more_signers=more,
        **options,  # type: ignore[arg-type]  # keyword options of `wire`, passed through
    )
    entry = p.registry.get(NET)
    entry.network = p.network = replace(entry.network, circuit_breaker=limits)
    other_signer = LocalSigner(OTHER_KEY)
    other_chain = FakeChain(chain_id=CHAIN_ID + 1)
    other_chain.balances[other_signer.address] = 1000 * ETH
    other = NetworkEntry(
        network=replace(
            entry.network,
            name=OTHER,
            chain_id=CHAIN_ID + 1,
            native=Asset(OTHER, "ETH", 18),
            tokens=(),
            hot_wallets=(other_signer.address,),
            circuit_breaker=None,
        ),
        chain=other_chain,
        signers=(other_signer,),
    )
    registry = NetworkRegistry({NET: entry, OTHER: other})
    p = replace(p, registry=registry, services=build_services(p.uow, registry, p.clock))
    async with p.uow() as uow:
        for signer in entry.signers:
            await uow.transactions.reconcile_nonce(NET, signer.address, 0)
        await uow.transactions.reconcile_nonce(OTHER, other_signer.address, 0)
        await uow.commit()
    return p


@pytest.fixture
async def pipeline(engine: AsyncEngine) -> AsyncIterator[Pipeline]:
    p = await _pipeline(engine, breaker())
    try:
        yield p
    finally:
        await p.queue.close()


async def validated(p: Pipeline, *amounts: str, token: bool = False) -> list[str]:
    """Withdrawals of ``amounts`` on `NET`, validated: they wait to be signed, in this order."""
    await p.credit("alice", "1000", token=token)
    ids = [await p.submit("alice", amount, token=token) for amount in amounts]
    for wid in ids:
        await p.validate(wid)
    return ids


async def on_other(p: Pipeline, amount: str) -> str:
    """A withdrawal on `OTHER`, validated."""
    async with p.uow() as uow:
        await p.ledger.credit(
            uow,
            user_id="olga",
            network=OTHER,
            token_address=None,
            amount="1000",
            reference=f"other-{amount}-{p.clock.now().timestamp()}",
        )
        withdrawal, _ = await p.withdrawals.submit(
            uow, WithdrawalRequest(user_id="olga", amount=amount, to_address=DEST, network=OTHER)
        )
        await uow.commit()
    await p.validate(withdrawal.id)
    return withdrawal.id


async def audit(p: Pipeline, action: str) -> list[AuditEntry]:
    async with p.uow() as uow:
        return await uow.audit.page(AuditFilter(action=action), limit=100)


async def pause(p: Pipeline, network: str | None, reason: str = "incident 42") -> None:
    async with p.uow() as uow:
        await p.services.pauses.pause(uow, network, reason=reason, actor=ADMIN)
        await uow.commit()


async def resume(p: Pipeline, network: str | None) -> None:
    async with p.uow() as uow:
        await p.services.pauses.resume(uow, network, actor=ADMIN, reason="checked")
        await uow.commit()


def trips(network: str) -> float:
    value = REGISTRY.get_sample_value("sluice_circuit_breaker_trips_total", {"network": network})
    return value or 0.0


def paused_gauge(network: str) -> float | None:
    return REGISTRY.get_sample_value("sluice_network_paused", {"network": network})


# ── Tripping ─────────────────────────────────────────────────────────────────────────────────


async def test_outflow_exactly_at_the_limit_is_signed_and_one_base_unit_more_trips(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    before = trips(NET)
    first, at_limit, one_more = await validated(p, "4", "1", "0.000000000000000001")

    assert await p.sign(first) is None
    assert await p.sign(at_limit) is None, "4 + 1 ETH reaches the 5 ETH limit exactly: signed"
    assert await p.status(at_limit) is W.SIGNED

    wait = await p.sign(one_more)

    assert wait == PAUSE_RETRY_S
    held = await p.get(one_more)
    assert held.status is W.VALIDATING
    assert held.transaction_id is None
    assert (held.waiting_reason or "").startswith("circuit_breaker: outflow of")
    assert "5.000000000000000001 ETH on fakenet within 1h would pass its limit of 5 ETH" in (
        held.waiting_reason or ""
    )
    assert len(p.signer.signed) == 2, "the payout over the limit took no nonce"
    assert trips(NET) == before + 1
    assert paused_gauge(NET) == 1
    [entry] = await audit(p, "network.circuit_breaker_tripped")
    assert entry.record.actor.label == "system:sluice"
    assert entry.record.subject == f"network:{NET}"
    assert entry.record.before is not None
    assert entry.record.before["paused"] is None
    assert entry.record.after is not None
    assert entry.record.after["paused"]["kind"] == "circuit_breaker"
    assert entry.record.detail is not None
    assert entry.record.detail["limit"] == "5"
    assert entry.record.detail["outflow"] == "5"
    assert entry.record.detail["amount"] == "0.000000000000000001"
    # The first signing round had no waiting withdrawal (None above); the held one said so once.
    assert [e.reason for e in await p.events(one_more)][-1].startswith("waiting: circuit_breaker")


async def test_a_tripped_breaker_pauses_only_its_network(pipeline: Pipeline) -> None:
    p = pipeline
    big, small = await validated(p, "5", "0.1")
    await p.sign(big)
    assert await p.sign(small) == PAUSE_RETRY_S, "5.1 ETH would pass 5: tripped"

    elsewhere = await on_other(p, "50")

    assert await p.sign(elsewhere) is None
    assert await p.status(elsewhere) is W.SIGNED, "the other network keeps paying"
    async with p.uow() as uow:
        states = await p.services.pauses.states(uow)
    own = states[NET].pause
    assert own is not None
    assert own.kind is PauseKind.CIRCUIT_BREAKER
    assert states[OTHER].pause is None
    assert states["*"].pause is None


async def test_a_paused_network_holds_every_new_payout_even_those_under_the_limit(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    big, small, tiny = await validated(p, "5", "0.1", "0.01")
    await p.sign(big)
    await p.sign(small)  # trips

    assert await p.sign(tiny) == PAUSE_RETRY_S
    assert (await p.get(tiny)).waiting_reason is not None
    assert (await p.get(tiny)).status is W.VALIDATING
    assert len(p.signer.signed) == 1
    assert len(await audit(p, "network.circuit_breaker_tripped")) == 1, "tripped once"


async def test_payouts_outside_the_window_and_failed_ones_do_not_count(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    reverted, early = await validated(p, "0.5", "4")
    await p.sign(reverted)
    await p.sign(early)
    await p.broadcast(reverted)
    _, attempts = await p.transaction(reverted)
    p.chain.mine(attempts[-1].hash, succeeded=False)
    assert await p.confirm(reverted) is None
    assert await p.status(reverted) is W.FAILED, "it paid nothing: its outflow no longer counts"
    p.clock.advance(timedelta(seconds=WINDOW_S - 1))
    (inside,) = await validated(p, "1")
    assert await p.sign(inside) is None, "4 (+ 0.5 that failed) + 1 reaches 5 at most"

    (later,) = await validated(p, "4.5")
    assert await p.sign(later) == PAUSE_RETRY_S, "4 + 1 + 4.5 within the window: tripped"
    await resume(p, NET)
    p.clock.advance(2)  # the first 4 ETH leave the window; the resume started a fresh one too

    assert await p.sign(later) is None


async def test_each_asset_has_its_own_limit(engine: AsyncEngine) -> None:
    p = await _pipeline(engine, breaker(eth=1, tkn=100))
    try:
        (coin,) = await validated(p, "1")
        tokens = await validated(p, "60", "40", token=True)
        for wid in (coin, *tokens):
            assert await p.sign(wid) is None, "each asset within its own limit"
        (extra,) = await validated(p, "0.000001", token=True)
        assert await p.sign(extra) == PAUSE_RETRY_S
        assert "100.000001 TKN" in ((await p.get(extra)).waiting_reason or "")
    finally:
        await p.queue.close()


async def test_a_network_without_a_breaker_never_trips(engine: AsyncEngine) -> None:
    p = await _pipeline(engine, None)
    try:
        ids = await validated(p, "400", "400")
        for wid in ids:
            assert await p.sign(wid) is None
        assert len(p.signer.signed) == 2
    finally:
        await p.queue.close()


# ── Resuming ─────────────────────────────────────────────────────────────────────────────────


async def test_resume_lets_the_held_withdrawals_go_and_starts_a_fresh_window(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    first, held = await validated(p, "5", "1")
    await p.sign(first)
    assert await p.sign(held) == PAUSE_RETRY_S
    p.queue.published.clear()

    await resume(p, NET)

    woken = [b["withdrawalId"] for job, b, *_ in p.queue.published if job == jobs.SIGN]
    assert woken == [held], "the resume wakes what the pause held"
    p.clock.advance(1)  # a fake clock stands still: sign after the resume, as a real one would
    assert await p.sign(held) is None, "a fresh window: the 5 ETH before the resume do not count"
    withdrawal = await p.get(held)
    assert withdrawal.status is W.SIGNED
    assert withdrawal.waiting_reason is None
    [entry] = await audit(p, "network.resumed")
    assert entry.record.actor == ADMIN
    assert entry.record.before is not None
    assert entry.record.before["paused"]["kind"] == "circuit_breaker"
    assert entry.record.after is not None
    assert entry.record.after["paused"] is None
    assert entry.record.after["resumedBy"] == "operator:op_admin"
    assert paused_gauge(NET) == 0
    (again,) = await validated(p, "4.5")
    assert await p.sign(again) == PAUSE_RETRY_S, "1 + 4.5 since the resume: tripped again"


async def test_resuming_a_network_that_runs_changes_nothing_and_logs_nothing(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    await resume(p, NET)
    assert await audit(p, "network.resumed") == []


# ── Pausing by hand ──────────────────────────────────────────────────────────────────────────


async def test_an_operators_pause_holds_new_payouts_of_its_network_only(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    (wid,) = await validated(p, "0.1")
    elsewhere = await on_other(p, "1")

    await pause(p, NET)
    await pause(p, NET, "said twice")  # already paused: unchanged

    assert await p.sign(wid) == PAUSE_RETRY_S
    assert (await p.get(wid)).waiting_reason == (
        f"paused: network {NET} is paused by operator:op_admin: incident 42"
    )
    assert await p.sign(elsewhere) is None
    [entry] = await audit(p, "network.paused")
    assert entry.record.actor == ADMIN
    assert entry.record.detail == {"reason": "incident 42"}

    await resume(p, NET)
    assert await p.sign(wid) is None


async def test_a_freeze_holds_every_network_until_it_is_lifted(pipeline: Pipeline) -> None:
    p = pipeline
    (wid,) = await validated(p, "0.1")
    elsewhere = await on_other(p, "1")

    await pause(p, None, "runbook: freeze")

    for held in (wid, elsewhere):
        assert await p.sign(held) == PAUSE_RETRY_S
        assert (await p.get(held)).waiting_reason == (
            "paused: every network is frozen by operator:op_admin: runbook: freeze"
        )
    [entry] = await audit(p, "network.paused")
    assert entry.record.subject == "network:*"

    await resume(p, None)
    for wid_ in (wid, elsewhere):
        assert await p.sign(wid_) is None


async def test_lifting_the_freeze_leaves_a_networks_own_pause_in_force(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    (wid,) = await validated(p, "0.1")
    await pause(p, NET, "its own")
    await pause(p, None, "everything")

    assert await p.sign(wid) == PAUSE_RETRY_S
    assert "every network is frozen" in ((await p.get(wid)).waiting_reason or "")

    await resume(p, None)

    assert await p.sign(wid) == PAUSE_RETRY_S
    assert "its own" in ((await p.get(wid)).waiting_reason or ""), "the reason follows the pause"


async def test_a_pause_does_not_stop_what_is_already_signed(pipeline: Pipeline) -> None:
    p = pipeline
    (wid,) = await validated(p, "0.1")
    await p.sign(wid)
    await pause(p, None)

    await p.broadcast(wid)
    _, attempts = await p.transaction(wid)
    p.chain.mine(attempts[-1].hash)
    assert await p.confirm(wid) is None

    assert await p.status(wid) is W.COMPLETED


async def test_a_pause_needs_a_reason_and_a_served_network(pipeline: Pipeline) -> None:
    p = pipeline
    with pytest.raises(InvalidRequestError) as missing:
        await pause(p, NET, "  ")
    assert missing.value.field == "reason"
    with pytest.raises(UnknownNetworkError):
        await pause(p, "nowhere")


# ── Batches ──────────────────────────────────────────────────────────────────────────────────


async def test_a_batch_that_would_pass_the_limit_trips_and_waits_whole(
    engine: AsyncEngine,
) -> None:
    p = await _pipeline(engine, breaker(eth=3), batch_window_s=5.0)
    try:
        await p.credit("alice", "100")
        ids = []
        for n in range(4):
            to = Address(to_checksum_address(f"0x{0xBEEF0000 + n:040x}"))
            p.chain.exist(to)  # existing accounts: batched, not paid alone
            ids.append(await p.submit("alice", "1", to=to))
        for wid in ids:
            await p.validate(wid)
        p.clock.advance(5.0)

        assert await p.sign(ids[0]) == PAUSE_RETRY_S, "4 ETH in one batch would pass 3"

        assert p.signer.signed == []
        for wid in ids:
            withdrawal = await p.get(wid)
            assert withdrawal.status is W.VALIDATING
            assert (withdrawal.waiting_reason or "").startswith("circuit_breaker:")
    finally:
        await p.queue.close()


# ── Racing signers ───────────────────────────────────────────────────────────────────────────


@pytest.mark.skipif(selected_backend() != "postgresql", reason="row locks race only on PostgreSQL")
async def test_racing_signers_on_one_network_never_pass_its_limit(engine: AsyncEngine) -> None:
    # Two hot wallets, so the signers do not take turns on one nonce counter: only the
    # network's row serializes them.
    p = await _pipeline(engine, breaker(eth=5), second_wallet=True, max_in_flight=1000)
    try:
        ids = await validated(p, *["1"] * 12)

        await asyncio.gather(*(p.sign(wid) for wid in ids))

        signed = [w for w in [await p.get(wid) for wid in ids] if w.status is W.SIGNED]
        assert sum(w.amount for w in signed) == 5 * ETH, "exactly the limit, never more"
        assert len(await audit(p, "network.circuit_breaker_tripped")) == 1
    finally:
        await p.queue.close()
