"""`sluice config check`: does the configuration match the chains it names, before any payout?

For every network of the networks file: each RPC URL answers, with the configured chain id;
with ``finality = "finalized"``, the node serves the ``finalized`` block tag; each token has
contract code and ``decimals()`` equal to the configured decimals (a wrong one would pay the
wrong amount by orders of magnitude); each batch contract is a BatchPayout owned by its hot
wallet; each hot wallet loads (a keystore decrypts with the
passphrase, a Secrets Manager or KMS key is reachable) and holds native coin for gas and each
token it pays out. Checks of the services beside the chains (database, queue,
signer) come in as `Probe` callables. Every finding is a `Row`; none raises. `HotWalletFinder`
finds each hot wallet as the engine would load it, with the key loaders passed in.

An empty hot wallet is a problem, not a warning: it cannot pay a single withdrawal (and with no
native coin, not even gas). A draining wallet (being retired) may be empty.

When no RPC URL serves the configured chain id, the tokens, the finality tag and the balances
are still read through the first URL that answered, each detail naming the chain it was read on
(the one the RPC serves): one run then names every mistake of a network (a wrong chain id and
wrong token decimals, say), not the first only.
"""

from __future__ import annotations

import asyncio
import enum
import shlex
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from pydantic import SecretStr

from sluice.chains.batch_contract import verify_batch_contract
from sluice.config import NetworkConfig, TokenConfig
from sluice.domain.addresses import Address
from sluice.domain.amounts import format_amount
from sluice.domain.fees import Finality
from sluice.errors import ConfigurationError, SluiceError
from sluice.ports import Signer

__all__ = [
    "ChainProbe",
    "ConfigChecker",
    "HeldWallet",
    "HotWalletFinder",
    "KeyLoaders",
    "Outcome",
    "Probe",
    "Row",
    "Wallet",
    "WalletFinder",
    "redacted",
]


class Outcome(enum.StrEnum):
    """How one check ended."""

    OK = "ok"
    PROBLEM = "problem"
    SKIPPED = "skipped"
    """Not checked, because something it needs failed (that failure is a row of its own)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One finding: what was checked, on what, how it ended, and why."""

    check: str
    target: str
    result: Outcome
    detail: str

    @property
    def ok(self) -> bool:
        """False for a problem only."""
        return self.result is not Outcome.PROBLEM

    def as_dict(self) -> dict[str, str]:
        """The row as JSON-ready strings."""
        return {
            "check": self.check,
            "target": self.target,
            "result": self.result.value,
            "detail": self.detail,
        }


class ChainProbe(Protocol):
    """What the check asks one RPC endpoint (`sluice.chains.evm.EvmChainClient` answers it)."""

    async def chain_id(self) -> int:
        """The chain id the node reports."""
        ...

    async def block_number(self) -> int:
        """The latest block number."""
        ...

    async def finalized_block(self) -> int:
        """The latest block the node calls ``finalized``."""
        ...

    async def code_size(self, address: Address) -> int:
        """Bytes of contract code at an address."""
        ...

    async def balance(self, address: Address) -> int:
        """Native balance in base units."""
        ...

    async def token_balance(self, token: Address, holder: Address) -> int:
        """An ERC-20 balance in base units."""
        ...

    async def code(self, address: Address) -> bytes:
        """The contract code at an address."""
        ...

    async def call(self, to: Address, data: bytes) -> bytes:
        """What a read-only call returns."""
        ...

    async def token_decimals(self, token: Address) -> int:
        """An ERC-20 token's ``decimals()``."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True, slots=True)
class Wallet:
    """A configured hot wallet as found: its address (None if not even that could be read) and
    what, if anything, keeps it from signing."""

    source: str
    """Where its key is: ``keystore /path``, ``Secrets Manager secret …``, ``KMS key …``,
    ``sluice signer``."""
    address: Address | None
    problem: str | None = None
    draining: bool = False


#: Finds the hot wallets of one network (name, configuration); never raises for one wallet.
WalletFinder = Callable[[str, NetworkConfig], Awaitable[Sequence[Wallet]]]


class HeldWallet(Protocol):
    """A hot wallet `sluice signer` says it holds (`sluice.keyholder.protocol.WalletOut`)."""

    @property
    def network(self) -> str:
        """The network's name."""
        ...

    @property
    def address(self) -> str:
        """The wallet's address."""
        ...

    @property
    def draining(self) -> bool:
        """Whether the wallet is being retired."""
        ...


@dataclass(frozen=True, slots=True)
class KeyLoaders:
    """How each kind of hot wallet key is loaded (blocking calls: they run in a thread).

    Each raises `ConfigurationError` for a key that cannot be loaded.
    """

    from_secret: Callable[[str], Signer]
    """A signer from an AWS Secrets Manager secret id."""
    from_kms_key: Callable[[str], Signer]
    """A signer from an AWS KMS key id."""
    from_keystore: Callable[[Path, str], Signer]
    """A signer from a keystore file and its passphrase."""
    keystore_address: Callable[[Path], Address]
    """The address a keystore file declares, read without its passphrase."""


def _no_dev_passphrase() -> Path | None:
    return None


class HotWalletFinder:
    """Every hot wallet of a network, loaded as the engine would load it (a `WalletFinder`).

    A wallet that cannot be loaded is a `Wallet` with its problem, never an exception. With
    ``held`` (the keys are in `sluice signer`), the wallets are the signer's list.
    """

    def __init__(
        self,
        keys: KeyLoaders,
        *,
        passphrase: SecretStr | None,
        held: Callable[[], Sequence[HeldWallet]] | None = None,
        dev_passphrase_file: Callable[[], Path | None] = _no_dev_passphrase,
    ) -> None:
        """``held``: the wallets `sluice signer` holds (a blocking call), when the keys are
        there. ``dev_passphrase_file``: the file where `sluice dev` keeps the passphrase it
        generated, if the data directory holds one (named in a problem, never read: which
        passphrase to use is the operator's choice)."""
        self._keys = keys
        self._passphrase = passphrase
        self._held = held
        self._dev_passphrase_file = dev_passphrase_file

    async def __call__(self, name: str, config: NetworkConfig) -> list[Wallet]:
        """The hot wallets of network ``name``, in the order the engine loads them."""
        if self._held is not None:
            return await self._signer_wallets(name, self._held)
        wallets: list[Wallet] = []
        if config.hot_wallet_secret_id is not None:
            source = f"Secrets Manager secret {config.hot_wallet_secret_id}"
            wallets.append(
                await self._loaded(source, self._keys.from_secret, config.hot_wallet_secret_id)
            )
        elif config.hot_wallet_kms_key_id is not None:
            source = f"KMS key {config.hot_wallet_kms_key_id}"
            wallets.append(
                await self._loaded(source, self._keys.from_kms_key, config.hot_wallet_kms_key_id)
            )
        draining = set(config.draining_hot_wallet_keystores)
        for path in config.keystores:
            # Reading and decrypting a keystore blocks (the KDF is slow on purpose): in a thread.
            wallets.append(await asyncio.to_thread(self._keystore, path, path in draining))
        return wallets

    @staticmethod
    async def _signer_wallets(name: str, held: Callable[[], Sequence[HeldWallet]]) -> list[Wallet]:
        try:
            wallets = [w for w in await asyncio.to_thread(held) if w.network == name]
        except SluiceError as exc:
            return [Wallet("sluice signer", None, exc.detail)]
        if not wallets:
            return [Wallet("sluice signer", None, f"holds no hot wallet for {name}")]
        return [Wallet("sluice signer", Address(w.address), draining=w.draining) for w in wallets]

    @staticmethod
    async def _loaded(source: str, load: Callable[[str], Signer], key: str) -> Wallet:
        """A wallet whose signer is made from a key id (AWS: a blocking call, in a thread)."""
        try:
            signer = await asyncio.to_thread(load, key)
        except ConfigurationError as exc:
            return Wallet(source, None, exc.detail)
        return Wallet(source, signer.address)

    def _keystore(self, path: Path, draining: bool) -> Wallet:
        source = f"keystore {path.resolve()}"
        try:
            address = self._keys.keystore_address(path)
        except ConfigurationError as exc:
            return Wallet(source, None, exc.detail, draining=draining)
        problem = None
        if self._passphrase is None:
            problem = "SLUICE_KEYSTORE_PASSPHRASE is not set: the key cannot be decrypted"
            problem += self._dev_passphrase_hint()
        else:
            try:
                signer = self._keys.from_keystore(path, self._passphrase.get_secret_value())
            except ConfigurationError as exc:
                problem = exc.detail
            else:
                address = signer.address
                source = f"{source}, decrypts with SLUICE_KEYSTORE_PASSPHRASE"
        return Wallet(source, address, problem, draining=draining)

    def _dev_passphrase_hint(self) -> str:
        """How to use the passphrase `sluice dev` generated, if there is one."""
        found = self._dev_passphrase_file()
        if found is None:
            return ""
        path = found.resolve()
        return (
            f"; sluice dev keeps its passphrase in {path}:"
            f' export SLUICE_KEYSTORE_PASSPHRASE="$(cat {shlex.quote(str(path))})"'
        )


@dataclass(frozen=True, slots=True)
class Probe:
    """A check of a service beside the chains: ``run`` returns a detail, or raises."""

    check: str
    target: str
    run: Callable[[], Awaitable[str]]


def redacted(url: str) -> str:
    """``scheme://host[:port]`` of a URL: RPC URLs often carry a provider key in the path."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "(malformed URL)"
    if not parts.scheme or not parts.hostname:
        return "(malformed URL)"
    return f"{parts.scheme}://{parts.hostname}" + (f":{port}" if port is not None else "")


def _why(exc: BaseException) -> str:
    """One line about a failure, never a traceback."""
    detail = getattr(exc, "detail", None)
    text = detail if isinstance(detail, str) else str(exc)
    text = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return text[:200]


@dataclass(frozen=True, slots=True)
class _Chain:
    """The endpoint a network's other checks read through, and the chain it serves."""

    probe: ChainProbe
    chain_id: int
    configured: bool
    """Whether ``chain_id`` is the configured one (else the first URL that answered at all)."""

    @property
    def note(self) -> str:
        """What a detail read on another chain than the configured one says about it."""
        return "" if self.configured else f" (read on chain {self.chain_id}, which the RPC serves)"


class ConfigChecker:
    """Runs every check and returns the rows, in the order of the configuration."""

    def __init__(
        self,
        *,
        probe: Callable[[str], ChainProbe],
        wallets: WalletFinder,
        services: Sequence[Probe] = (),
    ) -> None:
        """``probe`` makes a client for one RPC URL (it may raise for a malformed one)."""
        self._probe = probe
        self._wallets = wallets
        self._services = services

    async def run(self, networks: Mapping[str, NetworkConfig]) -> list[Row]:
        """Every row: the services first, then each network (networks are checked at once)."""
        rows = [await self._service(probe) for probe in self._services]
        per_network = await asyncio.gather(
            *(self._network(name, config) for name, config in networks.items())
        )
        for network_rows in per_network:
            rows.extend(network_rows)
        return rows

    @staticmethod
    async def _service(probe: Probe) -> Row:
        try:
            detail = await probe.run()
        except Exception as exc:  # every failure is a row (here and below), never a traceback
            return Row(probe.check, probe.target, Outcome.PROBLEM, _why(exc))
        return Row(probe.check, probe.target, Outcome.OK, detail)

    async def _network(self, name: str, config: NetworkConfig) -> list[Row]:
        rows: list[Row] = []
        chain = await self._endpoints(name, config, rows)
        try:
            if config.finality is Finality.FINALIZED:
                rows.append(await self._finality(name, config, chain))
            for token in config.tokens:
                rows.append(await self._token(name, config, token, chain))
            if config.batching.enabled:
                for owner, contract in config.batching.contracts.items():
                    rows.append(await self._batch_contract(name, owner, contract, chain))
            try:
                wallets = list(await self._wallets(name, config))
            except Exception as exc:
                rows.append(Row("hot wallet", name, Outcome.PROBLEM, _why(exc)))
                wallets = []
            seen: set[Address] = set()
            for wallet in wallets:
                rows.append(self._wallet_row(name, wallet, seen))
                if wallet.address is not None:
                    rows.extend(
                        await self._balances(name, config, wallet.address, wallet.draining, chain)
                    )
        finally:
            if chain is not None:
                await chain.probe.close()
        return rows

    async def _endpoints(self, name: str, config: NetworkConfig, rows: list[Row]) -> _Chain | None:
        """A row per RPC URL; the first one that answers with the right chain id, kept open, else
        the first one that answered at all (on another chain)."""
        chosen: _Chain | None = None
        fallback: _Chain | None = None
        for number, url in enumerate(config.rpc_urls, start=1):
            target = f"{name} #{number} {redacted(url)}"
            try:
                chain = self._probe(url)
            except Exception as exc:
                rows.append(Row("rpc", target, Outcome.PROBLEM, _why(exc)))
                continue
            try:
                chain_id = await chain.chain_id()
            except Exception as exc:
                rows.append(Row("rpc", target, Outcome.PROBLEM, f"unreachable: {_why(exc)}"))
                await chain.close()
                continue
            if chain_id != config.chain_id:
                rows.append(
                    Row(
                        "rpc",
                        target,
                        Outcome.PROBLEM,
                        f"chain id {chain_id}, configured {config.chain_id}",
                    )
                )
                if fallback is None and chosen is None:
                    fallback = _Chain(chain, chain_id, configured=False)
                else:
                    await chain.close()
                continue
            rows.append(Row("rpc", target, Outcome.OK, f"chain id {chain_id}"))
            if chosen is None:
                chosen = _Chain(chain, chain_id, configured=True)
                if fallback is not None:
                    await fallback.probe.close()
                    fallback = None
            else:
                await chain.close()
        return chosen or fallback

    async def _finality(self, name: str, config: NetworkConfig, chain: _Chain | None) -> Row:
        """``finality = "finalized"`` needs a node that serves the ``finalized`` block tag."""
        if chain is None:
            return Row("finality", name, Outcome.SKIPPED, self._no_chain(config))
        try:
            finalized = await chain.probe.finalized_block()
            head = await chain.probe.block_number()
        except Exception as exc:
            return Row(
                "finality",
                name,
                Outcome.PROBLEM,
                f"the node does not serve the finalized block tag: {_why(exc)}{chain.note}",
            )
        behind = f"finalized block {finalized}, {head - finalized} behind{chain.note}"
        return Row("finality", name, Outcome.OK, behind)

    @staticmethod
    def _no_chain(config: NetworkConfig) -> str:
        return f"no RPC URL answered with chain id {config.chain_id}"

    async def _token(
        self, name: str, config: NetworkConfig, token: TokenConfig, chain: _Chain | None
    ) -> Row:
        target = f"{name} {token.symbol} {token.address}"
        if chain is None:
            return Row("token", target, Outcome.SKIPPED, self._no_chain(config))
        address = Address(token.address)
        note = chain.note
        try:
            code_size = await chain.probe.code_size(address)
        except Exception as exc:
            return Row("token", target, Outcome.PROBLEM, f"eth_getCode failed: {_why(exc)}{note}")
        if code_size == 0:
            where = f"chain {chain.chain_id}" + (
                "" if chain.configured else ", which the RPC serves"
            )
            return Row("token", target, Outcome.PROBLEM, f"no contract at this address on {where}")
        try:
            decimals = await chain.probe.token_decimals(address)
        except Exception as exc:
            return Row("token", target, Outcome.PROBLEM, f"decimals() failed: {_why(exc)}{note}")
        if decimals != token.decimals:
            return Row(
                "token",
                target,
                Outcome.PROBLEM,
                f"decimals() is {decimals}, configured {token.decimals}{note}",
            )
        return Row("token", target, Outcome.OK, f"decimals {decimals}{note}")

    async def _batch_contract(
        self, name: str, wallet: str, contract: str, chain: _Chain | None
    ) -> Row:
        target = f"{name} {contract}"
        if chain is None:
            return Row("batch contract", target, Outcome.SKIPPED, "no RPC URL answered")
        try:
            why = await verify_batch_contract(chain.probe, Address(contract), Address(wallet))
        except Exception as exc:
            return Row("batch contract", target, Outcome.PROBLEM, f"{_why(exc)}{chain.note}")
        if why is not None:
            return Row("batch contract", target, Outcome.PROBLEM, f"{why}{chain.note}")
        return Row("batch contract", target, Outcome.OK, f"BatchPayout of {wallet}{chain.note}")

    @staticmethod
    def _wallet_row(name: str, wallet: Wallet, seen: set[Address]) -> Row:
        target = f"{name} {wallet.address or '(unknown address)'}"
        role = " (draining)" if wallet.draining else ""
        if wallet.problem is not None:
            return Row("hot wallet", target, Outcome.PROBLEM, f"{wallet.source}: {wallet.problem}")
        if wallet.address in seen:
            return Row("hot wallet", target, Outcome.PROBLEM, f"{wallet.source}: configured twice")
        if wallet.address is not None:
            seen.add(wallet.address)
        return Row("hot wallet", target, Outcome.OK, f"{wallet.source}{role}")

    async def _balances(
        self,
        name: str,
        config: NetworkConfig,
        holder: Address,
        draining: bool,
        chain: _Chain | None,
    ) -> list[Row]:
        assets: list[tuple[str, int, Address | None]] = [
            (config.native_symbol, config.native_decimals, None),
            *((t.symbol, t.decimals, Address(t.address)) for t in config.tokens),
        ]
        rows: list[Row] = []
        for symbol, decimals, token in assets:
            target = f"{name} {holder} {symbol}"
            if chain is None:
                rows.append(Row("balance", target, Outcome.SKIPPED, self._no_chain(config)))
                continue
            try:
                amount = (
                    await chain.probe.balance(holder)
                    if token is None
                    else await chain.probe.token_balance(token, holder)
                )
            except Exception as exc:
                rows.append(Row("balance", target, Outcome.PROBLEM, _why(exc) + chain.note))
                continue
            shown = f"{format_amount(amount, decimals)} {symbol}"
            if amount == 0 and not draining:
                why = "no gas for any transaction" if token is None else f"it cannot pay {symbol}"
                rows.append(Row("balance", target, Outcome.PROBLEM, f"{shown}: {why}{chain.note}"))
            else:
                rows.append(Row("balance", target, Outcome.OK, shown + chain.note))
        return rows
