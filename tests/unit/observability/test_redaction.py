"""Log redaction: no secret reaches a log line."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from sluice.observability import configure_logging, redact


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("passphrase", "hunter2"),
        ("keystore_passphrase", "hunter2"),
        ("private_key", "0xabc"),
        ("api_key", "sluice_0123456789abcdef_secret"),
        ("Authorization", "Bearer abc"),
        ("client_secret", "s3cr3t"),
    ],
)
def test_values_under_secret_looking_keys_are_masked(key: str, value: str) -> None:
    event = redact(None, "info", {"event": "x", key: value})
    assert event[key] == "***"


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("calling https://user:pa55@node.example/v3", "pa55"),
        ("header was Bearer abc.def.ghi", "abc.def.ghi"),
        ("key sluice_0123456789abcdef_Zm9vYmFyYmF6 refused", "Zm9vYmFyYmF6"),
    ],
)
def test_credentials_inside_free_text_are_masked(text: str, leak: str) -> None:
    event = redact(None, "info", {"event": text, "detail": text})
    assert leak not in event["event"]
    assert leak not in event["detail"]


def test_ordinary_fields_pass_through_unchanged() -> None:
    event = redact(None, "info", {"event": "job handled", "withdrawalId": "wd_1", "n": 3})
    assert event == {"event": "job handled", "withdrawalId": "wd_1", "n": 3}


def test_json_logs_carry_the_bound_request_id_and_no_secret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(fmt="json", level="info")
    try:
        with structlog.contextvars.bound_contextvars(request_id="req-1"):
            structlog.get_logger("t").info("hello", passphrase="hunter2")
            logging.getLogger("thirdparty").warning("url http://u:pw@h/x")
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
    ours = next(line for line in lines if line["event"] == "hello")
    assert ours["request_id"] == "req-1"
    assert ours["passphrase"] == "***"
    assert "hunter2" not in json.dumps(lines)
    assert "pw@" not in json.dumps(lines)
