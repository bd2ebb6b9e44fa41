"""The TypeScript client's generated types are those of docs/openapi.json, and it compiles.

clients/typescript pins its tools in its own package-lock.json (`npm ci` there installs them);
without them the test is skipped locally and fails in CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
CLIENT = ROOT / "clients" / "typescript"
BIN = CLIENT / "node_modules" / ".bin"


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    missing = None
    if found is None:
        missing = "Node.js is not installed"
    elif not ((BIN / "openapi-typescript").exists() and (BIN / "tsc").exists()):
        missing = "clients/typescript's tools are not installed: run `npm ci` in clients/typescript"
    if missing is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    assert found is not None
    return found


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the client's pinned tools, arguments of our own
        list(argv), cwd=CLIENT, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_generated_types_are_those_of_the_committed_document(node: str) -> None:
    result = _run(
        node,
        str(BIN / "openapi-typescript"),
        "../../docs/openapi.json",
        "--output",
        "src/schema.d.ts",
        "--check",
    )
    assert result.returncode == 0, (
        "clients/typescript/src/schema.d.ts is out of date: run `npm run generate` in"
        f" clients/typescript\n{result.stdout}{result.stderr}"
    )


def test_the_client_type_checks_against_the_generated_types(node: str) -> None:
    result = _run(node, str(BIN / "tsc"), "--noEmit")
    assert result.returncode == 0, result.stdout + result.stderr
