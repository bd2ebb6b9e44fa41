"""The browser assets Sluice serves are the pinned npm packages' files, byte for byte."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from sluice.testing.scripts import load_script

ROOT = Path(__file__).parents[2]


vendor_assets: Any = load_script("vendor_assets")


def test_the_committed_copies_match_their_manifest() -> None:
    manifest = json.loads(vendor_assets.MANIFEST.read_text("utf-8"))
    assert set(manifest) == set(vendor_assets.ASSETS)
    for package, entry in manifest.items():
        folder, files = vendor_assets.ASSETS[package]
        assert entry["folder"] == folder
        assert set(entry["files"]) == set(files)
        for name, digest in entry["files"].items():
            data = (vendor_assets.STATIC / folder / name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest, f"{folder}/{name} was changed"


def test_the_manifest_matches_the_packages_pinned_in_tools() -> None:
    pins = json.loads((ROOT / "tools" / "package.json").read_text("utf-8"))["dependencies"]
    manifest = json.loads(vendor_assets.MANIFEST.read_text("utf-8"))
    for package, entry in manifest.items():
        assert pins[package] == entry["version"], "run `make vendor` after changing the pin"
    if not all((vendor_assets.NODE_MODULES / p).exists() for p in vendor_assets.ASSETS):
        message = "the pinned npm packages are not installed: run `make tools`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    assert vendor_assets.manifest_from_packages() == manifest, "run `make vendor`"
