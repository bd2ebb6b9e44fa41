"""A whole Sluice (API and workers) on a real local node (Anvil, Hardhat), in the test's event loop.

End-to-end tests drive it over real HTTP on 127.0.0.1; integration tests use its container
directly. The set-up is the one `sluice dev` uses (same deployer, token, funding, networks file),
with test-friendly timings.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from pydantic import SecretStr

from sluice import runtime
from sluice.bootstrap import Container, build
from sluice.config import Settings
from sluice.devnet import setup
from sluice.devnet.anvil import LocalNode, free_port
from sluice.domain.access import ALL_SCOPES, Scope
from sluice.domain.addresses import Address
from sluice.testing import secret_scan

PASSPHRASE = "test-passphrase-not-a-secret"  # noqa: S105 - a throwaway test keystore's passphrase
secret_scan.register(PASSPHRASE, "the keystore passphrase")


@dataclass
class RunningSluice:
    """A running instance and what a test needs to talk to it."""

    base_url: str
    api_key: str
    container: Container
    rpc_url: str
    token: Address
    hot_wallet: Address
    network: str = setup.NETWORK

    def client(self, api_key: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        """An HTTP client for the API, authenticated with ``api_key`` (default: every scope).

        Every answer is scanned for the run's known secrets (`sluice.testing.secret_scan`).
        """
        headers = {"Authorization": f"Bearer {api_key or self.api_key}"}
        return httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=30,
            event_hooks={"response": [_scan_answer]},
            **kwargs,
        )

    async def make_key(
        self,
        *scopes: Scope,
        user_ids: list[str] | None = None,
        ip_ranges: tuple[str, ...] = (),
        signing_public_key: str | None = None,
        rate_limit_per_s: int | None = None,
    ) -> str:
        """Another API key with only ``scopes`` (and, if given, its restrictions)."""
        async with self.container.uow() as uow:
            token, _ = await self.container.api_keys.create(
                uow,
                name="test",
                scopes=scopes,
                user_ids=user_ids,
                ip_ranges=ip_ranges,
                signing_public_key=signing_public_key,
                rate_limit_per_s=rate_limit_per_s,
            )
            await uow.commit()
        secret_scan.register_api_key(token)
        return token

    async def credit(self, user_id: str, amount: str, *, token: bool = False) -> None:
        """Credit a user through the service (not the API)."""
        async with self.container.uow() as uow:
            await self.container.ledger.credit(
                uow,
                user_id=user_id,
                network=self.network,
                token_address=self.token if token else None,
                amount=amount,
                reference=f"test-credit:{user_id}:{token}:{amount}:{id(uow)}",
            )
            await uow.commit()


async def _scan_answer(response: httpx.Response) -> None:
    """Fail the test if an answer (headers or body) carries a known secret."""
    await response.aread()
    leaked = secret_scan.find(str(response.headers) + response.text)
    if leaked:
        raise AssertionError(
            f"{response.request.method} {response.request.url.path} answered with {leaked}"
        )


async def prepare(
    anvil: LocalNode,
    data_dir: Path,
    *,
    database_url: str | None = None,
    confirmations: int = 1,
    poll_interval_s: float = 0.1,
    **overrides: Any,
) -> tuple[Settings, setup.DevChain]:
    """Keystore, token, funding and a networks file in ``data_dir``; the settings to use them."""
    keystore = setup.hot_wallet(data_dir, PASSPHRASE, fast_kdf=True)
    wallet = setup.hot_wallet_address(keystore)
    key = Account.decrypt(json.loads(keystore.read_text(encoding="utf-8")), PASSPHRASE)
    secret_scan.register(bytes(key).hex(), "the hot wallet's private key")
    chain = await asyncio.to_thread(setup.prepare_chain, anvil.rpc_url, data_dir, wallet)
    networks_file = data_dir / "networks.toml"
    setup.write_networks_file(
        networks_file,
        rpc_url=anvil.rpc_url,
        keystore=keystore,
        token=chain.token,
        confirmations=confirmations,
        poll_interval_s=poll_interval_s,
    )
    values: dict[str, Any] = {
        "database_url": database_url or f"sqlite+aiosqlite:///{data_dir / 'sluice.db'}",
        "networks_file": networks_file,
        "keystore_passphrase": SecretStr(PASSPHRASE),
        "retry_base_s": 0.05,
        "retry_max_s": 0.5,
        "log_format": "json",
        **overrides,
    }
    return Settings(**values), chain


@asynccontextmanager
async def running_sluice(
    anvil: LocalNode,
    data_dir: Path,
    *,
    workers: bool = True,
    database_url: str | None = None,
    confirmations: int = 1,
    after_prepare: Callable[[Settings, setup.DevChain], Awaitable[setup.DevChain]] | None = None,
    **overrides: Any,
) -> AsyncIterator[RunningSluice]:
    """Start API and workers on a free port; stop them gracefully on exit.

    ``after_prepare`` may change the prepared set-up before Sluice starts (another signer in the
    networks file, say) and returns the chain set-up to report.
    """
    settings, chain = await prepare(
        anvil, data_dir, database_url=database_url, confirmations=confirmations, **overrides
    )
    if after_prepare is not None:
        chain = await after_prepare(settings, chain)
    container = await build(settings)
    try:
        async with container.uow() as uow:
            api_key, _ = await container.api_keys.create(uow, name="test", scopes=ALL_SCOPES)
            await uow.commit()
        secret_scan.register_api_key(api_key)
        port = free_port()
        stop = asyncio.Event()
        ready = asyncio.Event()

        async def on_ready() -> None:
            ready.set()

        task = asyncio.create_task(
            runtime.run(
                container,
                workers=workers,
                port=port,
                on_ready=on_ready,
                stop=stop,
                handle_signals=False,
            )
        )
        ready_wait = asyncio.create_task(ready.wait())
        await asyncio.wait({task, ready_wait}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            ready_wait.cancel()
            await task  # it failed to start: raise why
        try:
            yield RunningSluice(
                base_url=f"http://127.0.0.1:{port}",
                api_key=api_key,
                container=container,
                rpc_url=anvil.rpc_url,
                token=chain.token,
                hot_wallet=chain.hot_wallet,
            )
        finally:
            stop.set()
            await task
    finally:
        await container.close()


async def wait_until_final(
    client: httpx.AsyncClient, ids: list[str], *, timeout_s: float = 60.0
) -> dict[str, dict[str, Any]]:
    """Poll until every withdrawal is COMPLETED, FAILED or CANCELLED; their final bodies."""
    final: dict[str, dict[str, Any]] = {}
    deadline = asyncio.get_running_loop().time() + timeout_s
    while len(final) < len(ids):
        for withdrawal_id in ids:
            if withdrawal_id in final:
                continue
            body = (await client.get(f"/v1/withdrawals/{withdrawal_id}")).json()
            if body["status"] in {"COMPLETED", "FAILED", "CANCELLED"}:
                final[withdrawal_id] = body
        if len(final) < len(ids):
            if asyncio.get_running_loop().time() > deadline:
                pending = sorted(set(ids) - set(final))
                raise TimeoutError(f"{len(pending)} withdrawals not final: {pending[:5]}")
            await asyncio.sleep(0.1)
    return final
