"""A network's main hot wallet: exactly one of a keystore, a Secrets Manager secret, a KMS key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from sluice.config import NetworkConfig, load_networks
from sluice.errors import ConfigurationError


def network(**fields: Any) -> NetworkConfig:
    return NetworkConfig.model_validate(
        {"chain_id": 1, "rpc_urls": ["http://127.0.0.1:8545"], **fields}
    )


@pytest.mark.parametrize(
    ("fields", "keystores"),
    [
        ({"hot_wallet_keystore": "/k/main.json"}, [Path("/k/main.json")]),
        (
            {"hot_wallet_keystore": "/k/main.json", "more_hot_wallet_keystores": ["/k/b.json"]},
            [Path("/k/main.json"), Path("/k/b.json")],
        ),
        ({"hot_wallet_secret_id": "prod/hot-wallet"}, []),
        ({"hot_wallet_kms_key_id": "alias/hot-wallet"}, []),
        (
            {
                "hot_wallet_kms_key_id": "alias/hot-wallet",
                "more_hot_wallet_keystores": ["/k/b.json"],
            },
            [Path("/k/b.json")],
        ),
    ],
    ids=["keystore", "keystores", "secret", "kms", "kms-and-keystores"],
)
def test_one_main_hot_wallet_of_any_kind(fields: dict[str, Any], keystores: list[Path]) -> None:
    assert network(**fields).keystores == keystores


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"more_hot_wallet_keystores": ["/k/b.json"]},
        {"hot_wallet_keystore": "/k/main.json", "hot_wallet_secret_id": "s"},
        {"hot_wallet_secret_id": "s", "hot_wallet_kms_key_id": "k"},
        {
            "hot_wallet_keystore": "/k/a.json",
            "hot_wallet_secret_id": "s",
            "hot_wallet_kms_key_id": "k",
        },
        {"hot_wallet_secret_id": ""},
        {"hot_wallet_kms_key_id": ""},
    ],
    ids=[
        "none",
        "only-more",
        "keystore-and-secret",
        "secret-and-kms",
        "all-three",
        "empty-secret",
        "empty-kms",
    ],
)
def test_not_exactly_one_main_hot_wallet_is_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        network(**fields)


def test_the_networks_file_names_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "networks.toml"
    path.write_text(
        '[networks.ethereum]\nchain_id = 1\nrpc_urls = ["http://127.0.0.1:8545"]\n'
        'hot_wallet_secret_id = "prod/hot-wallet"\nhot_wallet_kms_key_id = "alias/hot-wallet"\n'
    )

    with pytest.raises(ConfigurationError, match="exactly one of hot_wallet_keystore"):
        load_networks(path)


def test_a_networks_file_with_a_kms_key(tmp_path: Path) -> None:
    path = tmp_path / "networks.toml"
    path.write_text(
        '[networks.ethereum]\nchain_id = 1\nrpc_urls = ["http://127.0.0.1:8545"]\n'
        'hot_wallet_kms_key_id = "arn:aws:kms:eu-west-1:111122223333:alias/hot-wallet"\n'
    )

    config = load_networks(path)["ethereum"]

    assert config.hot_wallet_kms_key_id == "arn:aws:kms:eu-west-1:111122223333:alias/hot-wallet"
    assert config.hot_wallet_keystore is None
    assert config.keystores == []
