"""Batch payouts: which withdrawals ready to be signed share one transaction, and what the chain
says that transaction needs (docs/batching.md).

Grouping. Withdrawals of one asset on one network that wait to be signed form a group, oldest
first, up to the network's ``max_size``. The job of the group's oldest withdrawal forms the batch
once the group is full or its oldest has waited ``window_s`` since it became ready to be signed;
while the group is full, any member's job (or a newcomer's beyond it) forms it; any other job
waits, and takes over if the oldest's job has not acted a window later (its job may be lost or
slow). Only one job of a process plans a group at a time. A withdrawal asking for the ``fast``
level, one marked `Withdrawal.unbatched`, or a network without batch contracts is paid on its
own at once.

Planning (`Batcher.plan`, chain reads only, no lock):

1. The coin to an account that does not exist yet (no balance, no nonce, no code) costs more
   inside a batch (25,000 gas for the new account plus the value transfer) than as its own
   21,000-gas transaction: such withdrawals leave the group and are paid on their own.
2. The batch is simulated (``eth_estimateGas`` at the ``pending`` block) from the
   wallet that will sign it. A ``PaymentFailed(i)`` revert names the payment at fault; if that
   payment also reverts when estimated alone, its withdrawal fails ``destination_reverts`` and
   the rest are simulated again; if alone it would not revert, the batch as such is at fault and
   every member is paid on its own.
3. A batch whose gas limit would pass EIP-7825's cap keeps its older half.
4. A batch that would use no less gas than single transactions is not sent: its members are
   paid on their own.

What is decided here is applied by `SigningService.record` under the withdrawals' locks.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from sluice.domain.addresses import Address
from sluice.domain.assets import Asset
from sluice.domain.batches import MAX_TRANSACTION_GAS, batch_payload, failed_index, saves_gas
from sluice.domain.fees import FeeLevel, Fees
from sluice.domain.transaction import NATIVE_TRANSFER_GAS, Payload, transfer_payload
from sluice.domain.withdrawal import Withdrawal
from sluice.errors import CallRevertedError
from sluice.ports import ChainClient, InFlight, Signer, UnitOfWork
from sluice.services.holdings import cannot_hold, l1_fee, underfunded
from sluice.services.registry import NetworkEntry

log = structlog.get_logger(__name__)

#: Head-room on a batch's estimated gas (the same as a single payout's).
GAS_MARGIN_PERCENT = 20

#: Payments taken out of one batch for reverting before the rest are paid on their own.
MAX_REMOVALS = 8

#: Recipients looked up at once when deciding which accounts exist.
LOOKUPS_AT_ONCE = 16

#: Accounts remembered as existing (an account, once it exists, exists for good).
KNOWN_ACCOUNTS = 100_000

#: How long one job's turn at planning a group lasts at most, if it never says it is done.
PLANNING_LEASE_S = 30.0


@dataclass(frozen=True, slots=True)
class Group:
    """What a sign job found: the withdrawals to plan together now, or how long to wait."""

    withdrawals: tuple[Withdrawal, ...]
    wait_s: float | None = None
    planning: tuple[str, str] | None = None
    """Set when this job plans the group: (network, asset key), released when it is done."""


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """A planned batch, and what becomes of the group's members it does not carry."""

    carried: tuple[Withdrawal, ...] = ()
    """The withdrawals the batch pays, in acceptance order (empty: no batch)."""
    payload: Payload | None = None
    gas: int = 0
    wallet: Signer | None = None
    unbatch: tuple[tuple[str, str], ...] = ()
    """(withdrawal id, why): paid on their own from now on."""
    reverting: tuple[tuple[str, str], ...] = ()
    """(withdrawal id, why): paying them reverts; they fail ``destination_reverts``."""
    waiting_reason: str | None = None
    """Why no wallet can take the batch now (it waits, like a single payout)."""


def batchable(entry: NetworkEntry, withdrawal: Withdrawal) -> bool:
    """Whether ``withdrawal`` may share a transaction on its network."""
    batching = entry.network.batching
    return (
        batching.on
        and not withdrawal.unbatched
        and withdrawal.priority is not FeeLevel.FAST
        and any(batching.contract_of(s.address) is not None for s in entry.accepting)
    )


class Batcher:
    """Groups withdrawals and plans batches from what the chain says (see the module's
    description). One per process: it remembers which groups this process is planning."""

    def __init__(self) -> None:
        self._existing: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._planning: dict[tuple[str, str], float] = {}

    async def group(
        self, uow: UnitOfWork, entry: NetworkEntry, withdrawal: Withdrawal, now: datetime
    ) -> Group:
        """The group ``withdrawal`` belongs to, if its job is the one to plan it now.

        It is: the oldest's job, once the group is full or the oldest's window has passed; any
        member's job while the group is full or once the oldest's job is a window late; and a
        newcomer's beyond a full group (which plans that group: it joins the next). Only one job
        of this process plans a group at a time (`release` ends its turn)."""
        batching = entry.network.batching
        queue = await uow.withdrawals.batch_queue(
            withdrawal.network, withdrawal.asset_key, limit=batching.max_size
        )
        if not queue:  # moved on meanwhile
            return Group(withdrawals=(withdrawal,))
        window = timedelta(seconds=batching.window_s)
        oldest, opened = queue[0]
        deadline = opened + window
        full = len(queue) >= batching.max_size
        member = any(wid == withdrawal.id for wid, _ in queue)
        if oldest == withdrawal.id:
            due = full or now >= deadline
        else:
            due = full or (member and now >= deadline + window)
        if not due:
            wake = deadline if oldest == withdrawal.id else deadline + window
            return Group(withdrawals=(withdrawal,), wait_s=max((wake - now).total_seconds(), 0.05))
        key = (withdrawal.network, withdrawal.asset_key)
        started = self._planning.get(key)
        if started is not None and time.monotonic() - started < PLANNING_LEASE_S:
            # Being planned here. A member is most likely in that batch: its job looks again a
            # window later (then finds it signed), not every moment while the batch is planned.
            return Group(withdrawals=(withdrawal,), wait_s=batching.window_s if member else 0.2)
        members = await uow.withdrawals.get_many([wid for wid, _ in queue])
        self._planning[key] = time.monotonic()
        return Group(withdrawals=tuple(members), planning=key)

    def release(self, key: tuple[str, str] | None) -> None:
        """The job that planned group ``key`` is done with it (signed, or gave up)."""
        if key is not None:
            self._planning.pop(key, None)

    async def plan(
        self,
        entry: NetworkEntry,
        members: tuple[Withdrawal, ...],
        in_flight: Mapping[Address, InFlight],
        fees: Fees,
    ) -> BatchPlan:
        """Plan one batch of ``members`` (one asset of one network).

        Raises:
            ChainUnavailableError: The node did not answer (the worker retries).
        """
        network = entry.network
        asset = network.asset_by_key(members[0].asset_key)
        ordered = sorted(members, key=lambda w: w.seq or 0)
        unbatch: list[tuple[str, str]] = []
        if asset.is_native:
            exists = await self._exist(entry, [w.to_address for w in ordered])
            for withdrawal, there in zip(ordered, exists, strict=True):
                if not there:
                    unbatch.append(
                        (
                            withdrawal.id,
                            f"paid on its own: its destination {withdrawal.to_address} is a new "
                            "account, which costs less gas outside a batch",
                        )
                    )
            new = {i for i, _ in unbatch}
            ordered = [w for w in ordered if w.id not in new]
        if len(ordered) < 2:
            return self._alone(ordered, unbatch, "paid on its own: no other withdrawal to share")
        reasons: list[str] = []
        wallets = sorted(entry.accepting, key=lambda s: in_flight[s.address].count)
        for signer in wallets:
            contract = network.batching.contract_of(signer.address)
            if contract is None:
                continue
            plan = await self._plan_for(
                entry,
                signer=signer,
                contract=contract,
                asset=asset,
                ordered=ordered,
                flight=in_flight[signer.address],
                fees=fees,
                unbatch=unbatch,
            )
            if plan.waiting_reason is None:
                return plan
            reasons.append(plan.waiting_reason)
        return BatchPlan(unbatch=tuple(unbatch), waiting_reason="; ".join(reasons) or "no wallet")

    async def _plan_for(
        self,
        entry: NetworkEntry,
        *,
        signer: Signer,
        contract: Address,
        asset: Asset,
        ordered: list[Withdrawal],
        flight: InFlight,
        fees: Fees,
        unbatch: list[tuple[str, str]],
    ) -> BatchPlan:
        """The batch ``signer`` would send, or why it cannot now."""
        token = asset.token_address
        total = sum(w.amount for w in ordered)
        reason = await cannot_hold(
            entry,
            signer=signer,
            asset=asset,
            payload=_payload(contract, token, ordered),
            tokens=total if token else 0,
            flight=flight,
            estimating=True,
        )
        if reason is not None:
            return BatchPlan(unbatch=tuple(unbatch), waiting_reason=reason)
        if token is not None:
            allowed = await entry.chain.token_allowance(token, signer.address, contract)
            if allowed < total:
                log.warning(
                    "batch contract may not move the hot wallet's token: paying one by one",
                    network=entry.network.name,
                    contract=contract,
                    token=asset.symbol,
                    allowance=allowed,
                )
                why = (
                    f"paid on its own: batch contract {contract} is not approved for "
                    f"{asset.symbol} (run `sluice contracts deploy`)"
                )
                return self._alone(ordered, unbatch, why)
        simulated = await _simulate(entry, signer, contract, asset, ordered)
        if simulated.why is not None:
            return self._alone(simulated.carried, unbatch, simulated.why, simulated.reverting)
        carried, estimate = simulated.carried, simulated.estimate
        payload = _payload(contract, token, carried)
        singles = await _single_gas(entry.chain, signer, asset, carried)
        if not saves_gas(estimate, singles):
            why = (
                f"paid on its own: a batch of {len(carried)} would use {estimate} gas, "
                f"single transactions {sum(singles)}"
            )
            return self._alone(carried, unbatch, why, simulated.reverting)
        gas = _with_margin(estimate)
        needed = flight.native + payload.value + fees.max_cost(gas) + await l1_fee(entry, payload)
        native = await entry.chain.balance(signer.address)
        if native < needed:
            return BatchPlan(
                unbatch=tuple(unbatch),
                reverting=simulated.reverting,
                waiting_reason=underfunded(signer, native, needed),
            )
        return BatchPlan(
            carried=tuple(carried),
            payload=payload,
            gas=gas,
            wallet=signer,
            unbatch=tuple(unbatch),
            reverting=simulated.reverting,
        )

    @staticmethod
    def _alone(
        withdrawals: list[Withdrawal],
        unbatch: list[tuple[str, str]],
        why: str,
        reverting: Sequence[tuple[str, str]] = (),
    ) -> BatchPlan:
        """No batch: ``withdrawals`` are paid on their own too."""
        return BatchPlan(
            unbatch=(*unbatch, *((w.id, why) for w in withdrawals)),
            reverting=tuple(reverting),
        )

    async def _exist(self, entry: NetworkEntry, addresses: list[Address]) -> list[bool]:
        """Whether each address is an existing account (a balance, a nonce or code)."""
        limit = asyncio.Semaphore(LOOKUPS_AT_ONCE)
        network = entry.network.name

        async def exists(address: Address) -> bool:
            key = (network, address.lower())
            if key in self._existing:
                return True
            async with limit:
                there = (
                    await entry.chain.balance(address) > 0
                    or await entry.chain.transaction_count(address) > 0
                    or await entry.chain.code_size(address) > 0
                )
            if there:
                self._existing[key] = None
                while len(self._existing) > KNOWN_ACCOUNTS:
                    self._existing.popitem(last=False)
            return there

        unique = list(dict.fromkeys(addresses))
        found = dict(zip(unique, await asyncio.gather(*(exists(a) for a in unique)), strict=True))
        return [found[a] for a in addresses]


@dataclass(frozen=True, slots=True)
class _Simulated:
    carried: list[Withdrawal]
    """What is left to batch (all of it is paid on its own when ``why`` is set)."""
    estimate: int = 0
    reverting: tuple[tuple[str, str], ...] = ()
    why: str | None = None
    """Set when no batch is sent: why its members are paid on their own."""


async def _simulate(
    entry: NetworkEntry,
    signer: Signer,
    contract: Address,
    asset: Asset,
    ordered: list[Withdrawal],
) -> _Simulated:
    """Estimate the batch, taking out each payment that makes it revert (and reverts alone
    too) and halving it while its gas would pass the cap."""
    carried = list(ordered)
    reverting: list[tuple[str, str]] = []
    while len(carried) >= 2:
        payload = _payload(contract, asset.token_address, carried)
        try:
            estimate = await entry.chain.estimate_gas(
                signer.address, contract, payload.value, payload.data
            )
        except CallRevertedError as exc:
            index = failed_index(exc.data)
            culprit = carried[index] if index is not None and index < len(carried) else None
            alone = None
            if culprit is not None and len(reverting) < MAX_REMOVALS:
                alone = await _reverts_alone(entry.chain, signer, asset, culprit)
            if culprit is None or alone is None:
                log.warning(
                    "a batch reverts in simulation for no single payment: paying one by one",
                    network=entry.network.name,
                    size=len(carried),
                    detail=str(exc),
                )
                why = f"paid on its own: the batch reverts in simulation ({exc})"
                return _Simulated(carried, reverting=tuple(reverting), why=why)
            reverting.append((culprit.id, alone))
            carried.remove(culprit)
            continue
        if _with_margin(estimate) > MAX_TRANSACTION_GAS:
            carried = carried[: len(carried) // 2]  # the rest go in a later batch
            continue
        return _Simulated(carried, estimate=estimate, reverting=tuple(reverting))
    return _Simulated(carried, reverting=tuple(reverting), why="paid on its own")


def _with_margin(estimate: int) -> int:
    return estimate + estimate * GAS_MARGIN_PERCENT // 100


def _payload(contract: Address, token: Address | None, withdrawals: list[Withdrawal]) -> Payload:
    return batch_payload(contract, token, [(w.to_address, w.amount) for w in withdrawals])


async def _reverts_alone(
    chain: ChainClient, signer: Signer, asset: Asset, withdrawal: Withdrawal
) -> str | None:
    """Why paying ``withdrawal`` on its own reverts, or None if it does not."""
    single = transfer_payload(asset, withdrawal.to_address, withdrawal.amount)
    try:
        await chain.estimate_gas(signer.address, single.to, single.value, single.data)
    except CallRevertedError as exc:
        return str(exc)
    return None


async def _single_gas(
    chain: ChainClient, signer: Signer, asset: Asset, withdrawals: list[Withdrawal]
) -> list[int]:
    """What paying each on its own would use, at least: 21,000 gas for the coin; for a token,
    the estimate of the first one's transfer, for each."""
    if asset.token_address is None:
        return [NATIVE_TRANSFER_GAS] * len(withdrawals)
    first = withdrawals[0]
    single = transfer_payload(asset, first.to_address, first.amount)
    gas = await chain.estimate_gas(signer.address, single.to, single.value, single.data)
    return [gas] * len(withdrawals)
