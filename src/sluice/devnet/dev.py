"""`sluice dev`: a local chain, the API and the workers in one process, on embedded defaults."""

from __future__ import annotations

import asyncio
import functools
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import structlog
from pydantic import SecretStr
from rich.console import Console
from rich.markup import escape

from sluice import runtime
from sluice.bootstrap import Container, build
from sluice.config import Settings, load_networks
from sluice.devnet import setup
from sluice.devnet.anvil import AnvilError, AnvilProcess, port_is_free
from sluice.domain.access import ALL_SCOPES
from sluice.errors import ConfigurationError, UnauthorizedError
from sluice.signers.keystore import KeystoreSigner

log = structlog.get_logger(__name__)

DEMO_USER = "demo-user"
#: What the demo user is credited on first start (once per reference, so never twice).
DEMO_CREDITS = (("native", None, "100"), (setup.TOKEN_SYMBOL, "token", "10000"))
#: How long to wait for the Anvil port at start-up. The node of a run that was just stopped or
#: killed saves its state (``--state``) before it exits and frees the port; starting a new node
#: before that would fail, or load a state file that is not complete yet.
ANVIL_PORT_WAIT_S = 10.0


@dataclass(frozen=True, slots=True)
class DevOptions:
    """Knobs of `sluice dev`."""

    host: str = "127.0.0.1"
    port: int = 8000
    anvil_port: int = 8545
    block_time_s: float = 1.0
    confirmations: int = 2


async def _wait_for_port(port: int, timeout_s: float = ANVIL_PORT_WAIT_S) -> None:
    """Wait until ``port`` is free, e.g. while a previous run's Anvil is still saving its state.

    Raises:
        AnvilError: Still in use after ``timeout_s``.
    """
    if port_is_free(port):
        return
    log.warning(
        "anvil port in use; waiting for it (a previous node may still be saving its state)",
        port=port,
        timeout_s=timeout_s,
    )
    started = time.monotonic()
    while not port_is_free(port):
        if time.monotonic() - started > timeout_s:
            raise AnvilError(
                f"port {port} is still in use after {timeout_s:g}s: is another `sluice dev` or"
                " Anvil running? Stop it, or pick another port with --anvil-port"
            )
        await asyncio.sleep(0.1)
    log.info("anvil port is free", port=port, waited_s=round(time.monotonic() - started, 2))


def _check_api_port(port: int) -> None:
    """Refuse to start when the API could not listen: better now than after deploying.

    Raises:
        ConfigurationError: ``port`` of 127.0.0.1 is in use.
    """
    if not port_is_free(port):
        raise ConfigurationError(
            f"API port {port} on 127.0.0.1 is in use: is another `sluice dev` or `sluice serve`"
            " running? Stop it, or pick another port with --port"
        )


async def _api_key(container: Container, dev_file: Path) -> str:
    """Reuse the key in dev.json if it still works; otherwise make one with every scope."""
    if dev_file.exists():  # noqa: ASYNC240 - one stat of a local file at start-up
        token = setup.DevInfo.read(dev_file).apiKey
        try:
            async with container.uow() as uow:
                await container.api_keys.verify(uow, token)
        except UnauthorizedError:
            pass
        else:
            return token
    async with container.uow() as uow:
        token, _key = await container.api_keys.create(uow, name="dev", scopes=ALL_SCOPES)
        await uow.commit()
    return token


async def _credit_demo_user(container: Container, token: str) -> None:
    for label, kind, amount in DEMO_CREDITS:
        async with container.uow() as uow:
            await container.ledger.credit(
                uow,
                user_id=DEMO_USER,
                network=setup.NETWORK,
                token_address=token if kind else None,
                amount=amount,
                reference=f"dev:initial-credit:{DEMO_USER}:{label}",
            )
            await uow.commit()


def _next_steps(
    console: Console, info: setup.DevInfo, dev_file: Path, *, batch_contract: str | None = None
) -> None:
    # Every value is escaped: a path or URL may hold `[...]`, which Rich would take as markup.
    api, rpc, details = escape(info.apiUrl), escape(info.rpcUrl), escape(str(dev_file))
    token = escape(f"{setup.TOKEN_SYMBOL} {info.tokens[setup.TOKEN_SYMBOL]}")
    console.print(f"\n[bold green]Sluice is running[/] at {api}  (docs: {api}/docs)")
    console.print(f"  chain    {rpc}  (chain id {info.chainId})")
    console.print(f"  wallet   {escape(info.hotWallet)}")
    console.print(f"  token    {token}")
    if batch_contract is not None:
        console.print(
            f"  batch    {escape(batch_contract)}  (BatchPayout, {setup.TOKEN_SYMBOL} approved)"
        )
    console.print(f"  details  {details}  (API key, addresses)")
    console.print(
        "  API key  every scope, admin included: fine for this local playground; for anything"
        " else make keys with `sluice apikey create` (withdrawals only by default)\n"
    )
    console.print("[bold]What to try next[/]")
    console.print("  In another terminal:  [cyan].venv/bin/sluice demo[/]")
    body = (
        f'{{"userId": "{DEMO_USER}", "amount": "0.5", "network": "{setup.NETWORK}",'
        ' "toAddress": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}'
    )
    console.print(
        "  Or by hand:\n"
        f"    curl -s -X POST {info.apiUrl}/v1/withdrawals \\\n"
        f'      -H "Authorization: Bearer $(jq -r .apiKey {shlex.quote(str(dev_file))})" \\\n'
        '      -H "Content-Type: application/json" \\\n'
        f"      -d '{body}'\n",
        markup=False,
    )
    console.print("  Ctrl-C stops everything; `make run` again resumes on the same data.\n")


async def run_dev(settings: Settings, options: DevOptions, console: Console) -> None:
    """Start Anvil, prepare it, and serve until interrupted.

    Raises:
        ConfigurationError: The API port is in use (checked before any work).
        AnvilError: The Anvil port stays in use, or the node does not start.
    """
    _check_api_port(options.port)
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    await _wait_for_port(options.anvil_port)
    anvil = AnvilProcess()
    # Started from the event loop's own thread: Linux ties the child's parent-death signal to the
    # thread that spawned it, and Anvil must die (and save its state) when this process dies.
    await anvil.astart(
        options.anvil_port,
        block_time=options.block_time_s,
        state_path=data_dir / "anvil-state.json",
        chain_id=setup.CHAIN_ID,
    )
    container: Container | None = None
    try:
        secret = setup.passphrase(data_dir)
        keystore = setup.hot_wallet(data_dir, secret)
        wallet = setup.hot_wallet_address(keystore)
        chain = await asyncio.to_thread(setup.prepare_chain, anvil.rpc_url, data_dir, wallet)
        networks_file = data_dir / "networks.toml"
        previous = setup.batch_contract_in(networks_file, wallet)  # the last start's, if any
        write_networks_file = functools.partial(
            setup.write_networks_file,
            networks_file,
            rpc_url=anvil.rpc_url,
            keystore=keystore,
            token=chain.token,
            confirmations=options.confirmations,
            poll_interval_s=min(1.0, options.block_time_s),
        )
        write_networks_file()
        # The hot wallet's batch contract: deployed from the wallet (its owner) and approved for
        # the demo token, before the engine starts (it reconciles the wallet's nonces then).
        network = load_networks(networks_file)[setup.NETWORK].to_domain(setup.NETWORK)
        signer = await asyncio.to_thread(KeystoreSigner.from_file, keystore, secret)
        batch = await setup.prepare_batch_contract(network, anvil.rpc_url, signer, previous)
        write_networks_file(batch_contracts=((wallet, batch.contract),))
        # The database is the settings' own (``<data_dir>/sluice.db`` unless SLUICE_DATABASE_URL
        # names another): the one every other command opens.
        dev_settings = settings.model_copy(
            update={"networks_file": networks_file, "keystore_passphrase": SecretStr(secret)}
        )
        container = await build(dev_settings)
        dev_file = settings.dev_file
        token = await _api_key(container, dev_file)
        await _credit_demo_user(container, chain.token)
        info = setup.DevInfo(
            apiUrl=f"http://{options.host}:{options.port}",
            apiKey=token,
            rpcUrl=anvil.rpc_url,
            network=setup.NETWORK,
            chainId=setup.CHAIN_ID,
            hotWallet=chain.hot_wallet,
            tokens={setup.TOKEN_SYMBOL: chain.token},
            demoUserId=DEMO_USER,
        )

        async def on_ready() -> None:
            info.write(dev_file)
            _next_steps(console, info, dev_file, batch_contract=batch.contract)

        await runtime.run(container, host=options.host, port=options.port, on_ready=on_ready)
    finally:
        if container is not None:
            await container.close()
        await anvil.astop()
