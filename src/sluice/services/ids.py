"""Identifiers Sluice makes itself."""

from __future__ import annotations

import uuid


def new_id(prefix: str) -> str:
    """A random id such as ``wd_3f2a…`` (prefix, underscore, 32 hex digits)."""
    return f"{prefix}_{uuid.uuid4().hex}"
