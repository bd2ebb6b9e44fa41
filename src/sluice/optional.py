"""The optional extras, and the one clear error when a configured adapter's extra is missing.

A plain ``pip install sluice-withdrawals`` runs the embedded default (SQLite, the memory queue,
keystore signers) and PostgreSQL. Two extras add the adapters that need more:

- ``aws`` (aiobotocore, botocore): the SQS queue, the Secrets Manager and KMS signers;
- ``redis`` (redis-py): the Redis Streams queue, the balance cache and the shared request guard.

Every module imports without its extra; an adapter imports its library only when it is made,
inside `importing`, so a deployment that configures it without the extra gets one line naming the
extra (a `ConfigurationError`, which the command line prints without a traceback)::

    with optional.importing("aws", needed_by="SLUICE_QUEUE_URL=sqs://…"):
        from aiobotocore.session import get_session
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, Literal

from sluice.errors import ConfigurationError

__all__ = ["DISTRIBUTION", "Extra", "importing", "install_hint"]

Extra = Literal["aws", "redis"]
"""The extras `pyproject.toml` declares for adapters (``dev`` is for development only)."""

DISTRIBUTION: Final = "sluice-withdrawals"


def install_hint(name: Extra) -> str:
    """The command that installs the extra, quoted for a POSIX shell."""
    return f"pip install '{DISTRIBUTION}[{name}]'"


@contextmanager
def importing(name: Extra, *, needed_by: str) -> Iterator[None]:
    """Turn an `ImportError` raised inside the block into a `ConfigurationError` naming the extra.

    Put only the imports of the extra's libraries inside the block.

    Args:
        name: The extra that provides what the block imports.
        needed_by: What configured the adapter, as an operator would recognise it (a setting
            and its value, never a secret: ``SLUICE_QUEUE_URL=sqs://…``).

    Raises:
        ConfigurationError: An import in the block failed. The original `ImportError` is chained
            (its text names the module that is missing).
    """
    try:
        yield
    except ImportError as exc:
        missing = exc.name or "a module"
        raise ConfigurationError(
            f"{needed_by} needs the {name} extra: {install_hint(name)} (cannot import {missing})"
        ) from exc
