"""`sluice contracts deploy`: each hot wallet's BatchPayout contract, deployed (or kept) and
approved for every token, and the ``[networks.<name>.batching]`` table that names them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from sluice.cli.common import CANNOT_RUN, fail, line, records, settings, stderr, warn
from sluice.config import NetworkConfig, Settings
from sluice.domain.addresses import Address
from sluice.errors import (
    CallRevertedError,
    ConfigurationError,
    SigningRefusedError,
    SluiceError,
    TransactionRefusedError,
)

if TYPE_CHECKING:
    from sluice.chains.batch_contract import BatchContractSetUp
    from sluice.domain.assets import Network
    from sluice.ports import ChainClient, Signer

app = typer.Typer(help="Batch payout contracts (BatchPayout).", no_args_is_help=True)

#: Exit status when a transaction reverted, was refused, or the result does not verify (what was
#: done before is printed).
FAILED = 1


@app.command("deploy")
def deploy(
    network: Annotated[
        str, typer.Option("--network", help="The network, as the networks file names it.")
    ],
) -> None:
    """Give each hot wallet of a network a BatchPayout contract, approved for every token, and
    print the networks.NAME.batching table that names them, to paste into the networks file.

    For each hot wallet that takes withdrawals (not a draining one): the contract the networks
    file names for it is kept if it verifies (BatchPayout's code, owned by the wallet);
    otherwise a new one is deployed from the wallet. Then the wallet approves the contract for
    the maximum allowance of every configured token, unless it has it already (a smaller
    nonzero allowance is set to 0 first). Running it again sends nothing.

    It sends from the hot wallets outside Sluice's engine: running it before starting Sluice or
    while Sluice is stopped is safest. It refuses a wallet while the database holds
    transactions of it that the chain has not seen yet, and afterwards raises the wallet's nonce
    counter in the database (if there is one) to the chain's pending count.
    Needs the keys here (keystores, Secrets Manager or KMS): `sluice signer` signs no contract
    creation. Exits 2 if it cannot run, 1 if a transaction failed.
    """
    loaded = settings()
    try:
        configs = loaded.networks()
    except ConfigurationError as exc:
        fail(exc.detail)
    config = configs.get(network)
    if config is None:
        known = ", ".join(sorted(configs)) or "none"
        fail(f"no network {network!r} in {loaded.networks_file.resolve()} (it has: {known})")
    if loaded.signer_url:
        fail(
            "SLUICE_SIGNER_URL is set, but `sluice signer` signs no contract creation: run this "
            "where the hot wallets' keys are, with SLUICE_SIGNER_URL unset"
        )

    from sluice.signers.loading import draining_wallets, load_signers  # noqa: PLC0415 - fast CLI

    try:
        signers = load_signers(config, loaded)
        draining = draining_wallets(signers, config)
    except ConfigurationError as exc:
        fail(exc.detail)
    from sluice.chains.batch_contract import BatchContractError  # noqa: PLC0415 - fast CLI

    domain = config.to_domain(network, hot_wallets=tuple(s.address for s in signers))
    accepting = [s for s in signers if s.address not in draining]
    done: list[BatchContractSetUp] = []
    failure: SluiceError | None = None
    try:
        asyncio.run(_deploy(loaded, domain, config, accepting, done))
    except SluiceError as exc:
        failure = exc
    if done:
        _print_table(network, config, done)
    if failure is not None:
        if done:
            warn("the table above names only the wallets done before this error")
        failed = (
            BatchContractError,
            CallRevertedError,
            SigningRefusedError,
            TransactionRefusedError,
        )
        code = FAILED if isinstance(failure, failed) else CANNOT_RUN
        fail(failure.detail, code)
    if not config.batching.enabled:
        warn(f"batching is off on {network} (enabled = false): set enabled = true to use them")
    if done and not any(d.deployed for d in done):
        stderr.print(
            line("the networks file already names these contracts: nothing to paste"),
            highlight=False,
            soft_wrap=True,
        )
        return
    stderr.print(
        line(
            "paste it into ",
            str(loaded.networks_file.resolve()),
            " in place of any [networks.",
            network,
            ".batching] table, then start (or restart) Sluice; until it is there, running this "
            "again deploys other contracts",
        ),
        highlight=False,
        soft_wrap=True,
    )


async def _deploy(
    loaded: Settings,
    network: Network,
    config: NetworkConfig,
    signers: Sequence[Signer],
    done: list[BatchContractSetUp],
) -> None:
    """Set up each wallet's contract in turn, appending each result to ``done`` as it ends."""
    from sluice.chains.batch_contract import set_up_batch_contract  # noqa: PLC0415 - fast CLI
    from sluice.chains.failover import FailoverChainClient  # noqa: PLC0415 - as above

    chain: ChainClient | None = None
    try:
        chain = FailoverChainClient.from_urls(
            config.rpc_urls, network=network.name, expected_chain_id=network.chain_id
        )
        await chain.chain_id()  # the chain answers, and is the configured one
        database = await _database(loaded)
        for signer in signers:
            wallet = signer.address
            if database:
                await _no_unsent_transactions(loaded, chain, network.name, wallet)
            try:
                done.append(
                    await set_up_batch_contract(
                        network,
                        chain,
                        signer,
                        network.batching.configured(wallet),
                        report=_progress,
                    )
                )
            finally:
                if database:
                    await _raise_nonce_counter(loaded, chain, network.name, wallet)
    finally:
        for signer in signers:
            await signer.close()
        if chain is not None:
            await chain.close()


def _progress(text: str) -> None:
    stderr.print(line(text), highlight=False, soft_wrap=True)


async def _database(loaded: Settings) -> bool:
    """Whether the configured database is there and migrated (else a warning: no counter to
    raise; Sluice reconciles its nonce counters with the chain at start anyway)."""
    from sluice.db.status import DatabaseNotReadyError, ensure_ready  # noqa: PLC0415 - fast CLI

    try:
        await ensure_ready(loaded.database_url)
    except DatabaseNotReadyError as exc:
        warn(
            f"no nonce counter raised: {exc.detail}; Sluice reconciles its counters with the "
            "chain when it starts"
        )
        return False
    return True


async def _no_unsent_transactions(
    loaded: Settings, chain: ChainClient, network: str, wallet: Address
) -> None:
    """Refuse a wallet whose stored transactions hold nonces the chain has not seen: a
    transaction sent now would take one of them.

    Raises:
        ConfigurationError: Stored transactions at or above the chain's pending nonce.
    """
    pending = await chain.transaction_count(wallet, pending=True)
    async with records(loaded) as uow:
        unsent = sorted(await uow.transactions.nonces_from(network, wallet, pending))
    if unsent:
        raise ConfigurationError(
            f"hot wallet {wallet} has {len(unsent)} signed transaction(s) the chain has not seen "
            f"(nonces {', '.join(map(str, unsent[:5]))}{'…' if len(unsent) > 5 else ''}); "
            "start Sluice so that it sends them, wait until they are mined, and run this "
            "again with Sluice stopped"
        )


async def _raise_nonce_counter(
    loaded: Settings, chain: ChainClient, network: str, wallet: Address
) -> None:
    """Raise the wallet's nonce counter to the chain's pending count (as start-up does: the
    nonces used here are not handed out again); a warning if that cannot be done now."""
    try:
        pending = await chain.transaction_count(wallet, pending=True)
        async with records(loaded) as uow:
            counter = await uow.transactions.reconcile_nonce(network, wallet, pending)
            await uow.commit()
    except SluiceError as exc:
        warn(
            f"the nonce counter of {wallet} was not raised ({exc.detail}); Sluice raises it "
            "to the chain's count when it starts"
        )
        return
    _progress(f"{wallet}: nonce counter at {counter}")


def batching_table(
    network: str, config: NetworkConfig, contracts: Mapping[Address, Address]
) -> str:
    """The ``[networks.<network>.batching]`` table: the file's settings, with ``contracts``."""
    batching = config.batching
    lines = [
        f"[networks.{network}.batching]",
        f"enabled = {json.dumps(batching.enabled)}",
        f"max_size = {batching.max_size}",
    ]
    if batching.window_s is not None:
        lines.append(f"window_s = {batching.window_s!r}")
    pairs = ", ".join(f"{json.dumps(w)} = {json.dumps(c)}" for w, c in contracts.items())
    lines.append(f"contracts = {{ {pairs} }}")
    return "\n".join(lines) + "\n"


def _print_table(network: str, config: NetworkConfig, done: list[BatchContractSetUp]) -> None:
    """Print the table on stdout: the file's contracts for the wallets not set up here
    (draining ones keep theirs), and each set-up wallet's contract."""
    contracts = {
        Address(w): Address(c)
        for w, c in config.batching.contracts.items()
        if all(w.lower() != d.wallet.lower() for d in done)
    }
    contracts.update({d.wallet: d.contract for d in done})
    print(batching_table(network, config, contracts), end="")
