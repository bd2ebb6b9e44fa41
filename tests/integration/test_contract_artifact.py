"""The committed contract artifacts are exactly what the pinned solc makes of the committed sources.

Rebuild them with ``node contracts/build.mjs`` after editing a source under ``contracts/``.
``DemoToken`` ships in the package (a copy in ``src/sluice/devnet``), and so does ``BatchPayout``
(a copy in ``src/sluice/chains``, compiled for the "paris" EVM, with its runtime code); the
test-only contracts of ``contracts/test/`` do not (``sluice.testing.contracts`` reads them from
the checkout).
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
    BATCH_PAYOUT,
    BLOCKING_TOKEN,
    FALSE_TOKEN,
    INVALID_RECEIVER,
    NO_RETURN_TOKEN,
    REENTRANT_RECEIVER,
    REVERTING_RECEIVER,
    load_batch_payout,
    load_test_contract,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = REPO_ROOT / "contracts"
SOURCE = CONTRACTS / "DemoToken.sol"
BUILD_SCRIPT = CONTRACTS / "build.mjs"
COMMITTED_ARTIFACT = CONTRACTS / "DemoToken.json"
PACKAGED_ARTIFACT = REPO_ROOT / "src" / "sluice" / "devnet" / "DemoToken.json"
BATCH_SOURCE = CONTRACTS / "BatchPayout.sol"
BATCH_ARTIFACT = CONTRACTS / "BatchPayout.json"
PACKAGED_BATCH_ARTIFACT = REPO_ROOT / "src" / "sluice" / "chains" / "BatchPayout.json"
SOLC_PACKAGE = REPO_ROOT / "tools" / "node_modules" / "solc" / "package.json"

#: Every contract the build writes: its source and its committed artifact.
ARTIFACTS = {
    "DemoToken": (SOURCE, COMMITTED_ARTIFACT),
    BATCH_PAYOUT: (BATCH_SOURCE, BATCH_ARTIFACT),
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
    NO_RETURN_TOKEN: (
        CONTRACTS / "test" / "NoReturnToken.sol",
        CONTRACTS / "test" / "NoReturnToken.json",
    ),
    REENTRANT_RECEIVER: (
        CONTRACTS / "test" / "ReentrantReceiver.sol",
        CONTRACTS / "test" / "ReentrantReceiver.json",
    ),
}
TEST_CONTRACTS = [
    REVERTING_RECEIVER,
    INVALID_RECEIVER,
    FALSE_TOKEN,
    BLOCKING_TOKEN,
    NO_RETURN_TOKEN,
    REENTRANT_RECEIVER,
]
#: The EVM version each artifact is built for: "cancun" unless named here.
EVM_VERSIONS = {BATCH_PAYOUT: "paris"}
#: Opcodes a "paris" build must not contain: PUSH0 (Shanghai), TLOAD, TSTORE, MCOPY (Cancun).
POST_PARIS_OPCODES = {0x5F: "PUSH0", 0x5C: "TLOAD", 0x5D: "TSTORE", 0x5E: "MCOPY"}

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
    assert committed.get("deployedBytecode") == fresh.get("deployedBytecode"), (
        f"stale runtime code: {REBUILD_HINT}"
    )
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
    assert compiler["evmVersion"] == EVM_VERSIONS.get(name, "cancun")


@pytest.mark.parametrize("name", sorted(ARTIFACTS))
def test_only_the_batch_payout_artifact_has_the_runtime_code(name: str) -> None:
    committed = _load_json(ARTIFACTS[name][1])

    if name == BATCH_PAYOUT:
        assert committed["deployedBytecode"].startswith("0x")
        assert len(committed["deployedBytecode"]) > 2
    else:
        assert "deployedBytecode" not in committed


def _opcodes(code_hex: str) -> set[int]:
    """The opcodes of EVM code, skipping the immediate bytes of PUSH1..PUSH32."""
    code = bytes.fromhex(code_hex.removeprefix("0x"))
    opcodes: set[int] = set()
    position = 0
    while position < len(code):
        opcode = code[position]
        opcodes.add(opcode)
        position += 1 + (opcode - 0x5F if 0x60 <= opcode <= 0x7F else 0)
    return opcodes


@pytest.mark.parametrize("field", ["bytecode", "deployedBytecode"])
def test_the_batch_payout_code_uses_no_opcode_newer_than_paris(field: str) -> None:
    code = _load_json(BATCH_ARTIFACT)[field]

    found = {POST_PARIS_OPCODES[op] for op in _opcodes(code) if op in POST_PARIS_OPCODES}

    assert found == set(), f"{field} would not run before Shanghai/Cancun: {sorted(found)}"


def test_packaged_artifact_is_identical_to_the_committed_one() -> None:
    assert PACKAGED_ARTIFACT.read_bytes() == COMMITTED_ARTIFACT.read_bytes(), REBUILD_HINT


def test_packaged_batch_payout_artifact_is_identical_to_the_committed_one() -> None:
    assert PACKAGED_BATCH_ARTIFACT.read_bytes() == BATCH_ARTIFACT.read_bytes(), REBUILD_HINT


def test_only_the_demo_token_is_packaged_in_devnet() -> None:
    packaged = {path.name for path in PACKAGED_ARTIFACT.parent.glob("*.json")}

    assert packaged == {"DemoToken.json"}


def test_only_the_batch_payout_is_packaged_in_chains() -> None:
    packaged = {path.name for path in PACKAGED_BATCH_ARTIFACT.parent.glob("*.json")}

    assert packaged == {"BatchPayout.json"}


def test_load_batch_payout_returns_the_committed_artifact() -> None:
    committed = _load_json(BATCH_ARTIFACT)

    artifact = load_batch_payout()

    assert artifact.name == committed["contractName"] == BATCH_PAYOUT
    assert artifact.abi == committed["abi"]
    assert artifact.bytecode == committed["bytecode"]
    assert artifact.source_sha256 == committed["sourceSha256"]


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
