"""Structured logging: JSON for machines, readable lines in a terminal, no secrets in either."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# Values under these keys are never logged, whatever they hold.
_SECRET_KEYS = re.compile(
    r"pass(word|phrase)?|secret|private_?key|api_?key|authorization|token|credential", re.I
)
# Credentials embedded in URLs (user:password@host) and bearer tokens in free text.
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")
_BEARER = re.compile(r"(?i)bearer\s+\S+")
_API_KEY = re.compile(r"sluice_[0-9a-f]{16}_[A-Za-z0-9_-]+")


def _redact_text(text: str) -> str:
    text = _URL_CREDENTIALS.sub("***@", text)
    text = _BEARER.sub("Bearer ***", text)
    return _API_KEY.sub("sluice_***", text)


def redact(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor that masks secret-looking keys and credentials inside strings."""
    for key, value in list(event_dict.items()):
        if _SECRET_KEYS.search(key):
            event_dict[key] = "***"
        elif isinstance(value, str):
            event_dict[key] = _redact_text(value)
    return event_dict


class _Stderr:
    """Whatever ``sys.stderr`` is at the time of each write (not when logging was configured),
    so a replaced or closed stream (a test runner's capture) is never written to later."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(*, fmt: str = "auto", level: str = "info") -> None:
    """Set up structlog (and route the standard library's logging through it)."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info if use_json else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]  # PrintLogger needs only write() and flush()
        cache_logger_on_first_use=True,
    )
    # Third-party libraries log through the standard library; keep them quiet and redacted.
    handler = logging.StreamHandler(_Stderr())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared[1:3],
            # The record itself (and its repr, with the raw message) must not reach the output.
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                redact,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.WARNING)
