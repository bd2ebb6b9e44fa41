"""Whether a hot wallet can take a payload now: its transactions in flight, its tokens, its
coin; and what an OP Stack chain adds to the fee. Shared by single payouts and batches."""

from __future__ import annotations

from sluice.domain.assets import Asset
from sluice.domain.transaction import Payload
from sluice.ports import InFlight, Signer
from sluice.services.registry import NetworkEntry

#: Bytes standing for a transaction's fields and signature when an L1 data fee is estimated.
L1_ENVELOPE = 120


async def cannot_hold(
    entry: NetworkEntry,
    *,
    signer: Signer,
    asset: Asset,
    payload: Payload,
    tokens: int,
    flight: InFlight,
    estimating: bool,
) -> str | None:
    """Why a wallet cannot take the payload before its gas is known, if it cannot: too much in
    flight, too few tokens, or (before an estimate, which needs it) too little of the coin for
    the value. The common payout (the coin to an account: no estimate) reads the wallet's
    balance once, after this."""
    network = entry.network
    if flight.count >= network.max_in_flight:
        return (
            f"in_flight: hot wallet {signer.address} has {flight.count} transactions "
            f"in flight (limit {network.max_in_flight})"
        )
    if asset.token_address is not None:
        needed = flight.tokens.get(asset.key, 0) + tokens
        held = await entry.chain.token_balance(asset.token_address, signer.address)
        if held < needed:
            return (
                f"underfunded: hot wallet {signer.address} holds {held} {asset.symbol} "
                f"base units, needs {needed}"
            )
    elif payload.value and estimating:
        native = await entry.chain.balance(signer.address)
        if native < flight.native + payload.value:
            return (
                f"underfunded: hot wallet {signer.address} holds {native} wei, "
                f"needs {flight.native + payload.value} before gas"
            )
    return None


async def l1_fee(entry: NetworkEntry, payload: Payload) -> int:
    """An OP Stack chain's L1 data fee for the payload, over-estimated (0 elsewhere).

    The oracle prices a signed transaction's bytes, which do not exist before the nonce is
    taken: it is asked for the payload's data after `L1_ENVELOPE` incompressible bytes (an
    envelope larger than any EIP-1559 transaction's fields and signature), and the answer is
    doubled, since the L1 fee moves with Ethereum's fees while the transaction waits. The fee
    recorded is the receipt's (`Receipt.fee_paid`).
    """
    oracle = entry.network.l1_fee_oracle
    if oracle is None:
        return 0
    return 2 * await entry.chain.l1_fee(oracle, b"\xff" * L1_ENVELOPE + payload.data)


def underfunded(signer: Signer, native: int, needed: int) -> str:
    """The waiting reason of a wallet short of the coin for a payload and its gas."""
    return (
        f"underfunded: hot wallet {signer.address} holds {native} wei, "
        f"needs {needed} (gas and transactions in flight included)"
    )
