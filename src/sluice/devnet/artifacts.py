"""Compiled contract artifacts shipped with the package.

The demo ERC-20 token's source lives in ``contracts/DemoToken.sol``; ``node contracts/build.mjs``
compiles it with the pinned solc and writes ``contracts/DemoToken.json`` plus an identical copy
next to this module, which is what :func:`load_demo_token` reads. The test-only contracts of
``contracts/test/`` are not packaged: :mod:`sluice.testing.contracts` reads their artifacts from
the source checkout with :func:`read_artifact`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["ContractArtifact", "load_demo_token", "read_artifact"]

_DEMO_ARTIFACT_FILE = "DemoToken.json"


@dataclass(frozen=True, slots=True)
class ContractArtifact:
    """A compiled contract: its ABI and creation bytecode.

    ``bytecode`` is the 0x-prefixed creation code; ``source_sha256`` is the hex SHA-256 of the
    Solidity source file it was compiled from.
    """

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    source_sha256: str


def load_demo_token() -> ContractArtifact:
    """Load the packaged DemoToken artifact (ERC-20 with an owner-only ``mint``)."""
    resource = resources.files("sluice.devnet").joinpath(_DEMO_ARTIFACT_FILE)
    text = resource.read_text(encoding="utf-8")
    return _parse_artifact(json.loads(text), source=_DEMO_ARTIFACT_FILE)


def read_artifact(path: Path) -> ContractArtifact:
    """Load an artifact file written by ``contracts/build.mjs``.

    Raises:
        OSError: The file cannot be read.
        ValueError: It is not such an artifact.
    """
    return _parse_artifact(json.loads(path.read_text(encoding="utf-8")), source=str(path))


def _parse_artifact(data: object, *, source: str) -> ContractArtifact:
    """Validate the artifact JSON written by ``contracts/build.mjs``."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a JSON object")
    name = data.get("contractName")
    abi = data.get("abi")
    bytecode = data.get("bytecode")
    source_sha256 = data.get("sourceSha256")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{source}: 'contractName' must be a non-empty string")
    if not isinstance(abi, list) or not all(isinstance(entry, dict) for entry in abi):
        raise ValueError(f"{source}: 'abi' must be a list of objects")
    if not isinstance(bytecode, str) or not bytecode.startswith("0x") or len(bytecode) <= 2:
        raise ValueError(f"{source}: 'bytecode' must be non-empty 0x-prefixed hex")
    if not isinstance(source_sha256, str) or len(source_sha256) != 64:
        raise ValueError(f"{source}: 'sourceSha256' must be a hex SHA-256 digest")
    return ContractArtifact(name=name, abi=abi, bytecode=bytecode, source_sha256=source_sha256)
