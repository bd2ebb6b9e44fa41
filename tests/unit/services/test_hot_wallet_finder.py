"""`HotWalletFinder`: each configured hot wallet found as the engine would load it, a failure
being that wallet's problem (never an exception); the key loaders are fakes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from sluice.config import NetworkConfig
from sluice.domain.addresses import Address
from sluice.errors import ConfigurationError, TransientError
from sluice.ports import Signer
from sluice.services.config_check import HotWalletFinder, KeyLoaders, Wallet
from sluice.testing.fakes import LocalSigner

MAIN = LocalSigner()
#: The keystores' paths as the finder names them (resolved).
MAIN_FILE = Path("/keys/main.json").resolve()
MORE_FILE = Path("/keys/more.json").resolve()
MORE = LocalSigner()
KMS = LocalSigner()


def keystore_address(path: Path) -> Address:
    if path.name == "broken.json":
        raise ConfigurationError("not a V3 keystore")
    return MORE.address if path.name == "more.json" else MAIN.address


def from_keystore(path: Path, passphrase: str) -> Signer:
    if passphrase != "right":
        raise ConfigurationError("wrong passphrase")
    return MORE if path.name == "more.json" else MAIN


def from_kms_key(key_id: str) -> Signer:
    if key_id == "alias/missing":
        raise ConfigurationError("KMS key alias/missing not found")
    return KMS


KEYS = KeyLoaders(
    from_secret=lambda _secret_id: MAIN,
    from_kms_key=from_kms_key,
    from_keystore=from_keystore,
    keystore_address=keystore_address,
)


def network(**wallets: object) -> NetworkConfig:
    return NetworkConfig.model_validate(
        {"chain_id": 1, "rpc_urls": ["http://127.0.0.1:8545"], **wallets}
    )


async def test_keystores_decrypt_with_the_passphrase_and_the_draining_one_is_marked() -> None:
    config = network(
        hot_wallet_keystore="/keys/main.json",
        draining_hot_wallet_keystores=["/keys/more.json"],
    )
    finder = HotWalletFinder(KEYS, passphrase=SecretStr("right"))

    wallets = await finder("mainnet", config)

    decrypts = ", decrypts with SLUICE_KEYSTORE_PASSPHRASE"
    assert wallets == [
        Wallet(f"keystore {MAIN_FILE}{decrypts}", MAIN.address),
        Wallet(f"keystore {MORE_FILE}{decrypts}", MORE.address, draining=True),
    ]


async def test_a_wrong_passphrase_and_an_unreadable_keystore_are_the_wallets_problems() -> None:
    config = network(
        hot_wallet_keystore="/keys/main.json", more_hot_wallet_keystores=["/keys/broken.json"]
    )
    finder = HotWalletFinder(KEYS, passphrase=SecretStr("wrong"))

    main, broken = await finder("mainnet", config)

    assert (main.address, main.problem) == (MAIN.address, "wrong passphrase")
    assert (broken.address, broken.problem) == (None, "not a V3 keystore")


async def test_without_a_passphrase_the_problem_names_the_file_sluice_dev_wrote(
    tmp_path: Path,
) -> None:
    config = network(hot_wallet_keystore="/keys/main.json")
    passphrase_file = tmp_path / "dev passphrase"
    with_dev = HotWalletFinder(KEYS, passphrase=None, dev_passphrase_file=lambda: passphrase_file)
    without_dev = HotWalletFinder(KEYS, passphrase=None)

    [hinted] = await with_dev("mainnet", config)
    [plain] = await without_dev("mainnet", config)

    not_set = "SLUICE_KEYSTORE_PASSPHRASE is not set: the key cannot be decrypted"
    assert plain.problem == not_set
    assert hinted.problem == (
        f"{not_set}; sluice dev keeps its passphrase in {passphrase_file}:"
        f" export SLUICE_KEYSTORE_PASSPHRASE=\"$(cat '{passphrase_file}')\""
    )
    assert hinted.address == MAIN.address  # read from the file, without the passphrase


async def test_an_aws_key_that_cannot_be_loaded_is_a_problem_and_one_that_loads_is_found() -> None:
    finder = HotWalletFinder(KEYS, passphrase=None)

    [missing] = await finder("mainnet", network(hot_wallet_kms_key_id="alias/missing"))
    [kms] = await finder("mainnet", network(hot_wallet_kms_key_id="alias/hot"))
    [secret] = await finder("mainnet", network(hot_wallet_secret_id="sluice/hot"))

    assert missing == Wallet("KMS key alias/missing", None, "KMS key alias/missing not found")
    assert kms == Wallet("KMS key alias/hot", KMS.address)
    assert secret == Wallet("Secrets Manager secret sluice/hot", MAIN.address)


@dataclass(frozen=True)
class Held:
    network: str
    address: str
    draining: bool


async def test_with_sluice_signer_the_wallets_are_the_signers_list_for_the_network() -> None:
    held = [Held("mainnet", MAIN.address, False), Held("other", MORE.address, True)]
    finder = HotWalletFinder(KEYS, passphrase=None, held=lambda: held)

    assert await finder("mainnet", network(hot_wallet_keystore="/keys/main.json")) == [
        Wallet("sluice signer", MAIN.address)
    ]
    assert await finder("third", network(hot_wallet_keystore="/keys/main.json")) == [
        Wallet("sluice signer", None, "holds no hot wallet for third")
    ]


async def test_a_signer_that_does_not_answer_is_one_problem() -> None:
    def unreachable() -> list[Held]:
        raise TransientError("sluice signer does not answer")

    finder = HotWalletFinder(KEYS, passphrase=None, held=unreachable)

    assert await finder("mainnet", network(hot_wallet_keystore="/keys/main.json")) == [
        Wallet("sluice signer", None, "sluice signer does not answer")
    ]
