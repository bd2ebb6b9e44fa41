"""Which hot wallets drain: the ones listed in ``draining_hot_wallet_keystores``."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.config import NetworkConfig
from sluice.errors import ConfigurationError
from sluice.signers.loading import draining_wallets
from sluice.testing.fakes import LocalSigner


def _config(more: int, draining: int) -> NetworkConfig:
    return NetworkConfig(
        chain_id=1,
        rpc_urls=["http://127.0.0.1:8545"],
        hot_wallet_keystore=Path("main.json"),
        more_hot_wallet_keystores=[Path(f"more-{n}.json") for n in range(more)],
        draining_hot_wallet_keystores=[Path(f"old-{n}.json") for n in range(draining)],
    )


def test_the_wallets_loaded_from_the_draining_list_drain_and_the_others_do_not() -> None:
    config = _config(more=1, draining=1)
    main, more, old = LocalSigner(), LocalSigner(), LocalSigner()
    assert config.keystores == [Path("main.json"), Path("more-0.json"), Path("old-0.json")]

    assert draining_wallets((main, more, old), config) == frozenset({old.address})
    assert draining_wallets((main,), _config(more=0, draining=0)) == frozenset()


def test_a_network_whose_every_wallet_drains_is_refused() -> None:
    config = NetworkConfig(
        chain_id=1,
        rpc_urls=["http://127.0.0.1:8545"],
        hot_wallet_kms_key_id="alias/hot",
        draining_hot_wallet_keystores=[Path("old.json")],
    )
    kms, old = LocalSigner(), LocalSigner()
    assert draining_wallets((kms, old), config) == frozenset({old.address})
    with pytest.raises(ConfigurationError, match="every hot wallet is draining"):
        draining_wallets((old,), config)
