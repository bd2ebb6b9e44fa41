"""Gas per withdrawal: single sends against BatchPayout batches, measured from receipts.

A benchmark, not a test. It starts its own Anvil (the pinned one, default hardfork), deploys the
DemoToken ERC-20 and the BatchPayout contract with Anvil's first default account, and sends:

- single withdrawals: a plain native transfer (21,000 gas) and an ERC-20 ``transfer``;
- batches of 10, 50, 100 and 200 withdrawals (``payNative``, ``payToken``);

each to recipients that are NEW (never seen: no balance, no account) and to recipients that
ALREADY hold the asset. Gas per withdrawal is the receipt's ``gasUsed`` over the number of
withdrawals in it (a single's figure is the mean of a few). Amounts are realistic: 0.01 ETH and
12.5 tokens of 18 decimals. The owner approves the batch contract once, for an unlimited
allowance (DemoToken then does not write it on each ``transferFrom``; a finite one costs about
100 gas more per payment and 2,900 more per batch). That is the intended set-up: only the owner
can make the contract move tokens, so the allowance is no one else's to spend.

Each batch row gives the ratio to the single withdrawal of the same asset and kind of recipient,
and the target where there is one (batches of 50 and more): ERC-20 to existing holders ≤ 0.30,
ERC-20 to new holders ≤ 0.55, native to existing accounts ≤ 0.60. Native to NEW accounts costs
more in a batch (a value call to an empty account pays 25,000 for creating it, which a plain
transaction does not): reported, with no target.

Usage: ``.venv/bin/python bench/gas.py [--json out.json] [--strict]``. Prints a Markdown table
(and a line on stderr per target missed); with ``--json``, writes the figures there too. With
``--strict`` it exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from eth_abi.abi import encode
from eth_account import Account

from sluice.devnet.anvil import DEV_ACCOUNTS, AnvilProcess
from sluice.devnet.artifacts import load_demo_token
from sluice.domain.batches import saves_gas
from sluice.testing.contracts import (
    ChainSender,
    TxReceipt,
    approve,
    deploy_batch_payout,
    mint,
    pay_native,
    pay_token,
    transfer,
)

ETHER: Final = 10**18
NATIVE_AMOUNT: Final = ETHER // 100  # 0.01 ETH
TOKEN_AMOUNT: Final = 12_500_000_000_000_000_000  # 12.5 tokens of 18 decimals
#: What an existing holder already has before the measured payment.
SEED_AMOUNT: Final = 1
BATCH_SIZES: Final = (10, 50, 100, 200)
SINGLES: Final = 5  # single withdrawals measured per asset and kind of recipient
TARGET_FROM: Final = 50  # targets apply to batches of at least this size
#: (asset, recipients) -> the largest ratio batch/single allowed.
TARGETS: Final = {("erc20", "existing"): 0.30, ("erc20", "new"): 0.55, ("native", "existing"): 0.60}


@dataclass(frozen=True, slots=True)
class Row:
    """One measurement: gas per withdrawal for one asset, kind of recipient and batch size."""

    asset: str  # "native" | "erc20"
    recipients: str  # "new" | "existing"
    size: int  # 1: single withdrawals (one transaction each)
    gas_used: int  # total over the transaction(s) measured
    per_withdrawal: float
    ratio: float  # per_withdrawal over the single's
    target: float | None
    met: bool | None
    batcher: float = 1.0
    """The ratio with the batcher deciding (`decided`): the batch's, or 1.0 for singles."""


def _fresh(count: int) -> list[str]:
    return [Account.create().address for _ in range(count)]


def _ok(receipt: TxReceipt, what: str) -> TxReceipt:
    if not receipt.succeeded:
        raise RuntimeError(f"{what} reverted ({receipt.transaction_hash})")
    return receipt


class Bench:
    """The chain, the contracts, and how to pay on it."""

    def __init__(self, sender: ChainSender) -> None:
        self.sender = sender
        token_args = encode(
            ["string", "string", "uint8", "uint256"], ["Bench Token", "BENCH", 18, 0]
        )
        self.token = sender.deploy(load_demo_token(), token_args)
        self.batch = deploy_batch_payout(sender)
        total = sum(BATCH_SIZES) * 2 * TOKEN_AMOUNT + SINGLES * 2 * TOKEN_AMOUNT
        mint(sender, self.token, sender.address, 10 * total)
        approve(sender, self.token, self.batch, 2**256 - 1)

    def recipients(self, asset: str, kind: str, count: int) -> list[str]:
        """``count`` new addresses; for ``existing``, seeded with the asset first (unmeasured)."""
        addresses = _fresh(count)
        if kind == "existing":
            amounts = [SEED_AMOUNT] * count
            if asset == "native":
                _ok(pay_native(self.sender, self.batch, addresses, amounts), "seeding")
            else:
                _ok(pay_token(self.sender, self.batch, self.token, addresses, amounts), "seeding")
        return addresses

    def single(self, asset: str, to: str) -> TxReceipt:
        if asset == "native":
            return _ok(self.sender.send(to, value=NATIVE_AMOUNT), "native send")
        return _ok(transfer(self.sender, self.token, to, TOKEN_AMOUNT), "ERC-20 transfer")

    def batched(self, asset: str, to: Sequence[str]) -> TxReceipt:
        if asset == "native":
            receipt = pay_native(self.sender, self.batch, to, [NATIVE_AMOUNT] * len(to))
        else:
            receipt = pay_token(self.sender, self.batch, self.token, to, [TOKEN_AMOUNT] * len(to))
        return _ok(receipt, f"{asset} batch of {len(to)}")


def decided(asset: str, kind: str, size: int, gas_used: int, single: float) -> float:
    """The ratio to a single's gas when the batcher decides, by its rules
    (`sluice.services.batcher`): the coin to new accounts goes alone; otherwise a batch is sent
    only if it uses less gas than the single transactions (`saves_gas`, here with the gas the
    batch used for its estimate and the measured single's for each)."""
    if size == 1 or (asset == "native" and kind == "new"):
        return 1.0
    if not saves_gas(gas_used, [round(single)] * size):
        return 1.0
    return gas_used / size / single


def measure(bench: Bench) -> list[Row]:
    """Every row: singles first (the ratios' base), then each batch size."""
    rows: list[Row] = []
    for asset in ("erc20", "native"):
        for kind in ("existing", "new"):
            singles = [bench.single(asset, to) for to in bench.recipients(asset, kind, SINGLES)]
            single_gas = sum(receipt.gas_used for receipt in singles)
            single = single_gas / SINGLES
            rows.append(Row(asset, kind, 1, single_gas, single, 1.0, None, None))
            for size in BATCH_SIZES:
                receipt = bench.batched(asset, bench.recipients(asset, kind, size))
                per = receipt.gas_used / size
                target = TARGETS.get((asset, kind)) if size >= TARGET_FROM else None
                met = None if target is None else per / single <= target
                with_batcher = decided(asset, kind, size, receipt.gas_used, single)
                rows.append(
                    Row(
                        asset,
                        kind,
                        size,
                        receipt.gas_used,
                        per,
                        per / single,
                        target,
                        met,
                        with_batcher,
                    )
                )
    return rows


def markdown(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| asset | recipients | per tx | gas per withdrawal | ratio to single | target | met "
        "| with the batcher deciding |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for row in rows:
        size = "1 (single)" if row.size == 1 else str(row.size)
        target = "" if row.target is None else f"≤ {row.target:.2f}"
        met = "" if row.met is None else ("yes" if row.met else "**no**")
        lines.append(
            f"| {row.asset} | {row.recipients} | {size} | {row.per_withdrawal:,.0f} |"
            f" {row.ratio:.3f} | {target} | {met} | {row.batcher:.3f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)

    with AnvilProcess() as anvil, ChainSender(anvil.rpc_url, DEV_ACCOUNTS[0].private_key) as sender:
        client = sender.rpc("web3_clientVersion", [])
        rows = measure(Bench(sender))

    print(markdown(rows))
    missed = [row for row in rows if row.met is False or row.batcher > 1.0]
    for row in missed:
        print(
            f"target missed: {row.asset} to {row.recipients} holders, batch of {row.size}:"
            f" {row.ratio:.3f} of a single's gas > {row.target}",
            file=sys.stderr,
        )
    if args.json is not None:
        document = {
            "node": client,
            "native_amount_wei": NATIVE_AMOUNT,
            "token_amount": TOKEN_AMOUNT,
            "token_allowance": "unlimited",
            "rows": [asdict(row) for row in rows],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
