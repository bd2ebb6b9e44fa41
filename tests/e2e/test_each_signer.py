"""A withdrawal completes on Anvil with each of the three signers: keystore, AWS Secrets Manager
and AWS KMS (moto's server on 127.0.0.1), the transaction mined from the signer's address.

The networks file `prepare` writes names a keystore; for the AWS signers it is rewritten to name
the secret or the KMS key instead, and that wallet is funded on the chain.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from botocore.session import get_session  # type: ignore[import-untyped]
from eth_account import Account

from sluice.config import Settings
from sluice.devnet.anvil import AnvilProcess
from sluice.devnet.setup import DevChain
from sluice.domain.addresses import Address
from sluice.signers.kms import KmsSigner
from sluice.testing.anvil_control import control_for
from sluice.testing.harness import running_sluice, wait_until_final

ETH = 10**18


def _use_instead_of_the_keystore(networks_file: Path, line: str) -> None:
    text = networks_file.read_text(encoding="utf-8")
    text = re.sub(r"^hot_wallet_keystore = .*$", line, text, count=1, flags=re.MULTILINE)
    networks_file.write_text(text, encoding="utf-8")


def _secret_wallet() -> tuple[str, Address]:
    account = Account.create()
    name = f"sluice-hot-wallet-{account.address[-8:]}"
    get_session().create_client("secretsmanager").create_secret(
        Name=name, SecretString=account.key.hex()
    )
    return f'hot_wallet_secret_id = "{name}"', Address(account.address)


def _kms_wallet() -> tuple[str, Address]:
    kms = get_session().create_client("kms")
    key_id = kms.create_key(KeySpec="ECC_SECG_P256K1", KeyUsage="SIGN_VERIFY")["KeyMetadata"][
        "KeyId"
    ]
    return f'hot_wallet_kms_key_id = "{key_id}"', KmsSigner.from_key_id(key_id).address


@pytest.mark.parametrize("kind", ["keystore", "secrets_manager", "kms"])
@pytest.mark.usefixtures("kms_signs_digests")
async def test_a_withdrawal_completes_with_each_signer(
    node: AnvilProcess, tmp_path: Path, database_url: str, kind: str
) -> None:
    wallet: list[Address] = []

    async def use_signer(settings: Settings, chain: DevChain) -> DevChain:
        if kind == "keystore":
            wallet.append(chain.hot_wallet)
            return chain
        line, address = _secret_wallet() if kind == "secrets_manager" else _kms_wallet()
        _use_instead_of_the_keystore(settings.networks_file, line)
        async with control_for(node) as control:
            await control.set_balance(address, 100 * ETH)
        wallet.append(address)
        return dataclasses.replace(chain, hot_wallet=address)

    async with running_sluice(
        node, tmp_path, database_url=database_url, after_prepare=use_signer
    ) as instance:
        await instance.credit("alice", "2")
        recipient = Account.create().address
        async with instance.client() as client:
            body = {"userId": "alice", "amount": "1", "toAddress": recipient, "network": "anvil"}
            created = (await client.post("/v1/withdrawals", json=body)).json()
            final = await wait_until_final(client, [created["id"]], timeout_s=30)
            assert final[created["id"]]["status"] == "COMPLETED", final
            tx_hash = final[created["id"]]["transactionHash"]

    async with control_for(node) as control:
        assert await control.balance(recipient) == ETH
        mined = await control.transaction(tx_hash)
    assert mined is not None
    assert mined["from"].lower() == wallet[0].lower(), "mined from the signer's address"
