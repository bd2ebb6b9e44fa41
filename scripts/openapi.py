"""Print or write Sluice's OpenAPI document, as the API serves it at ``/openapi.json``.

    python scripts/openapi.py                            # print it
    python scripts/openapi.py docs/openapi.json          # rewrite the committed copy
    python scripts/openapi.py --check docs/openapi.json  # exit 1 if the committed copy differs

The committed copy (docs/openapi.json) is what generated clients are made from without running
Sluice; `tests/integration/test_openapi_client.py` fails when it is out of date.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path
from typing import Any

#: What to run when the committed document is out of date.
REGENERATE = "run python scripts/openapi.py docs/openapi.json"


def document() -> dict[str, Any]:
    """The app's OpenAPI document (the app built on a stub container: no database, no chain)."""
    # Imported here, so `--help` works without the package's dependencies.
    from sluice.api.app import create_app  # noqa: PLC0415 - see above
    from sluice.config import Settings  # noqa: PLC0415 - see above

    # The document comes from the routes alone; `create_app` reads only the settings.
    container = types.SimpleNamespace(settings=Settings())
    doc: dict[str, Any] = create_app(container).openapi()  # type: ignore[arg-type]
    return doc


def render(doc: dict[str, Any]) -> str:
    """The document as committed: indented JSON in FastAPI's order, a newline at the end."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Print or write Sluice's OpenAPI document.")
    parser.add_argument("path", nargs="?", type=Path, help="write it here (default: print it)")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the file differs instead of writing it"
    )
    args = parser.parse_args(argv)
    text = render(document())
    if args.path is None:
        if args.check:
            parser.error("--check needs the path of the committed document")
        sys.stdout.write(text)
        return 0
    path: Path = args.path
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} is out of date: {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
