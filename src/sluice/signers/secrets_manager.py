"""A `Signer` whose key is fetched from AWS Secrets Manager once, at start, into memory only.

The secret (by name or ARN, current version) must be a ``SecretString`` in one of two forms:

- the private key as hex: 64 hex digits, with or without ``0x``, surrounding whitespace ignored;
- a JSON object ``{"privateKey": "<hex as above>"}``, optionally with ``"address"``: when
  present, the key must have that address (as a keystore file's declared address is checked).

Binary secrets (``SecretBinary``) are refused. The key then lives only inside the signer (an
eth_account ``LocalAccount`` in a slot): it is not in ``repr``, the signer refuses to be pickled,
and no error message quotes it. Errors name the secret id and the AWS error code, never the
secret's content. Python cannot wipe a string: the fetched text is dropped as soon as the key is
parsed, and is garbage like any other.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final, NoReturn

from eth_account import Account
from eth_account.signers.local import LocalAccount

from sluice.domain.addresses import Address
from sluice.domain.transaction import SignedTransaction, UnsignedTransaction
from sluice.errors import ConfigurationError
from sluice.ports import SigningContext
from sluice.signers.aws import aws_client, aws_errors, describe_failure
from sluice.signers.eip1559 import sign_with_account

__all__ = ["SecretsManagerSigner"]

_HEX_KEY: Final = re.compile(r"(?:0x)?[0-9a-fA-F]{64}")


class SecretsManagerSigner:
    """Holds one hot wallet's key, fetched from AWS Secrets Manager, and signs EIP-1559
    transactions with it (implements `sluice.ports.Signer`)."""

    __slots__ = ("_account", "_address", "_secret_id")

    def __init__(self, account: LocalAccount, *, secret_id: str) -> None:
        self._account = account
        self._address = Address(account.address)
        self._secret_id = secret_id

    @classmethod
    def from_secret(cls, secret_id: str, *, client: Any = None) -> SecretsManagerSigner:
        """Fetch the secret's current version and parse the key (a blocking call, at start).

        ``client``: a botocore Secrets Manager client; by default one from the standard AWS
        environment (`sluice.signers.aws.aws_client`).

        Raises:
            ConfigurationError: The secret cannot be fetched (missing, access denied, AWS
                unreachable), is binary, or does not hold a valid key in an accepted format.
        """
        if client is None:
            client = aws_client("secretsmanager")
        try:
            response = client.get_secret_value(SecretId=secret_id)
        except aws_errors() as exc:
            raise ConfigurationError(
                f"cannot fetch the secret {secret_id} from Secrets Manager: {describe_failure(exc)}"
            ) from None
        text = response.get("SecretString") if isinstance(response, dict) else None
        if not isinstance(text, str):
            raise ConfigurationError(
                f"the secret {secret_id} has no SecretString (binary secrets are not supported)"
            )
        return cls(_account_from_secret(secret_id, text), secret_id=secret_id)

    @property
    def address(self) -> Address:
        """The hot wallet's address, in checksum form."""
        return self._address

    async def sign(
        self, transaction: UnsignedTransaction, context: SigningContext | None = None
    ) -> SignedTransaction:
        """Sign an EIP-1559 (type 2) transaction; the hash is 0x-prefixed lowercase hex.

        The key is in memory: signing is a fraction of a millisecond of CPU, done in place."""
        return sign_with_account(self._account, transaction)

    async def close(self) -> None:
        """Nothing to release (the key stays in memory until the signer is dropped)."""

    def __repr__(self) -> str:
        return f"SecretsManagerSigner(address={self._address!r}, secret_id={self._secret_id!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            "a SecretsManagerSigner cannot be pickled or copied: its key stays in memory"
        )


def _account_from_secret(secret_id: str, text: str) -> LocalAccount:
    """The account of a secret's text. Every error is raised ``from None`` with a message of
    ours: a library's message (or a JSON error's context) may quote the key."""
    stripped = text.strip()
    declared: object = None
    if stripped.startswith("{"):
        try:
            document = json.loads(stripped)
        except ValueError:
            # Not chained: a JSONDecodeError keeps the whole document (the key) in ``doc``.
            raise _malformed(secret_id, "it looks like JSON but does not parse") from None
        if not isinstance(document, dict) or not isinstance(document.get("privateKey"), str):
            raise _malformed(
                secret_id, 'a JSON secret must be an object with a "privateKey" string'
            )
        stripped = document["privateKey"].strip()
        declared = document.get("address")
    if not _HEX_KEY.fullmatch(stripped):
        raise _malformed(secret_id, "the key must be 64 hex digits, optionally 0x-prefixed")
    try:
        account: LocalAccount = Account.from_key(stripped)
    except (ValueError, TypeError):
        raise _malformed(secret_id, "the key is not a valid secp256k1 private key") from None
    if declared is not None and (
        not isinstance(declared, str)
        or declared.lower().removeprefix("0x") != account.address.lower().removeprefix("0x")
    ):
        raise ConfigurationError(
            f"the secret {secret_id} declares an address its key does not have"
        )
    return account


def _malformed(secret_id: str, why: str) -> ConfigurationError:
    return ConfigurationError(f"the secret {secret_id} does not hold a usable private key: {why}")
