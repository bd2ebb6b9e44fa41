"""The OpenAPI document reads well and generates a good client: names, tags, examples, errors."""

from __future__ import annotations

import re
import types
from typing import Any

import pytest

from sluice.api.app import create_app
from sluice.api.openapi import PUBLIC_NAMES
from sluice.api.problems import STATUS_BY_CODE
from sluice.config import Settings

_CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")
_PARAM = re.compile(r"{([^}]+)}")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    container = types.SimpleNamespace(settings=Settings())
    doc: dict[str, Any] = create_app(container).openapi()  # type: ignore[arg-type]
    return doc


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_every_operation_has_a_hand_chosen_camel_case_id_a_tag_and_a_summary(
    document: dict[str, Any],
) -> None:
    ids = []
    for method, path, operation in _operations(document):
        name = f"{method} {path}"
        assert _CAMEL.match(operation["operationId"]), name
        assert "_" not in operation["operationId"], name
        assert operation.get("tags"), name
        assert operation.get("summary"), name
        ids.append(operation["operationId"])
    assert len(ids) == len(set(ids)), "operation ids are unique"
    assert {"createWithdrawal", "getWithdrawal", "listWithdrawals", "cancelWithdrawal"} <= set(ids)


def test_only_the_old_intake_path_is_deprecated(document: dict[str, Any]) -> None:
    deprecated = [(m, p) for m, p, op in _operations(document) if op.get("deprecated")]
    assert deprecated == [("POST", "/withdrawal/request")]


def test_every_path_parameter_is_camel_case_like_the_query_parameters(
    document: dict[str, Any],
) -> None:
    for method, path, operation in _operations(document):
        for name in _PARAM.findall(path):
            assert _CAMEL.match(name), f"{method} {path}: {name}"
        for parameter in operation.get("parameters", []):
            if parameter["in"] in ("path", "query"):
                assert _CAMEL.match(parameter["name"]), f"{method} {path}: {parameter['name']}"


def test_every_success_answer_and_request_body_carries_an_example(
    document: dict[str, Any],
) -> None:
    missing = []
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            content = response.get("content", {}).get("application/json")
            documented = content is None or "example" in content or "examples" in content
            if status.startswith("2") and not documented:
                missing.append(f"{method} {path} {status}")
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None and "examples" not in body and "example" not in body:
            missing.append(f"{method} {path} request body")
    assert missing == []


def test_components_have_the_names_an_integrator_reads(document: dict[str, Any]) -> None:
    names = set(document["components"]["schemas"])
    assert {"Withdrawal", "WithdrawalRequest", "Event", "Transaction", "Problem"} <= names
    assert not names & set(PUBLIC_NAMES), "no code-side name is left in the document"
    assert not [n for n in names if n.endswith(("Out", "Create"))]
    refs = re.findall(r"#/components/schemas/(\w+)", str(document))
    assert set(refs) <= names, "every reference resolves"


def test_every_error_answer_is_a_problem_and_every_422_lists_its_fields(
    document: dict[str, Any],
) -> None:
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")) and path != "/ready":
                content = response["content"]
                assert list(content) == ["application/problem+json"], f"{method} {path} {status}"
    problem = document["components"]["schemas"]["Problem"]
    assert problem["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/FieldError"}
    assert set(document["components"]["schemas"]["FieldError"]["required"]) == {
        "field",
        "in",
        "code",
        "message",
    }
    assert set(STATUS_BY_CODE) >= {"rate_limited", "invalid_signature", "malformed_json"}


def test_every_operation_that_takes_a_key_documents_the_signature_headers(
    document: dict[str, Any],
) -> None:
    wanted = {"X-Sluice-Timestamp", "X-Sluice-Nonce", "X-Sluice-Signature"}
    for method, path, operation in _operations(document):
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        if operation.get("security"):
            assert wanted <= headers, f"{method} {path}"
        else:
            assert not wanted & headers, f"{method} {path} takes no key"
