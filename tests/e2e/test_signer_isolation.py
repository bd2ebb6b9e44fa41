"""`sluice signer` apart: the API and worker process holds no key, and the signer signs only what
the withdrawal records call for, a batch payout's call to the hot wallet's batch contract too.

Real processes: `python -m sluice signer` on a Unix socket with the keystore, and
`python -m sluice serve` (API and workers) with no passphrase at all, on a fresh Anvil. The
check that a process holds no key reads its memory (`/proc/<pid>/mem`) for the private key, in
raw bytes and in hex; the signer process is the positive control.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from sluice.devnet.anvil import AnvilProcess, free_port
from sluice.domain.transaction import AttemptPurpose, TransactionKind
from sluice.keyholder.protocol import SignRequest
from sluice.testing import secret_scan
from sluice.testing.anvil_control import control_for
from sluice.testing.contracts import ChainSender, approve, deploy_batch_payout, transfer
from sluice.testing.harness import PASSPHRASE, prepare, wait_until_final

WAIT_S = 30.0


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [sys.executable, "-m", "sluice", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


#: Token withdrawals the test pays in one batch, to recipients that already hold the token.
BATCH = 3


def _batching_on(
    rpc_url: str, key: bytes, token: str, networks_file: Path, holders: list[str]
) -> str:
    """Deploy the hot wallet's batch contract, approve it for the token, give each holder some
    of the token, and turn batching on in the networks file; the contract's address."""
    with ChainSender(rpc_url, "0x" + key.hex()) as wallet:
        contract = deploy_batch_payout(wallet)
        approve(wallet, token, contract, 2**256 - 1)
        for holder in holders:
            transfer(wallet, token, holder, 1)
        hot_wallet = wallet.address
    networks_file.write_text(
        networks_file.read_text(encoding="utf-8")
        + f"""
[networks.anvil.batching]
window_s = 2.0
contracts = {{ "{hot_wallet}" = "{contract}" }}
""",
        encoding="utf-8",
    )
    return contract


def _memory_holds(pid: int, needles: list[bytes]) -> bool:
    """Whether any readable, writable region of a process's memory holds one of ``needles``."""
    maps = Path(f"/proc/{pid}/maps").read_text(encoding="utf-8").splitlines()
    with Path(f"/proc/{pid}/mem").open("rb", buffering=0) as mem:
        for line in maps:
            match = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
            if match is None or not match.group(3).startswith("rw"):
                continue
            start, end = int(match.group(1), 16), int(match.group(2), 16)
            try:
                mem.seek(start)
                chunk = mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue
            if any(needle in chunk for needle in needles):
                return True
    return False


@pytest.fixture
def can_read_memory() -> None:
    if not Path("/proc/self/mem").exists() or os.geteuid() != 0:
        pytest.skip("reading another process's memory needs Linux /proc and root")


@pytest.mark.usefixtures("can_read_memory")
async def test_with_the_signer_apart_the_api_and_workers_hold_no_key_and_withdrawals_complete(
    node: AnvilProcess, tmp_path: Path, database_url: str
) -> None:
    settings, chain = await prepare(node, tmp_path / "data", database_url=database_url)
    keystore = json.loads((tmp_path / "data" / "keys" / "hot-wallet.json").read_text())
    private_key = bytes(Account.decrypt(keystore, PASSPHRASE))
    holders = [Account.create().address for _ in range(BATCH)]
    batch_contract = await asyncio.to_thread(
        _batching_on, node.rpc_url, private_key, chain.token, settings.networks_file, holders
    )
    needles = [private_key, private_key.hex().encode(), private_key.hex().upper().encode()]
    socket_path = tmp_path / "run" / "signer.sock"
    token = secrets.token_urlsafe(32)
    secret_scan.register(token, "the signer token")
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    base.update(
        SLUICE_DATABASE_URL=database_url,
        SLUICE_NETWORKS_FILE=str(settings.networks_file),
        SLUICE_SIGNER_URL=f"unix://{socket_path}",
        SLUICE_SIGNER_TOKEN=token,
        SLUICE_LOG_FORMAT="json",
        SLUICE_RETRY_BASE_S="0.1",
        SLUICE_RETRY_MAX_S="1",
    )
    signer_env = {
        **base,
        "SLUICE_KEYSTORE_PASSPHRASE": PASSPHRASE,
        "SLUICE_DATA_DIR": str(tmp_path / "signer"),
    }
    port = free_port()
    serve_env = {**base, "SLUICE_PORT": str(port), "SLUICE_DATA_DIR": str(tmp_path / "serve")}
    created = await asyncio.to_thread(
        subprocess.run,
        [
            *(sys.executable, "-m", "sluice", "apikey", "create", "--name", "isolation"),
            *("--scope", "admin", "--scope", "withdrawals:write", "--scope", "withdrawals:read"),
        ],
        env=base,
        capture_output=True,
        check=True,
        timeout=60,
    )
    api_key = created.stdout.decode().strip().splitlines()[-1]

    signer = _spawn(["signer"], signer_env, tmp_path / "signer.log")
    serve = None
    try:
        transport = httpx.AsyncHTTPTransport(uds=str(socket_path))
        async with httpx.AsyncClient(transport=transport, base_url="http://signer") as direct:
            for _ in range(200):
                if socket_path.exists():
                    try:
                        if (await direct.get("/health")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                await asyncio.sleep(0.1)
            assert oct(socket_path.stat().st_mode & 0o777) == "0o600"
            serve = _spawn(["serve"], serve_env, tmp_path / "serve.log")
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"Bearer {api_key}"},
                timeout=30,
            ) as api:
                for _ in range(300):
                    try:
                        if (await api.get("/health")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
                credit = {
                    "userId": "alice",
                    "network": "anvil",
                    "amount": "3",
                    "reference": "isolation-credit",
                }
                assert (await api.post("/v1/admin/ledger/credits", json=credit)).status_code == 201
                tokens = {**credit, "tokenAddress": chain.token, "reference": "isolation-tokens"}
                assert (await api.post("/v1/admin/ledger/credits", json=tokens)).status_code == 201
                recipient = Account.create().address
                body = {
                    "userId": "alice",
                    "amount": "1",
                    "toAddress": recipient,
                    "network": "anvil",
                }
                withdrawal = (await api.post("/v1/withdrawals", json=body)).json()
                final = await wait_until_final(api, [withdrawal["id"]], timeout_s=WAIT_S)
                assert final[withdrawal["id"]]["status"] == "COMPLETED", (
                    tmp_path / "serve.log"
                ).read_text()[-3000:]
                transaction = (
                    await api.get(f"/v1/withdrawals/{withdrawal['id']}/transaction")
                ).json()

                # A batch: the signer reads the batch contract's call and signs it.
                batched = [
                    (
                        await api.post(
                            "/v1/withdrawals",
                            json={**body, "toAddress": to, "tokenAddress": chain.token},
                        )
                    ).json()["id"]
                    for to in holders
                ]
                paid = await wait_until_final(api, batched, timeout_s=WAIT_S)
                assert {b["status"] for b in paid.values()} == {"COMPLETED"}
                views = [
                    (await api.get(f"/v1/withdrawals/{wid}/transaction")).json() for wid in batched
                ]
                assert {v["id"] for v in views} == {views[0]["id"]}, "one transaction pays all"
                assert views[0]["batch"]["contract"] == batch_contract
                assert sorted(v["batch"]["position"] for v in views) == list(range(BATCH))

            async with control_for(node) as control:
                assert await control.balance(recipient) == 10**18
            assert serve.poll() is None
            assert not _memory_holds(serve.pid, needles), "the API/worker process holds the key"
            assert _memory_holds(signer.pid, needles), "control: the signer holds it"

            # The signer signs only what the records call for.
            headers = {"Authorization": f"Bearer {token}"}
            attacker = Account.create().address
            tampered = SignRequest(
                network="anvil",
                wallet=chain.hot_wallet,
                chain_id=31337,
                nonce=transaction["nonce"] + 1,
                to=attacker,
                value=str(10**18),
                data="0x",
                gas=21_000,
                max_fee_per_gas=str(10**10),
                max_priority_fee_per_gas=str(10**9),
                transaction_id="tx_attacker",
                kind=TransactionKind.PAYOUT,
                purpose=AttemptPurpose.PAYLOAD,
                withdrawal_ids=[withdrawal["id"]],
            )
            again = tampered.model_copy(update={"to": recipient})
            for request, reason in (
                (tampered, "differs from the withdrawal record"),
                (again, "not waiting to be signed"),
            ):
                answer = await direct.post(
                    "/v1/sign", json=request.model_dump(mode="json"), headers=headers
                )
                assert answer.status_code == 403, answer.text
                assert answer.json()["code"] == "signing_refused"
                assert reason in answer.json()["detail"]
            no_token = await direct.post("/v1/sign", json=again.model_dump(mode="json"))
            assert no_token.status_code == 401
            for answer in (no_token,):
                assert secret_scan.find(answer.text) == []
    finally:
        if serve is not None:
            _stop(serve)
        _stop(signer)
    for log in ("signer.log", "serve.log"):
        leaked = secret_scan.find((tmp_path / log).read_text(encoding="utf-8", errors="replace"))
        assert leaked == [], f"{log} carries {leaked}"
