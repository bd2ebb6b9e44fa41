"""`sluice demo`: send withdrawals to a running dev instance and watch them to the end."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from rich.console import Console
from rich.markup import escape

from sluice.devnet.artifacts import load_demo_token
from sluice.devnet.setup import DevInfo
from sluice.domain.amounts import parse_amount

with warnings.catch_warnings():
    # web3 7 imports `websockets.legacy`, which websockets >= 14 deprecates on import.
    warnings.filterwarnings("ignore", message="websockets.legacy", category=DeprecationWarning)
    from web3 import HTTPProvider, Web3

FINAL = {"COMPLETED", "FAILED", "CANCELLED"}


@dataclass(frozen=True, slots=True)
class DemoResult:
    """How one demo withdrawal ended, and whether the chain agrees."""

    symbol: str
    status: str
    verified: bool


def _balance(w3: Web3, token: str | None, address: str) -> int:
    if token is None:
        return int(w3.eth.get_balance(Web3.to_checksum_address(address)))
    contract = w3.eth.contract(address=Web3.to_checksum_address(token), abi=load_demo_token().abi)
    return int(contract.functions.balanceOf(Web3.to_checksum_address(address)).call())


def run_one(
    console: Console,
    client: httpx.Client,
    w3: Web3,
    info: DevInfo,
    *,
    symbol: str,
    amount: str,
    timeout_s: float,
) -> DemoResult:
    """Submit one withdrawal, print its status changes live, then check the chain."""
    token = None if symbol == "ETH" else info.tokens[symbol]
    recipient = Account.create().address  # a fresh address: its balance starts at zero
    body: dict[str, Any] = {
        "userId": info.demoUserId,
        "amount": amount,
        "toAddress": recipient,
        "network": info.network,
        "tokenAddress": token,
    }
    # Values from the user, the API or the chain are escaped: Rich would take `[...]` as markup.
    console.print(f"\n[bold]Withdrawing {escape(f'{amount} {symbol}')}[/] to {recipient}")
    response = client.post("/v1/withdrawals", json=body)
    if response.status_code not in (200, 202):
        console.print(f"[red]refused ({response.status_code}):[/] {escape(response.text)}")
        return DemoResult(symbol, "REFUSED", False)
    withdrawal = response.json()
    request_id = response.headers.get("x-request-id")
    console.print(f"  id {withdrawal['id']}  (request id {request_id})", markup=False)

    seen = 0
    deadline = time.monotonic() + timeout_s
    status = withdrawal["status"]
    while time.monotonic() < deadline:
        events = client.get(f"/v1/withdrawals/{withdrawal['id']}/events").json()["events"]
        for event in events[seen:]:
            at = event["at"][11:23]
            status_text = escape(f"{event['status']:<13}")
            console.print(f"  {escape(at)}  [cyan]{status_text}[/] {escape(event['reason'])}")
        seen = len(events)
        status = events[-1]["status"] if events else status
        if status in FINAL:
            break
        time.sleep(0.25)
    final = client.get(f"/v1/withdrawals/{withdrawal['id']}").json()
    if final["status"] != "COMPLETED":
        ended = escape(f"  ended {final['status']}")
        console.print(f"[red]{ended}[/] {escape(final.get('errorCode') or '')}")
        return DemoResult(symbol, final["status"], False)

    receipt = w3.eth.get_transaction_receipt(final["transactionHash"])
    received = _balance(w3, token, recipient)
    expected = parse_amount(amount, 18)
    ok = receipt["status"] == 1 and received == expected
    console.print(
        f"  transaction {final['transactionHash']}\n"
        f"  block {receipt['blockNumber']}, receipt status {receipt['status']}, "
        f"recipient received {Decimal(received) / 10**18} {symbol}",
        markup=False,
    )
    mark = "[green]✓ the chain agrees[/]" if ok else "[red]✗ the chain disagrees[/]"
    console.print(f"  {mark}")
    return DemoResult(symbol, final["status"], ok)


def run_demo(
    console: Console, dev_file: Path, *, assets: list[str], amount: str, timeout_s: float
) -> bool:
    """Run the demo for each asset; True if every withdrawal completed and the chain agrees."""
    if not dev_file.exists():
        console.print(
            f"[red]{escape(str(dev_file.resolve()))} not found:[/] start Sluice with `make run`"
            " (or `sluice dev`) first, with the same SLUICE_DATA_DIR.",
            highlight=False,
        )
        return False
    info = DevInfo.read(dev_file)
    w3 = Web3(HTTPProvider(info.rpcUrl, request_kwargs={"timeout": 10}))
    headers = {"Authorization": f"Bearer {info.apiKey}"}
    results = []
    try:
        with httpx.Client(base_url=info.apiUrl, headers=headers, timeout=10) as client:
            for symbol in assets:
                results.append(
                    run_one(
                        console, client, w3, info, symbol=symbol, amount=amount, timeout_s=timeout_s
                    )
                )
    except httpx.TransportError:
        console.print(
            f"[red]cannot reach Sluice at {escape(info.apiUrl)}:[/] is `make run` running?"
        )
        return False
    return all(r.verified for r in results)
