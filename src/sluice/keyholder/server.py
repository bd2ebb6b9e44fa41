"""Running `sluice signer`: load the keys, open the databases, listen on a socket."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

import structlog
import uvicorn

from sluice.config import Settings
from sluice.db.engine import create_engine, migrate
from sluice.domain.addresses import Address
from sluice.domain.assets import Network
from sluice.errors import ConfigurationError
from sluice.keyholder.app import Keyholder, create_signer_app
from sluice.ports import Signer
from sluice.signers.loading import draining_wallets, load_signers

log = structlog.get_logger(__name__)

#: The shortest shared token accepted.
MIN_TOKEN_CHARS = 32


def listen_socket(url: str) -> socket.socket:
    """A bound socket for ``unix:///path`` (mode 0600) or ``http://127.0.0.1:PORT``."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        path = Path(parts.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # created 0600: only this user may connect
        try:
            sock.bind(str(path))
        finally:
            os.umask(old)
        return sock
    if parts.scheme == "http" and parts.hostname and parts.port:
        sock = socket.socket(socket.AF_INET6 if ":" in parts.hostname else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((parts.hostname, parts.port))
        return sock
    raise ConfigurationError("SLUICE_SIGNER_URL is unix:///path or http://HOST:PORT")


async def build_keyholder(settings: Settings) -> Keyholder:
    """The keys of every configured network, the records engine and the grant book."""
    token = settings.signer_token.get_secret_value() if settings.signer_token else ""
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigurationError(f"SLUICE_SIGNER_TOKEN must have {MIN_TOKEN_CHARS}+ characters")
    networks: dict[str, Network] = {}
    signers: dict[tuple[str, Address], Signer] = {}
    draining: set[tuple[str, Address]] = set()
    for name, config in settings.networks().items():
        loaded = load_signers(config, settings)
        networks[name] = config.to_domain(name, hot_wallets=tuple(s.address for s in loaded))
        signers.update({(name, s.address): s for s in loaded})
        draining.update((name, a) for a in draining_wallets(loaded, config))
    book_url = settings.signer_database_url or (
        f"sqlite+aiosqlite:///{settings.data_dir.resolve() / 'signer.db'}"
    )
    await migrate(book_url)
    return Keyholder(
        networks=networks,
        signers=signers,
        draining=frozenset(draining),
        records=create_engine(settings.database_url, pool_size=5, read_only=True),
        book=create_engine(book_url, pool_size=5),
        token=token,
    )


async def serve(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM."""
    if not settings.signer_url:
        raise ConfigurationError("SLUICE_SIGNER_URL is not set")
    keyholder = await build_keyholder(settings)
    sock = listen_socket(settings.signer_url)
    config = uvicorn.Config(
        create_signer_app(keyholder), log_config=None, access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)  # it stops on SIGINT and SIGTERM
    log.info(
        "sluice signer is running",
        wallets=[f"{n}:{a}" for n, a in keyholder.signers],
        listen=settings.signer_url.split("?", 1)[0],
    )
    try:
        await server.serve(sockets=[sock])
    finally:
        for signer in keyholder.signers.values():
            await signer.close()
        await keyholder.records.dispose()
        await keyholder.book.dispose()
        sock.close()
