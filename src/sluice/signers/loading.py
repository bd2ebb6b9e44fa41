"""The hot wallet signers a network's configuration names, loaded as every process loads them.

The composition root (`sluice.bootstrap`) and `sluice signer` (`sluice.keyholder.server`) both
load keys with these functions, so one configuration means the same wallets, in the same order,
with the same draining ones, wherever it is read.
"""

from __future__ import annotations

from sluice.config import NetworkConfig, Settings
from sluice.domain.addresses import Address
from sluice.errors import ConfigurationError
from sluice.ports import Signer
from sluice.signers.keystore import KeystoreSigner
from sluice.signers.kms import KmsSigner
from sluice.signers.secrets_manager import SecretsManagerSigner

__all__ = ["draining_wallets", "load_signers"]


def load_signers(config: NetworkConfig, settings: Settings) -> tuple[Signer, ...]:
    """The hot wallet signers of a network: the main one first, then ``more_hot_wallet_keystores``.

    The main one is a `KeystoreSigner` (``hot_wallet_keystore``), a `SecretsManagerSigner`
    (``hot_wallet_secret_id``) or a `KmsSigner` (``hot_wallet_kms_key_id``); the AWS ones read
    region, endpoint and credentials from the standard AWS environment.

    Raises:
        ConfigurationError: A key cannot be loaded, the keystore passphrase is not set, or two
            entries name one address.
    """
    signers: list[Signer] = []
    if config.hot_wallet_secret_id is not None:
        signers.append(SecretsManagerSigner.from_secret(config.hot_wallet_secret_id))
    elif config.hot_wallet_kms_key_id is not None:
        signers.append(KmsSigner.from_key_id(config.hot_wallet_kms_key_id))
    if config.keystores:
        if settings.keystore_passphrase is None:
            raise ConfigurationError("SLUICE_KEYSTORE_PASSPHRASE is not set")
        passphrase = settings.keystore_passphrase.get_secret_value()
        signers.extend(KeystoreSigner.from_file(path, passphrase) for path in config.keystores)
    if len({s.address for s in signers}) != len(signers):
        raise ConfigurationError("a hot wallet is configured twice (two entries, one address)")
    return tuple(signers)


def draining_wallets(signers: tuple[Signer, ...], config: NetworkConfig) -> frozenset[Address]:
    """Addresses of the wallets listed in ``draining_hot_wallet_keystores`` (loaded last).

    Raises:
        ConfigurationError: Every wallet of the network drains (withdrawals could not be paid).
    """
    count = len(config.draining_hot_wallet_keystores)
    draining = (
        frozenset(s.address for s in signers[len(signers) - count :]) if count else frozenset()
    )
    if len(draining) == len(signers):
        raise ConfigurationError("every hot wallet is draining: withdrawals could not be paid")
    return draining
