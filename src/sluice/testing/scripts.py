"""The repository's scripts (``scripts/``, not a package) as modules, for the tests that check
what they produce."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

#: The repository's root, for a checkout (an installed package has no scripts).
ROOT = Path(__file__).resolve().parents[3]


def load_script(name: str, root: Path = ROOT) -> ModuleType:
    """``scripts/<name>.py`` loaded from its file.

    Raises:
        FileNotFoundError: No such script (not a checkout of the repository).
    """
    path = root / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None or not path.is_file():
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
