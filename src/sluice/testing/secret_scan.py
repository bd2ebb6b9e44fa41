"""Known secrets of a test run, and a scan for them in text that must never carry one.

Tests register what they make (keystore passphrases, private keys, API keys, signer tokens);
the end-to-end suite's conftest then fails any test whose logs or HTTP answers contain one
(`tests/e2e/conftest.py`), and a test scans the OpenAPI document.
"""

from __future__ import annotations

import threading

#: Shorter strings are not secrets worth scanning for (and would match by chance).
MIN_CHARS = 12

_lock = threading.Lock()
_secrets: dict[str, str] = {}


def register(secret: str, what: str) -> None:
    """Remember a secret (case-insensitively) and what it is, for the report."""
    value = secret.strip()
    if len(value) < MIN_CHARS:
        return
    with _lock:
        _secrets[value.lower()] = what
        if value.lower().startswith("0x"):
            _secrets[value.lower()[2:]] = what


def register_api_key(token: str) -> None:
    """An API key token ``sluice_<id>_<secret>``: the token and its secret part."""
    register(token, "an API key")
    parts = token.split("_", 2)
    if len(parts) == 3:
        register(parts[2], "an API key's secret")


def find(text: str) -> list[str]:
    """What the text leaks: the descriptions of every registered secret found in it."""
    lowered = text.lower()
    with _lock:
        return sorted({what for secret, what in _secrets.items() if secret in lowered})
