"""The batched pipeline's set-up and figures, for `bench/run.py` (the ``batched`` phase).

Set-up, on the bench's Anvil before any Sluice starts: the hot wallet deploys its own
``BatchPayout`` and approves it for the demo token (as ``sluice contracts deploy`` would), and a
fixed set of recipients is made to exist (a balance of 1 wei each, set with the node's test
method), because the batcher pays the coin to a new account on its own (docs/batching.md): with
wrk's usual fresh random recipient nothing would be batched. wrk then draws every recipient from
that set (``bench/withdrawals.lua``'s fifth argument, a file of addresses).

Figures, from the run's database: the distinct transactions that paid the withdrawals, the
largest batch, and the time from a withdrawal's ``created_at`` to its first ``BROADCASTING``
event.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import HTTPProvider, Web3

from sluice.devnet import setup
from sluice.domain.addresses import Address
from sluice.testing.contracts import ChainSender, approve, deploy_batch_payout

#: The batching table the batched runs write: a batch forms after 1 s or at 100 withdrawals.
WINDOW_S: Final = 1.0
MAX_SIZE: Final = 100
_MAX_ALLOWANCE: Final = 2**256 - 1

#: Recipients the batched probe draws from (the first of the fixed set): few, so that the
#: batcher's existence look-ups (one per recipient and worker process, then remembered) weigh
#: little in its JSON-RPC calls per withdrawal.
PROBE_RECIPIENTS: Final = 20

Query = Callable[[str], list[Any]]


@dataclass(frozen=True)
class BatchSetUp:
    """What `prepare` made on the chain: the hot wallet, its batch contract, and the files of
    recipient addresses (one a line) for wrk: all of them, and the probe's few."""

    wallet: Address
    contract: Address
    recipients_file: Path
    probe_recipients_file: Path
    recipients: int


def recipient_addresses(count: int) -> list[str]:
    """``count`` fixed addresses, the same on every run (no key is known for any of them)."""
    return [
        to_checksum_address(keccak(text=f"sluice-bench-recipient-{n}")[-20:]) for n in range(count)
    ]


def prepare(
    rpc_url: str, keystore: Path, passphrase: str, *, token: str, recipients: int, workdir: Path
) -> BatchSetUp:
    """Deploy the hot wallet's ``BatchPayout``, approve it for ``token`` without limit, give
    each of ``recipients`` fixed addresses 1 wei, and write their list for wrk (blocking).

    Raises:
        sluice.testing.contracts.RpcError: The node refused a call.
        RuntimeError: A set-up transaction reverted.
    """
    key = Account.decrypt(json.loads(keystore.read_text(encoding="utf-8")), passphrase)
    addresses = recipient_addresses(recipients)
    with ChainSender(rpc_url, "0x" + bytes(key).hex()) as wallet:
        contract = deploy_batch_payout(wallet)
        approve(wallet, token, contract, _MAX_ALLOWANCE)
        method = setup.set_balance_method(Web3(HTTPProvider(rpc_url)))
        for address in addresses:
            wallet.rpc(method, [address, hex(1)])
        hot_wallet = wallet.address
    path = workdir / "recipients.txt"
    path.write_text("\n".join(addresses) + "\n", encoding="utf-8")
    probe = workdir / "recipients-probe.txt"
    probe.write_text("\n".join(addresses[:PROBE_RECIPIENTS]) + "\n", encoding="utf-8")
    return BatchSetUp(
        wallet=hot_wallet,
        contract=contract,
        recipients_file=path,
        probe_recipients_file=probe,
        recipients=recipients,
    )


def write_networks_file(
    path: Path,
    batch: BatchSetUp,
    *,
    rpc_url: str,
    keystore: Path,
    token: Address,
    confirmations: int,
    poll_interval_s: float,
) -> Path:
    """The bench's networks file with batching on: the hot wallet's contract, `WINDOW_S`,
    `MAX_SIZE`."""
    setup.write_networks_file(
        path,
        rpc_url=rpc_url,
        keystore=keystore,
        token=token,
        confirmations=confirmations,
        poll_interval_s=poll_interval_s,
    )
    with path.open("a", encoding="utf-8") as out:
        out.write(
            f"""
[networks.{setup.NETWORK}.batching]
max_size = {MAX_SIZE}
window_s = {WINDOW_S}
contracts = {{ "{batch.wallet}" = "{batch.contract}" }}
"""
        )
    return path


def transaction_figures(query: Query, *, after_seq: int = 0) -> dict[str, int]:
    """How the withdrawals (those after ``after_seq``) were paid: distinct transactions, how many
    of them carried more than one withdrawal, the withdrawals those carried, and the largest."""
    after = f"seq > {int(after_seq)}"
    rows = query(
        "SELECT transaction_id, count(*) FROM withdrawals "  # noqa: S608 - an int of ours
        f"WHERE transaction_id IS NOT NULL AND {after} GROUP BY transaction_id"
    )
    sizes = [int(n) for _, n in rows]
    batches = [n for n in sizes if n > 1]
    return {
        "transactions": len(sizes),
        "batches": len(batches),
        "batched_withdrawals": sum(batches),
        "largest_batch": max(sizes, default=0),
    }


def broadcast_delays_ms(query: Query) -> list[float]:
    """For each withdrawal that got there: ms from its ``created_at`` to its first
    ``BROADCASTING`` event (both the database's own times)."""
    rows = query(
        "SELECT EXTRACT(EPOCH FROM (min(e.at) - w.created_at)) * 1000 FROM withdrawals w "
        "JOIN withdrawal_events e ON e.withdrawal_id = w.id AND e.to_status = 'BROADCASTING' "
        "GROUP BY w.id, w.created_at"
    )
    return [float(row[0]) for row in rows]
