"""A fallback dependency audit for machines where pip-audit cannot reach vulnerability data.

pip-audit asks PyPI's per-version JSON API (``/pypi/<name>/<version>/json``) or OSV; behind some
registry mirrors neither answers, and pip-audit then audits nothing. PyPI's project JSON
(``/pypi/<name>/json``) still answers, and its ``vulnerabilities`` list describes the project's
latest release. So for every pin in the lock files that *is* the latest release, this reports
PyPI's known vulnerabilities; pins behind the latest are listed as not audited here.

Exit status 1 if a pinned latest release has a known vulnerability, else 0.
Run: ``.venv/bin/python scripts/audit_lock.py [LOCK ...]`` (default: every requirements/*.lock).
A lock is a requirements file: ``name==version`` lines, optionally with an environment marker and
``--hash`` options (as `make lock` writes them).
"""

from __future__ import annotations

import concurrent.futures
import json
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PYPI = "https://pypi.org/pypi/{name}/json"


@dataclass(frozen=True)
class Verdict:
    """What PyPI says about one pin."""

    name: str
    pinned: str
    latest: str | None
    vulnerabilities: tuple[str, ...]
    error: str | None = None


def pins(lock: Path) -> list[tuple[str, str]]:
    """(name, version) of every ``name==version`` line (markers, hashes and comments aside)."""
    result = []
    for raw in lock.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, version = line.split("==", 1)
            version = version.split(";", 1)[0].split(" ", 1)[0].rstrip("\\").strip()
            result.append((name.strip(), version))
    return result


def all_pins(locks: list[Path]) -> list[tuple[str, str]]:
    """The pins of every lock, each (name, version) once, in order."""
    return list(dict.fromkeys(pin for lock in locks for pin in pins(lock)))


def check(pin: tuple[str, str]) -> Verdict:
    """PyPI's project JSON for one pin."""
    name, version = pin
    try:
        # A fixed https URL of PyPI, built from a package name in our own lock file.
        with urllib.request.urlopen(PYPI.format(name=name), timeout=30) as answer:  # noqa: S310  # nosec B310
            data = json.load(answer)
    except (OSError, ValueError) as exc:
        return Verdict(name, version, None, (), error=type(exc).__name__)
    vulnerabilities = tuple(
        str(v.get("id")) for v in data.get("vulnerabilities") or [] if not v.get("withdrawn")
    )
    return Verdict(name, version, str(data["info"]["version"]), vulnerabilities)


def main(argv: list[str]) -> int:
    """Audit the lock files; print a summary; 1 on a finding."""
    locks = [Path(arg) for arg in argv[1:]] or sorted(Path("requirements").glob("*.lock"))
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        verdicts = list(pool.map(check, all_pins(locks)))
    latest = [v for v in verdicts if v.latest == v.pinned]
    behind = [v for v in verdicts if v.latest is not None and v.latest != v.pinned]
    failed = [v for v in verdicts if v.error is not None]
    vulnerable = [v for v in latest if v.vulnerabilities]
    print(
        f"{len(verdicts)} pins: {len(latest)} at their latest release (audited), "
        f"{len(behind)} behind it (not audited here), {len(failed)} not reachable"
    )
    for v in behind:
        print(f"  not audited: {v.name}=={v.pinned} (latest {v.latest})")
    for v in failed:
        print(f"  not reachable: {v.name} ({v.error})")
    for v in vulnerable:
        print(f"  VULNERABLE: {v.name}=={v.pinned}: {', '.join(v.vulnerabilities)}")
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
