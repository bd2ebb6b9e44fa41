"""A `Signer` whose key comes from an encrypted keystore file (Web3 Secret Storage, version 3).

The decrypted key lives only inside the signer: it is not an attribute anyone should read, it
is not in ``repr``, and the signer refuses to be pickled. Errors name the file, never the
passphrase.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal, NoReturn

from eth_account import Account
from eth_account.signers.local import LocalAccount

from sluice.domain.addresses import Address, parse_address
from sluice.domain.transaction import SignedTransaction, UnsignedTransaction
from sluice.errors import ConfigurationError, InvalidAddressError
from sluice.ports import SigningContext
from sluice.signers.eip1559 import sign_with_account

__all__ = ["KeystoreSigner", "create_keystore", "keystore_address"]

#: Key-derivation functions that `eth_account.Account.encrypt` supports.
Kdf = Literal["scrypt", "pbkdf2"]

_KEYSTORE_MODE = 0o600

# What eth_account / eth_keyfile raise, besides ValueError (a wrong passphrase: "MAC mismatch"),
# for a JSON object that is not a usable V3 keystore.
_MALFORMED_KEYSTORE_ERRORS = (KeyError, TypeError, AttributeError, NotImplementedError)


class KeystoreSigner:
    """Holds one hot wallet's key, decrypted from a keystore file, and signs EIP-1559 transactions
    with it (implements `sluice.ports.Signer`)."""

    __slots__ = ("_account", "_address")

    def __init__(self, account: LocalAccount) -> None:
        self._account = account
        self._address = Address(account.address)

    @classmethod
    def from_file(cls, path: Path, passphrase: str) -> KeystoreSigner:
        """Decrypt a keystore file.

        Raises:
            ConfigurationError: The file cannot be read, is not a V3 keystore, the passphrase is
                wrong, or the key does not match the address the file declares.
        """
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
            raise ConfigurationError(f"cannot read the keystore {path}: {why}") from None
        try:
            keyfile = json.loads(text)
        except ValueError:
            raise ConfigurationError(f"the keystore {path} is not JSON") from None
        if not isinstance(keyfile, dict):
            _not_a_keystore(path)
        try:
            key = Account.decrypt(keyfile, passphrase)
            account = Account.from_key(key)
        except ValueError:
            # `from None`: nothing of the failed decryption (or the passphrase) reaches a traceback.
            raise ConfigurationError(
                f"cannot decrypt the keystore {path}: wrong passphrase or corrupted file"
            ) from None
        except _MALFORMED_KEYSTORE_ERRORS:
            _not_a_keystore(path)
        declared = keyfile.get("address")
        if isinstance(declared, str) and declared.lower().removeprefix("0x") != (
            account.address.lower().removeprefix("0x")
        ):
            raise ConfigurationError(
                f"the keystore {path} declares an address its key does not have"
            )
        return cls(account)

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
        return f"KeystoreSigner(address={self._address!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a KeystoreSigner cannot be pickled or copied: its key stays in memory")


def keystore_address(path: Path) -> Address:
    """The address a keystore file declares, read without its passphrase.

    Raises:
        ConfigurationError: The file cannot be read, is not JSON, or declares no valid address.
    """
    try:
        keyfile = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
        raise ConfigurationError(f"cannot read the keystore {path}: {why}") from None
    except ValueError:
        raise ConfigurationError(f"the keystore {path} is not JSON") from None
    declared = keyfile.get("address") if isinstance(keyfile, dict) else None
    if not isinstance(declared, str):
        raise ConfigurationError(f"the keystore {path} declares no address")
    try:
        return parse_address("0x" + declared.lower().removeprefix("0x"))
    except InvalidAddressError:
        raise ConfigurationError(f"the keystore {path} declares an invalid address") from None


def _not_a_keystore(path: Path) -> NoReturn:
    raise ConfigurationError(f"the keystore {path} is not a Web3 Secret Storage (V3) file")


def create_keystore(
    path: Path,
    passphrase: str,
    *,
    private_key: str | None = None,
    kdf: Kdf = "scrypt",
    iterations: int | None = None,
) -> Address:
    """Encrypt a new key (or ``private_key``) into a keystore file readable only by its owner.

    Parent directories are created (mode 0700). An existing file is never overwritten: it may
    hold the only copy of a key. ``iterations`` is the KDF's work factor (scrypt's ``n``, a power
    of two, or PBKDF2's count); None takes eth_account's default. Tests pass
    ``kdf="pbkdf2", iterations=2`` for speed; never do that for a real key.

    Returns:
        The key's address.

    Raises:
        ConfigurationError: An empty passphrase, an unknown KDF, an invalid private key, or the
            file exists or cannot be written.
    """
    if not passphrase:
        raise ConfigurationError("a keystore passphrase must not be empty")
    if kdf not in {"scrypt", "pbkdf2"}:
        raise ConfigurationError("the keystore KDF must be 'scrypt' or 'pbkdf2'")
    if iterations is not None and iterations < 1:
        raise ConfigurationError("the KDF iterations must be positive")
    try:
        account = Account.from_key(private_key) if private_key is not None else Account.create()
    except (ValueError, TypeError):
        # Not the library's message: it may quote the malformed key.
        raise ConfigurationError("the private key is not a valid secp256k1 key") from None
    keyfile = Account.encrypt(account.key, passphrase, kdf=kdf, iterations=iterations)
    content = json.dumps(keyfile).encode("utf-8")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _KEYSTORE_MODE)
    except FileExistsError:
        raise ConfigurationError(
            f"the keystore {path} exists already; not overwriting it"
        ) from None
    except OSError as exc:
        raise ConfigurationError(f"cannot create the keystore {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(fd, _KEYSTORE_MODE)  # open()'s mode was reduced by the umask, if anything
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise ConfigurationError(f"cannot write the keystore {path}: {exc.strerror}") from None
    return Address(account.address)
