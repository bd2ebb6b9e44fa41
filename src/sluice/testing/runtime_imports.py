"""Import every module a Sluice process may import, and list those that fail.

Run in the environment to check, so a test can check an installation other than its own::

    python -m sluice.testing.runtime_imports    # exit 1 and one line per failing module

Left out: `sluice.testing` (test support: it may import pytest), ``__main__`` modules, and the
alembic migration scripts (they run when imported).

This module must not import pytest.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import sluice


def runtime_modules() -> list[str]:
    """The names of every module of the package outside the parts left out (above)."""
    names = []
    for module in pkgutil.walk_packages(sluice.__path__, "sluice."):
        name = module.name
        if name.startswith("sluice.testing") or name.endswith("__main__") or ".migrations" in name:
            continue
        names.append(name)
    return names


def failing_imports() -> list[str]:
    """``<module>: <exception class>: <message>`` for each runtime module that fails to import."""
    failed = []
    for name in runtime_modules():
        try:
            importlib.import_module(name)
        except Exception as exc:  # any failure to import is what this reports
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    return failed


def main() -> int:
    """Print the failures; 1 if there are any."""
    failed = failing_imports()
    for line in failed:
        print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
