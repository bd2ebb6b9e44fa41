"""docs/api.md says what the server does: every error code with its status, every operation."""

from __future__ import annotations

import re
import types
from pathlib import Path

from sluice.api.app import create_app
from sluice.api.problems import STATUS_BY_CODE
from sluice.config import Settings

API_MD = Path(__file__).parents[3] / "docs" / "api.md"


def _error_table() -> dict[str, int]:
    text = API_MD.read_text("utf-8").split("## Errors", 1)[1]
    rows: dict[str, int] = {}
    for codes, status in re.findall(r"^\| (`[^|]+`) \| (\d{3}) \|", text, re.MULTILINE):
        for code in re.findall(r"`([a-z_]+)`", codes):
            rows[code] = int(status)
    return rows


def test_the_error_table_lists_every_code_with_the_status_the_server_sends() -> None:
    documented = _error_table()
    expected = {**STATUS_BY_CODE, "internal_error": 500}
    assert documented == expected


def test_the_docs_name_every_operation_id() -> None:
    container = types.SimpleNamespace(settings=Settings())
    document = create_app(container).openapi()  # type: ignore[arg-type]
    text = API_MD.read_text("utf-8")
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert [i for i in ids if f"`{i}`" not in text] == []
