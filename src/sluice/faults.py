"""Deliberate kill points, for the fault-injection suite (``tests/chaos``).

The engine calls `checkpoint` at the boundaries where a crash is most interesting (see
`KILL_POINTS`). Normally that is a no-op: one look at a module global. When the environment
variable ``SLUICE_FAULT_KILL_AT`` is set when this module is imported, for example
``after_sign:3`` (the third time this process reaches ``after_sign``) or several,
comma-separated (``after_nonce:2,after_send:5``; a name alone means its first time), the process
sends itself SIGKILL at that moment: no ``finally``, no rollback hook, no flush, exactly as
``kill -9`` from outside, but at a chosen line.

Never set it in production: it exists so a test can prove that a crash at each boundary loses and
duplicates nothing.
"""

from __future__ import annotations

import os
import signal
from typing import Final

__all__ = ["ENV", "KILL_POINTS", "checkpoint", "configure", "parse"]

#: The environment variable naming the kill points.
ENV: Final = "SLUICE_FAULT_KILL_AT"

#: The boundaries the engine marks, in pipeline order.
KILL_POINTS: Final = (
    "after_nonce",  # SigningService.sign: a nonce is taken, nothing committed yet
    "after_sign",  # SigningService.sign: the signer returned, nothing committed yet
    "after_store",  # the sign handler: the signed attempt is committed, not yet sent
    "after_send",  # the broadcast handler: the node answered, the send is not recorded
    "after_receipt",  # the confirm handler: a receipt was seen, nothing recorded
    "before_settle",  # ConfirmationService._settle: inside the transaction, before the ledger
)

_targets: dict[str, int] = {}
_reached: dict[str, int] = {}


def parse(spec: str) -> dict[str, int]:
    """``"after_sign:3,after_send"`` → ``{"after_sign": 3, "after_send": 1}``.

    Raises:
        ValueError: An unknown kill point or a count below 1.
    """
    targets: dict[str, int] = {}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        name, _, count = item.partition(":")
        name = name.strip()
        if name not in KILL_POINTS:
            raise ValueError(
                f"{ENV}: unknown kill point {name!r} (known: {', '.join(KILL_POINTS)})"
            )
        nth = int(count) if count.strip() else 1
        if nth < 1:
            raise ValueError(f"{ENV}: the count of {name!r} must be at least 1")
        targets[name] = nth
    return targets


def configure(spec: str | None) -> None:
    """Set the kill points (None or empty: none), and start counting again (for tests)."""
    _targets.clear()
    _reached.clear()
    _targets.update(parse(spec or ""))


def checkpoint(name: str, when: bool = True) -> None:
    """Mark a boundary: kill this process if it is a kill point reached for the chosen time.

    ``when`` False skips it (a boundary that exists only on one branch, in one line).
    """
    if not _targets or not when or name not in _targets:
        return
    seen = _reached.get(name, 0) + 1
    _reached[name] = seen
    if seen == _targets[name]:
        # Unbuffered, so the line survives the kill: the suite reads which point fired.
        os.write(2, f"sluice fault injection: SIGKILL at {name} (time {seen})\n".encode())
        os.kill(os.getpid(), signal.SIGKILL)


configure(os.environ.get(ENV))
