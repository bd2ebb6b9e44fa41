"""Copy the browser assets Sluice serves itself from their pinned npm packages into the package.

    python scripts/vendor_assets.py          # rewrite src/sluice/api/static/ and its manifest
    python scripts/vendor_assets.py --check  # exit 1 if the committed copies differ

The npm packages are pinned in tools/package.json and installed by `make tools`. The copies are
committed (a wheel built from a clean clone must carry them, and no page may load a CDN);
`tests/integration/test_vendored_assets.py` checks them against the manifest and the packages.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "tools" / "node_modules"
STATIC = ROOT / "src" / "sluice" / "api" / "static"
MANIFEST = STATIC / "vendored.json"

#: npm package → (folder under static/, files copied).
ASSETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "swagger-ui-dist": (
        "swagger-ui",
        (
            "swagger-ui-bundle.js",
            "swagger-ui-bundle.js.LICENSE.txt",
            "swagger-ui.css",
            "favicon-32x32.png",
            "LICENSE",
            "NOTICE",
        ),
    ),
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_from_packages() -> dict[str, object]:
    """What the manifest must say, read from the installed npm packages."""
    packages: dict[str, object] = {}
    for package, (folder, files) in ASSETS.items():
        source = NODE_MODULES / package
        version = json.loads((source / "package.json").read_text("utf-8"))["version"]
        packages[package] = {
            "version": version,
            "folder": folder,
            "files": {name: _sha256(source / name) for name in files},
        }
    return packages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; change nothing")
    check = parser.parse_args().check
    missing = [p for p in ASSETS if not (NODE_MODULES / p / "package.json").exists()]
    if missing:
        print(f"not installed: {', '.join(missing)}: run `make tools`", file=sys.stderr)
        return 2
    wanted = manifest_from_packages()
    if check:
        current = json.loads(MANIFEST.read_text("utf-8")) if MANIFEST.exists() else None
        if current != wanted:
            print("vendored assets differ from tools/package.json: run `make vendor`")
            return 1
        return 0
    for package, (folder, files) in ASSETS.items():
        target = STATIC / folder
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            shutil.copyfile(NODE_MODULES / package / name, target / name)
    MANIFEST.write_text(json.dumps(wanted, indent=2, sort_keys=True) + "\n", "utf-8")
    print(f"vendored {', '.join(ASSETS)} into {STATIC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
