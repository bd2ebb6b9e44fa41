"""The committed DemoToken artifact is exactly what the pinned solc makes of the committed source.

Rebuild the artifact with ``node contracts/build.mjs`` after editing ``contracts/DemoToken.sol``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, NoReturn

import pytest

from sluice.devnet.artifacts import load_demo_token

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE = REPO_ROOT / "contracts" / "DemoToken.sol"
BUILD_SCRIPT = REPO_ROOT / "contracts" / "build.mjs"
COMMITTED_ARTIFACT = REPO_ROOT / "contracts" / "DemoToken.json"
PACKAGED_ARTIFACT = REPO_ROOT / "src" / "sluice" / "devnet" / "DemoToken.json"
SOLC_PACKAGE = REPO_ROOT / "tools" / "node_modules" / "solc" / "package.json"

REBUILD_HINT = "rebuild it with `node contracts/build.mjs`"


def _missing_tool(reason: str) -> NoReturn:
    """Skip locally when a pinned tool is missing, but fail in CI where it must be installed."""
    message = f"{reason}: run `make tools`"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _load_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} is not a JSON object"
    return data


@pytest.fixture(scope="module")
def fresh_artifact() -> dict[str, Any]:
    """Compile the source now, with the pinned solc, without touching the committed files."""
    node = shutil.which("node")
    if node is None:
        _missing_tool("node is not on PATH")
    if not SOLC_PACKAGE.is_file():
        _missing_tool(f"the pinned solc is not installed ({SOLC_PACKAGE.parent} is missing)")
    completed = subprocess.run(  # noqa: S603 (fixed argv: the node binary and a repo script)
        [node, str(BUILD_SCRIPT), "--stdout"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, f"build.mjs failed:\n{completed.stderr}"
    data = json.loads(completed.stdout)
    assert isinstance(data, dict)
    return data


def test_committed_artifact_matches_a_fresh_compile_of_the_source(
    fresh_artifact: dict[str, Any],
) -> None:
    committed = _load_json(COMMITTED_ARTIFACT)

    assert committed["abi"] == fresh_artifact["abi"], f"stale ABI: {REBUILD_HINT}"
    assert committed["bytecode"] == fresh_artifact["bytecode"], f"stale bytecode: {REBUILD_HINT}"
    assert committed["compiler"] == fresh_artifact["compiler"], f"stale settings: {REBUILD_HINT}"
    assert committed["contractName"] == fresh_artifact["contractName"] == "DemoToken"


def test_committed_artifact_is_byte_identical_to_the_build_output(
    fresh_artifact: dict[str, Any],
) -> None:
    expected = json.dumps(fresh_artifact, indent=2) + "\n"

    assert COMMITTED_ARTIFACT.read_text(encoding="utf-8") == expected, REBUILD_HINT


def test_committed_artifact_records_the_sha256_of_the_source() -> None:
    committed = _load_json(COMMITTED_ARTIFACT)

    assert committed["sourceSha256"] == hashlib.sha256(SOURCE.read_bytes()).hexdigest(), (
        f"DemoToken.sol changed since the artifact was built: {REBUILD_HINT}"
    )


def test_committed_artifact_was_built_with_the_pinned_settings() -> None:
    compiler = _load_json(COMMITTED_ARTIFACT)["compiler"]

    assert compiler["version"].startswith("0.8.28+")
    assert compiler["optimizer"] is True
    assert compiler["runs"] == 200
    assert compiler["evmVersion"] == "cancun"


def test_packaged_artifact_is_identical_to_the_committed_one() -> None:
    assert PACKAGED_ARTIFACT.read_bytes() == COMMITTED_ARTIFACT.read_bytes(), REBUILD_HINT


def test_load_demo_token_returns_the_committed_artifact() -> None:
    committed = _load_json(COMMITTED_ARTIFACT)

    artifact = load_demo_token()

    assert artifact.name == committed["contractName"]
    assert artifact.abi == committed["abi"]
    assert artifact.bytecode == committed["bytecode"]
    assert artifact.source_sha256 == committed["sourceSha256"]
