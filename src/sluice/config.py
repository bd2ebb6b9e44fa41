"""Configuration: environment variables (prefix ``SLUICE_``) and a networks file.

One `Settings` object is built at the entry point and passed down; nothing imports a global.
Secrets (the keystore passphrase) come from the environment only and are held as `SecretStr`.
"""

from __future__ import annotations

import tomllib
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from sluice.domain.addresses import Address, parse_address
from sluice.domain.amounts import parse_amount
from sluice.domain.assets import Asset, Batching, Explorer, Network
from sluice.domain.fees import GWEI, FeeLevel, FeeModel, FeePolicy, Finality
from sluice.domain.pauses import CircuitBreaker, parse_window
from sluice.domain.presets import preset
from sluice.errors import ConfigurationError, InvalidAddressError, InvalidAmountError


class TokenConfig(BaseModel):
    """An ERC-20 token a network pays out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: Annotated[str, Field(min_length=1, max_length=16)]
    address: str
    decimals: Annotated[int, Field(ge=0, le=36)]

    @field_validator("address")
    @classmethod
    def _checksum(cls, value: str) -> str:
        try:
            return parse_address(value)
        except InvalidAddressError as exc:
            raise ValueError(exc.detail) from exc


class BatchingConfig(BaseModel):
    """``[networks.<name>.batching]``: how payouts share one transaction (docs/batching.md).

    Batching needs a ``BatchPayout`` contract per hot wallet (``sluice contracts deploy``);
    a wallet without one pays each withdrawal on its own.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    """False: every withdrawal of the network is paid by its own transaction."""
    max_size: Annotated[int, Field(ge=2, le=500)] = 100
    """The most withdrawals one transaction pays."""
    window_s: Annotated[float, Field(ge=0, le=600)] | None = None
    """How long a withdrawal ready to be signed waits for others to join it; None: the
    network's block time, between 1 and 12 s."""
    contracts: dict[str, str] = Field(default_factory=dict)
    """Each hot wallet's batch contract: ``{ "0xWallet…" = "0xContract…" }``."""

    @field_validator("contracts")
    @classmethod
    def _addresses(cls, value: dict[str, str]) -> dict[str, str]:
        checked: dict[str, str] = {}
        for wallet, contract in value.items():
            try:
                checked[parse_address(wallet)] = parse_address(contract)
            except InvalidAddressError as exc:
                raise ValueError(exc.detail) from None
        return checked

    def to_domain(self, block_time_s: float) -> Batching:
        """The domain's view, the window defaulting to the block time."""
        window = self.window_s if self.window_s is not None else min(max(block_time_s, 1.0), 12.0)
        return Batching(
            contracts=tuple((Address(w), Address(c)) for w, c in self.contracts.items()),
            enabled=self.enabled,
            max_size=self.max_size,
            window_s=window,
        )


class CircuitBreakerConfig(BaseModel):
    """``[networks.<name>.circuit_breaker]``: pause the network's automatic signing when an
    asset's outflow over a rolling window would pass its limit (docs/circuit-breaker.md).

    ``max_outflow`` names assets by symbol, each limit in token units as a decimal string
    (``{ ETH = "50", USDC = "250000" }``): never a float, whose binary value is not the
    decimal written. An asset not named has no limit.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: Annotated[int, BeforeValidator(parse_window)]
    """Seconds, or a duration such as ``"1h"``, ``"30m"``, ``"1d"`` (at most 7 days)."""
    max_outflow: dict[str, str] = Field(min_length=1)
    """Asset symbol → the most its payouts signed within the window may add up to."""

    @field_validator("max_outflow", mode="before")
    @classmethod
    def _decimal_strings(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for symbol, limit in value.items():
                if not isinstance(limit, str):
                    raise ValueError(
                        f'{symbol}: the limit must be a decimal string such as "50" (not '
                        f"{type(limit).__name__} {limit!r})"
                    )
        return value

    def to_domain(self, assets: dict[str, Asset]) -> CircuitBreaker:
        """The domain's view: limits by asset key, in base units.

        Raises:
            ValueError: A symbol is not one of the network's assets, or a limit is not a
                positive decimal within the asset's decimals (the message names it).
        """
        limits: dict[str, int] = {}
        for symbol, text in self.max_outflow.items():
            asset = assets.get(symbol)
            if asset is None:
                raise ValueError(
                    f"circuit_breaker.max_outflow.{symbol}: not an asset of this network (its "
                    f"assets: {', '.join(assets)})"
                )
            try:
                limits[asset.key] = parse_amount(text, asset.decimals)
            except InvalidAmountError as exc:
                raise ValueError(
                    f"circuit_breaker.max_outflow.{symbol}: {exc.detail.replace('amount', 'limit')}"
                ) from None
        return CircuitBreaker(window_s=self.window, limits=limits)


#: The network settings a preset supplies when the networks file leaves them out (the fee
#: settings are resolved apart, by `NetworkConfig.fee_policy`).
_FROM_PRESET = (
    "chain_id",
    "native_symbol",
    "native_decimals",
    "confirmations",
    "finality",
    "display_name",
    "block_time_s",
    "l1_fee_oracle",
)


def _gwei(value: object) -> Decimal:
    """A gwei amount from the networks file: an integer, or a decimal string for fractions
    (``"0.05"``), never a float (TOML's 0.05 is binary and not exactly 0.05 gwei)."""
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError('gwei must be an integer or a decimal string such as "0.05"')
    else:
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number of gwei") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError("gwei must be a finite amount, zero or more")
    if (amount * GWEI) % 1 != 0:
        raise ValueError(f"{value} gwei is not a whole number of wei (9 decimal places at most)")
    return amount


#: Gwei per gas, exact: an integer or a decimal string in the file, a Decimal here.
Gwei = Annotated[Decimal, BeforeValidator(_gwei)]
Percent = Annotated[int, Field(ge=0, le=100)]
Multiple = Annotated[int, Field(ge=1, le=10_000)]


def _wei(gwei: Decimal) -> int:
    return int(gwei * GWEI)


class NetworkConfig(BaseModel):
    """One EVM network: where its node is, how deep to wait, which assets and hot wallet.

    ``preset = "<name>"`` takes everything that is not the operator's from a built-in network
    (`sluice.domain.presets`): the fields below then hold the preset's values unless the file
    sets them. Without a preset the network is a custom EVM network and ``chain_id`` is
    required. The fee settings (``max_fee_gwei`` … ``gas_price_percent``) hold only what the
    file says; `fee_policy` combines them with the preset's (or the defaults). docs/networks.md
    describes every key.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: str | None = None
    """A built-in network this one is (docs/networks.md); None: a custom network."""
    chain_id: Annotated[int, Field(gt=0)]
    rpc_urls: Annotated[list[str], Field(min_length=1)]
    confirmations: Annotated[int, Field(ge=1, le=1000)] = 12
    poll_interval_s: Annotated[float, Field(gt=0, le=600)] = 2.0
    """How often confirmation looks again; with a preset: its block time, at least 1 s."""
    native_symbol: str = "ETH"
    native_decimals: Annotated[int, Field(ge=0, le=36)] = 18
    display_name: Annotated[str, Field(max_length=64)] = ""
    block_time_s: Annotated[float, Field(gt=0, le=600)] | None = None
    """Typical seconds between blocks; None: the poll interval."""
    explorer_transaction_url: str | None = None
    """A block explorer's transaction page, ``{hash}`` standing for the hash (with a preset:
    the preset's explorer unless set)."""
    explorer_address_url: str | None = None
    """The same explorer's address page, ``{address}`` standing for the address."""
    l1_fee_oracle: str | None = None
    """An OP Stack chain's GasPriceOracle (the presets set it for OP Mainnet and Base)."""
    hot_wallet_keystore: Path | None = None
    """The main hot wallet as a keystore file (passphrase: ``SLUICE_KEYSTORE_PASSPHRASE``).
    Exactly one of ``hot_wallet_keystore``, ``hot_wallet_secret_id`` and
    ``hot_wallet_kms_key_id`` is required (docs/security.md, "Signers")."""
    hot_wallet_secret_id: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
    """The main hot wallet's key in AWS Secrets Manager (secret name or ARN), fetched at start."""
    hot_wallet_kms_key_id: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
    """The main hot wallet as an AWS KMS ``ECC_SECG_P256K1`` key (key id, ARN or ``alias/…``)."""
    more_hot_wallet_keystores: list[Path] = Field(default_factory=list)
    """Further hot wallets sharing the network's load (same passphrase): each withdrawal goes to
    the one with the fewest transactions in flight that can pay it."""
    draining_hot_wallet_keystores: list[Path] = Field(default_factory=list)
    """Hot wallets being retired (same passphrase): they finish what they have in flight
    (replacements, cancels, gap fillers) but take no new withdrawals (docs/security.md)."""
    preset_tokens: list[str] | None = None
    """Which of the preset's tokens to serve, by symbol; None: all of them."""
    tokens: list[TokenConfig] = Field(default_factory=list)
    """Every token served: the preset's chosen ones first, then the file's own."""
    finality: Finality = Finality.DEPTH
    """``depth``: settle after ``confirmations`` blocks; ``finalized``: when the node's
    ``finalized`` tag reaches the block (networks with finality, such as Ethereum)."""
    fee_model: FeeModel | None = None
    """``eip1559`` or ``legacy`` (type 0 transactions at one gas price)."""
    max_fee_gwei: Annotated[Gwei, Field(gt=0, le=1_000_000)] | None = None
    """The highest fee cap (base fee + tip; legacy: gas price) any attempt may offer, in gwei
    per gas (default without a preset: 500)."""
    max_tip_gwei: Gwei | None = None
    """The highest tip any attempt may offer; unset: only ``max_fee_gwei`` bounds it."""
    min_tip_gwei: Gwei | None = None
    """The least tip a first attempt offers (Polygon's validators refuse less than 25 gwei)."""
    min_gas_price_gwei: Gwei | None = None
    """The least gas price a legacy first attempt offers (``"0.05"`` on BNB Smart Chain)."""
    default_priority: FeeLevel | None = None
    """The fee level of a withdrawal that names none: ``slow``, ``normal`` or ``fast``."""
    fee_percentiles: tuple[Percent, Percent, Percent] | None = None
    """The ``eth_feeHistory`` reward percentile of each level, slow to fast (EIP-1559)."""
    gas_price_percent: tuple[Multiple, Multiple, Multiple] | None = None
    """Each level's multiple of ``eth_gasPrice``, in percent, slow to fast (legacy)."""
    fee_bump_percent: Annotated[int, Field(ge=10, le=1000)] | None = None
    """How much a replacement of a stuck transaction raises its fees, at least (default 20)."""
    stuck_after_s: Annotated[float, Field(gt=0, le=86_400)] | None = None
    """How long a transaction may wait for a receipt before it is replaced or re-sent."""
    max_in_flight: Annotated[int, Field(ge=1, le=10_000)] = 16
    """Transactions one hot wallet may have between signing and finality."""
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    """How payouts share transactions (`BatchingConfig`)."""
    circuit_breaker: CircuitBreakerConfig | None = None
    """Each asset's most outflow over a rolling window (`CircuitBreakerConfig`); none: no
    breaker."""

    @model_validator(mode="before")
    @classmethod
    def _from_preset(cls, data: Any) -> Any:
        """Fill what the file leaves out from its preset, and put the preset's tokens first."""
        if not isinstance(data, dict) or not isinstance(data.get("preset"), str):
            if isinstance(data, dict) and data.get("preset_tokens") is not None:
                raise ValueError("preset_tokens needs a preset")
            return data
        try:
            base = preset(data["preset"])
            chosen = data.get("preset_tokens")
            symbols = (
                [t.symbol for t in base.tokens]
                if not isinstance(chosen, list)
                else [str(symbol) for symbol in chosen]
            )
            tokens = [base.token(symbol) for symbol in dict.fromkeys(symbols)]
        except ConfigurationError as exc:
            raise ValueError(exc.detail) from None
        values = dict(data)
        for key in _FROM_PRESET:
            values.setdefault(key, getattr(base, key))
        values.setdefault("explorer_transaction_url", base.explorer.transaction)
        values.setdefault("explorer_address_url", base.explorer.address)
        block_time = values["block_time_s"]
        if "poll_interval_s" not in values and isinstance(block_time, int | float):
            values["poll_interval_s"] = max(1.0, float(block_time))
        custom = values.get("tokens", [])
        if isinstance(custom, list):
            taken = {t.symbol for t in base.tokens}
            for token in custom:
                symbol = token.get("symbol") if isinstance(token, dict) else None
                if symbol in taken:
                    raise ValueError(
                        f"token {symbol} is one of preset {base.name}'s tokens: choose it with "
                        "preset_tokens, or give the custom token another symbol"
                    )
            values["tokens"] = [
                {"symbol": t.symbol, "address": t.address, "decimals": t.decimals} for t in tokens
            ] + custom
        return values

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.preset is not None and self.chain_id != preset(self.preset).chain_id:
            raise ValueError(
                f"chain_id {self.chain_id} contradicts preset {self.preset}, whose chain id is "
                f"{preset(self.preset).chain_id}"
            )
        if self.l1_fee_oracle is not None:
            try:
                parse_address(self.l1_fee_oracle)
            except InvalidAddressError as exc:
                raise ValueError(f"l1_fee_oracle: {exc.detail}") from None
        for key, placeholder in (
            ("explorer_transaction_url", "{hash}"),
            ("explorer_address_url", "{address}"),
        ):
            template = getattr(self, key)
            if template is not None and placeholder not in template:
                raise ValueError(f"{key} must contain {placeholder}")
        if (self.explorer_transaction_url is None) != (self.explorer_address_url is None):
            raise ValueError("explorer_transaction_url and explorer_address_url go together")
        try:
            self.fee_policy()
        except ValueError as exc:
            raise ValueError(f"fee settings: {exc}") from None
        if self.circuit_breaker is not None:
            self.circuit_breaker.to_domain(self._assets("checking"))
        return self

    def _assets(self, name: str) -> dict[str, Asset]:
        """The network's assets by symbol, the native coin first."""
        native = Asset(network=name, symbol=self.native_symbol, decimals=self.native_decimals)
        tokens = [
            Asset(
                network=name, symbol=t.symbol, decimals=t.decimals, token_address=Address(t.address)
            )
            for t in self.tokens
        ]
        return {a.symbol: a for a in (native, *tokens)}

    @model_validator(mode="after")
    def _one_main_hot_wallet(self) -> Self:
        chosen = [
            name
            for name in ("hot_wallet_keystore", "hot_wallet_secret_id", "hot_wallet_kms_key_id")
            if getattr(self, name) is not None
        ]
        if len(chosen) != 1:
            raise ValueError(
                "exactly one of hot_wallet_keystore, hot_wallet_secret_id and "
                f"hot_wallet_kms_key_id is required (found {len(chosen)})"
            )
        return self

    @property
    def keystores(self) -> list[Path]:
        """Every hot wallet keystore of the network, the main one first (if it is one)."""
        main = [] if self.hot_wallet_keystore is None else [self.hot_wallet_keystore]
        return [*main, *self.more_hot_wallet_keystores, *self.draining_hot_wallet_keystores]

    def fee_policy(self) -> FeePolicy:
        """The network's fee policy: the preset's (or the defaults), with the file's overrides.

        Raises:
            ValueError: The settings contradict each other (percentiles out of order…).
        """
        base = FeePolicy() if self.preset is None else preset(self.preset).fees
        changes: dict[str, Any] = {}
        if self.fee_model is not None:
            changes["model"] = self.fee_model
        for key, gwei in (
            ("max_fee_per_gas", self.max_fee_gwei),
            ("max_tip_per_gas", self.max_tip_gwei),
            ("min_tip_per_gas", self.min_tip_gwei),
            ("min_gas_price", self.min_gas_price_gwei),
        ):
            if gwei is not None:
                changes[key] = _wei(gwei)
        for key, value in (
            ("default_level", self.default_priority),
            ("percentiles", self.fee_percentiles),
            ("gas_price_percent", self.gas_price_percent),
            ("bump_percent", self.fee_bump_percent),
            ("stuck_after_s", self.stuck_after_s),
        ):
            if value is not None:
                changes[key] = value
        return replace(base, **changes)

    def to_domain(self, name: str, hot_wallets: tuple[Address, ...] = ()) -> Network:
        """The domain's view of this network."""
        explorer = (
            None
            if self.explorer_transaction_url is None or self.explorer_address_url is None
            else Explorer(
                transaction=self.explorer_transaction_url, address=self.explorer_address_url
            )
        )
        return Network(
            name=name,
            chain_id=self.chain_id,
            native=Asset(network=name, symbol=self.native_symbol, decimals=self.native_decimals),
            tokens=tuple(
                Asset(
                    network=name,
                    symbol=t.symbol,
                    decimals=t.decimals,
                    token_address=Address(t.address),
                )
                for t in self.tokens
            ),
            confirmations=self.confirmations,
            poll_interval_s=self.poll_interval_s,
            hot_wallets=hot_wallets,
            finality=self.finality,
            fees=self.fee_policy(),
            max_in_flight=self.max_in_flight,
            display_name=self.display_name,
            preset=self.preset,
            block_time_s=self.block_time_s or self.poll_interval_s,
            explorer=explorer,
            l1_fee_oracle=None if self.l1_fee_oracle is None else parse_address(self.l1_fee_oracle),
            fixed_transfer_gas=True
            if self.preset is None
            else preset(self.preset).fixed_transfer_gas,
            batching=self.batching.to_domain(self.block_time_s or self.poll_interval_s),
            circuit_breaker=None
            if self.circuit_breaker is None
            else self.circuit_breaker.to_domain(self._assets(name)),
        )


class NetworksFile(BaseModel):
    """The networks file: ``[networks.<name>]`` tables."""

    model_config = ConfigDict(extra="forbid")

    networks: dict[str, NetworkConfig]

    @model_validator(mode="after")
    def _one_network_per_chain(self) -> Self:
        seen: dict[int, str] = {}
        for name, network in self.networks.items():
            if network.chain_id in seen:
                raise ValueError(
                    f"networks {seen[network.chain_id]} and {name} both have chain id "
                    f"{network.chain_id}"
                )
            seen[network.chain_id] = name
        return self


def load_networks(path: Path) -> dict[str, NetworkConfig]:
    """Read and validate a networks TOML file.

    Raises:
        ConfigurationError: The file is missing or invalid.
    """
    where = path.resolve()  # absolute: the reader sees which directory was used
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        return NetworksFile.model_validate(raw).networks
    except FileNotFoundError as exc:
        raise ConfigurationError(
            f"networks file {where} does not exist (SLUICE_NETWORKS_FILE, SLUICE_DATA_DIR)"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"networks file {where} is not valid TOML: {exc}") from exc
    except ValidationError as exc:
        raise ConfigurationError(f"networks file {where} is invalid: {_one_line(exc)}") from exc


def _one_line(exc: ValidationError) -> str:
    """Each problem as ``where: what``, on one line (pydantic's own text spans several)."""
    problems = []
    for error in exc.errors():
        # A validator's own message reads best without pydantic's "Value error, " prefix; a
        # problem of the whole file (two networks, one chain id) needs no location.
        message = error["msg"].removeprefix("Value error, ")
        where = ".".join(str(part) for part in error["loc"])
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


#: Where everything local lives unless a setting names another place (``SLUICE_DATA_DIR``).
DEFAULT_DATA_DIR = Path(".sluice")


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy async URL of a SQLite file."""
    return f"sqlite+aiosqlite:///{path}"


class Settings(BaseSettings):
    """Everything Sluice reads from the environment.

    ``data_dir`` (``SLUICE_DATA_DIR``) is where everything local lives unless set on its own: the
    SQLite database (``<data_dir>/sluice.db``), the networks file (``<data_dir>/networks.toml``),
    `sluice dev`'s ``dev.json`` and chain state, `sluice signer`'s own database. Every command
    reads the same settings, so each finds what the others made.
    """

    model_config = SettingsConfigDict(env_prefix="SLUICE_", extra="ignore")

    database_url: str = sqlite_url(DEFAULT_DATA_DIR / "sluice.db")
    """SQLAlchemy async URL: SQLite or PostgreSQL (postgresql+asyncpg://…); default: SQLite
    ``<data_dir>/sluice.db``."""
    queue_url: str = "memory://"
    """Where work is queued; ``memory://`` keeps it in the process."""
    redis_url: str | None = None
    """Redis for the balance read cache (optional; Sluice is correct without it)."""
    networks_file: Path = DEFAULT_DATA_DIR / "networks.toml"
    """TOML file describing the networks served (docs/operations.md); default:
    ``<data_dir>/networks.toml``."""
    policy_file: Path | None = None
    """The withdrawal policy (TOML, docs/policy.md), loaded at start and on SIGHUP; None: the
    version loaded last stays in force (the built-in allow-everything one if none was)."""
    keystore_passphrase: SecretStr | None = None
    """Passphrase of the hot wallets' keystore files."""
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    log_format: Literal["auto", "json", "console"] = "auto"
    """``auto``: readable in a terminal, JSON otherwise."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    worker_concurrency: Annotated[int, Field(ge=1, le=256)] = 8
    """Messages one worker process handles at once."""
    db_pool_size: Annotated[int, Field(ge=1, le=1000)] = 15
    """PostgreSQL connections a process keeps open (see `sluice.db.engine.create_engine`)."""
    db_max_overflow: Annotated[int, Field(ge=0, le=1000)] = 5
    """Extra PostgreSQL connections a process may open under load."""
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 8
    """Deliveries of one message before it goes to the dead-letter queue."""
    retry_base_s: Annotated[float, Field(gt=0)] = 0.5
    retry_max_s: Annotated[float, Field(gt=0)] = 60.0
    sweep_interval_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    """How often each worker process looks for work whose queued job was lost."""
    stale_after_s: Annotated[float, Field(ge=10, le=86_400)] = 600.0
    """How long a withdrawal or signed transaction may sit untouched before its job is presumed
    lost and enqueued again (a queue backlog older than this gets duplicates: harmless work)."""
    max_body_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024
    rate_limit_per_s: Annotated[int, Field(ge=0)] = 0
    """Requests a second an API key may make unless the key sets its own; 0: unlimited."""
    signature_window_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    """How far a signed request's timestamp may be from the server's clock."""
    signer_url: str | None = None
    """Where `sluice signer` listens (``unix:///path/signer.sock`` or ``http://127.0.0.1:PORT``).
    Set for API and worker processes, they hold no key and ask it to sign; set for the signer,
    it listens there."""
    signer_token: SecretStr | None = None
    """The shared secret API and worker processes present to `sluice signer` (32+ characters)."""
    signer_database_url: str | None = None
    """`sluice signer`'s own database, for the signatures it granted (default: SQLite in
    ``data_dir``); never the main database on SQLite, whose write lock a worker holds while it
    waits for a signature."""
    cors_origins: list[str] = Field(default_factory=list)
    """Browser origins allowed to call the API (JSON list); empty: CORS closed."""
    tls_certfile: Path | None = None
    """PEM certificate (chain) for `sluice serve` to serve HTTPS itself; None: plain HTTP (behind
    a TLS-terminating proxy or ingress)."""
    tls_keyfile: Path | None = None
    """PEM private key of ``tls_certfile``."""
    data_dir: Path = DEFAULT_DATA_DIR
    """Where everything local lives: the SQLite database and networks file unless set on their
    own, `sluice dev`'s chain state, keys and dev.json, `sluice signer`'s database."""
    # Webhooks (docs/webhooks.md).
    webhook_allow_private: bool = False
    """Allow webhook URLs whose host resolves to a private, loopback, link-local, multicast,
    reserved or unspecified address (off: refused at registration and at every attempt)."""
    webhook_retry_scale: Annotated[float, Field(gt=0, le=100)] = 1.0
    """Multiplies every delay of the retry schedule (about 75 hours at 1; tests use 0.001)."""
    webhook_timeout_s: Annotated[float, Field(gt=0, le=60)] = 15.0
    """How long one attempt waits for the endpoint's answer."""
    webhook_secret_overlap_s: Annotated[float, Field(ge=0, le=30 * 86_400)] = 86_400.0
    """How long the secret before a rotation keeps signing beside the new one."""
    webhook_disable_after_s: Annotated[float, Field(gt=0)] = 5 * 86_400.0
    """An endpoint failing this long without a single success is disabled."""
    webhook_lease_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    """How long a worker holds a claimed delivery; one killed mid-attempt leaves it to another
    after this (keep it above ``webhook_timeout_s``, or a slow attempt may be sent twice)."""
    webhook_poll_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    """How often an idle worker looks for due deliveries."""
    webhook_concurrency: Annotated[int, Field(ge=1, le=256)] = 16
    """Deliveries one worker process attempts at once."""

    @model_validator(mode="before")
    @classmethod
    def _in_data_dir(cls, data: Any) -> Any:
        """Place the database and the networks file in ``data_dir`` unless they are set."""
        if not isinstance(data, dict):
            return data
        values = dict(data)
        data_dir = Path(values.get("data_dir") or DEFAULT_DATA_DIR)
        values.setdefault("database_url", sqlite_url(data_dir / "sluice.db"))
        values.setdefault("networks_file", data_dir / "networks.toml")
        return values

    @property
    def dev_file(self) -> Path:
        """Where `sluice dev` describes the running instance (API URL, key) for other tools."""
        return self.data_dir / "dev.json"

    def networks(self) -> dict[str, NetworkConfig]:
        """The configured networks."""
        return load_networks(self.networks_file)
