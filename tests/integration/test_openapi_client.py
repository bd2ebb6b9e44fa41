"""The OpenAPI document generates a clean client, and its committed copy is up to date.

`openapi-python-client` (pinned in the dev lock) is what an integrator runs on our document; it
must generate without a warning (a warning means part of the API went missing from the client)
and give one function per operation, named after its operationId.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sluice.testing.scripts import load_script

ROOT = Path(__file__).parents[2]
COMMITTED = ROOT / "docs" / "openapi.json"
BIN = Path(sys.executable).parent
GENERATOR = BIN / "openapi-python-client"
#: The operations docs/api.md promises, each a function of the generated client.
OPERATION_IDS = {
    "createWithdrawal",
    "getWithdrawal",
    "listWithdrawals",
    "cancelWithdrawal",
    "listWithdrawalEvents",
    "getWithdrawalTransaction",
    "getUserBalances",
    "creditBalance",
    "cancelWithdrawalAsOperator",
    "listDeadLetters",
    "requeueDeadLetter",
    "listHotWallets",
    "listNetworks",
    "getHealth",
    "getReadiness",
}
#: How the generator reports a problem with the document ("Warning(s) encountered while
#: generating…", "WARNING …", and the details under them).
_WARNING = re.compile(r"warning|error|unable to|could not|not supported", re.IGNORECASE)


openapi_script: Any = load_script("openapi")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    doc: dict[str, Any] = openapi_script.document()
    return doc


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_the_committed_document_is_the_apps(document: dict[str, Any]) -> None:
    committed = COMMITTED.read_text(encoding="utf-8") if COMMITTED.exists() else ""
    assert committed == openapi_script.render(document), (
        f"docs/openapi.json is out of date: {openapi_script.REGENERATE}"
    )


def test_the_script_checks_and_writes_the_document(tmp_path: Path) -> None:
    path = tmp_path / "openapi.json"
    assert openapi_script.main([str(path), "--check"]) == 1
    assert openapi_script.main([str(path)]) == 0
    assert openapi_script.main([str(path), "--check"]) == 0
    assert json.loads(path.read_text(encoding="utf-8"))["info"]["title"] == "Sluice"


def test_openapi_python_client_generates_every_operation_without_a_warning(
    document: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not GENERATOR.exists():
        message = "openapi-python-client is not installed: run `make install`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    source = tmp_path / "openapi.json"
    source.write_text(openapi_script.render(document), encoding="utf-8")
    package = tmp_path / "generated_sluice_api"
    # The generator formats its output with ruff (its post hooks), from PATH: ours.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(  # noqa: S603 - the pinned generator, arguments of our own
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(source),
            "--output-path",
            str(package),
            "--meta",
            "none",
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert not _WARNING.search(output), output

    # The generated package imports, with a module per operation under its tag.
    monkeypatch.syspath_prepend(str(tmp_path))
    operations = [
        (operation["operationId"], operation["tags"][0])
        for item in document["paths"].values()
        for operation in item.values()
    ]
    assert {operation_id for operation_id, _tag in operations} >= OPERATION_IDS
    for operation_id, tag in operations:
        name = f"generated_sluice_api.api.{tag}.{_snake(operation_id)}"
        module = importlib.import_module(name)
        for function in ("sync", "sync_detailed", "asyncio", "asyncio_detailed"):
            assert callable(getattr(module, function, None)), f"{name}.{function}"
    models = importlib.import_module("generated_sluice_api.models")
    for model in ("Withdrawal", "WithdrawalRequest", "WithdrawalPage", "Problem", "FieldError"):
        assert hasattr(models, model), model
    client = importlib.import_module("generated_sluice_api").AuthenticatedClient
    assert client(base_url="http://127.0.0.1:8000", token="sluice_a_b").token == "sluice_a_b"
