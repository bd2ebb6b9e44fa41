"""The committed contract artifacts are exactly what the pinned solc makes of the committed sources.

Rebuild them with ``node contracts/build.mjs`` after editing a source under ``contracts/``.
``DemoToken`` ships in the package (a copy in ``src/sluice/devnet``); the test-only contracts of
``contracts/test/`` do not (``sluice.testing.contracts`` reads them from the checkout).
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
from sluice.testing.contracts import (
    BLOCKING_TOKEN,
    FALSE_TOKEN,
    INVALID_RECEIVER,
    REVERTING_RECEIVER,
    load_test_contract,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = REPO_ROOT / "contracts"
SOURCE = CONTRACTS / "DemoToken.sol"
BUILD_SCRIPT = CONTRACTS / "build.mjs"
COMMITTED_ARTIFACT = CONTRACTS / "DemoToken.json"
PACKAGED_ARTIFACT = REPO_ROOT / "src" / "sluice" / "devnet" / "DemoToken.json"
SOLC_PACKAGE = REPO_ROOT / "tools" / "node_modules" / "solc" / "package.json"

#: Every contract the build writes: its source and its committed artifact.
ARTIFACTS = {
    "DemoToken": (SOURCE, COMMITTED_ARTIFACT),
    REVERTING_RECEIVER: (
        CONTRACTS / "test" / "RevertingReceivers.sol",
        CONTRACTS / "test" / "RevertingReceiver.json",
    ),
    INVALID_RECEIVER: (
        CONTRACTS / "test" / "RevertingReceivers.sol",
        CONTRACTS / "test" / "InvalidReceiver.json",
    ),
    FALSE_TOKEN: (CONTRACTS / "test" / "HostileTokens.sol", CONTRACTS / "test" / "FalseToken.json"),
    BLOCKING_TOKEN: (
        CONTRACTS / "test" / "HostileTokens.sol",
        CONTRACTS / "test" / "BlockingToken.json",
    ),
}
TEST_CONTRACTS = [REVERTING_RECEIVER, INVALID_RECEIVER, FALSE_TOKEN, BLOCKING_TOKEN]

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
def fresh_artifacts() -> dict[str, dict[str, Any]]:
    """Compile the sources now, with the pinned solc, without touching the committed files."""
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


def test_the_build_makes_exactly_the_committed_contracts(
    fresh_artifacts: dict[str, dict[str, Any]],
) -> None:
    assert sorted(fresh_artifacts) == sorted(ARTIFACTS)
    committed = {path.name for path in CONTRACTS.rglob("*.json")}
    assert committed == {artifact.name for _, artifact in ARTIFACTS.values()}


@pytest.mark.parametrize("name", sorted(ARTIFACTS))
def test_committed_artifact_matches_a_fresh_compile_of_the_source(
    fresh_artifacts: dict[str, dict[str, Any]], name: str
) -> None:
    committed = _load_json(ARTIFACTS[name][1])
    fresh = fresh_artifacts[name]

    assert committed["abi"] == fresh["abi"], f"stale ABI: {REBUILD_HINT}"
    assert committed["bytecode"] == fresh["bytecode"], f"stale bytecode: {REBUILD_HINT}"
    assert committed["compiler"] == fresh["compiler"], f"stale settings: {REBUILD_HINT}"
    assert committed["contractName"] == fresh["contractName"] == name


@pytest.mark.parametrize("name", sorted(ARTIFACTS))
def test_committed_artifact_is_byte_identical_to_the_build_output(
    fresh_artifacts: dict[str, dict[str, Any]], name: str
) -> None:
    expected = json.dumps(fresh_artifacts[name], indent=2) + "\n"

    assert ARTIFACTS[name][1].read_text(encoding="utf-8") == expected, REBUILD_HINT


@pytest.mark.parametrize("name", sorted(ARTIFACTS))
def test_committed_artifact_records_the_sha256_of_the_source(name: str) -> None:
    source, artifact = ARTIFACTS[name]
    committed = _load_json(artifact)

    assert committed["sourceSha256"] == hashlib.sha256(source.read_bytes()).hexdigest(), (
        f"{source.name} changed since the artifact was built: {REBUILD_HINT}"
    )


@pytest.mark.parametrize("name", sorted(ARTIFACTS))
def test_committed_artifact_was_built_with_the_pinned_settings(name: str) -> None:
    compiler = _load_json(ARTIFACTS[name][1])["compiler"]

    assert compiler["version"].startswith("0.8.28+")
    assert compiler["optimizer"] is True
    assert compiler["runs"] == 200
    assert compiler["evmVersion"] == "cancun"


def test_packaged_artifact_is_identical_to_the_committed_one() -> None:
    assert PACKAGED_ARTIFACT.read_bytes() == COMMITTED_ARTIFACT.read_bytes(), REBUILD_HINT


def test_only_the_demo_token_is_packaged() -> None:
    packaged = {path.name for path in PACKAGED_ARTIFACT.parent.glob("*.json")}

    assert packaged == {"DemoToken.json"}


def test_load_demo_token_returns_the_committed_artifact() -> None:
    committed = _load_json(COMMITTED_ARTIFACT)

    artifact = load_demo_token()

    assert artifact.name == committed["contractName"]
    assert artifact.abi == committed["abi"]
    assert artifact.bytecode == committed["bytecode"]
    assert artifact.source_sha256 == committed["sourceSha256"]


@pytest.mark.parametrize("name", TEST_CONTRACTS)
def test_load_test_contract_returns_the_committed_artifact(name: str) -> None:
    committed = _load_json(ARTIFACTS[name][1])

    artifact = load_test_contract(name)

    assert artifact.name == committed["contractName"] == name
    assert artifact.abi == committed["abi"]
    assert artifact.bytecode == committed["bytecode"]
