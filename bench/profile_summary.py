"""Summarise a py-spy ``--format raw`` profile (collapsed stacks): where the samples go.

Prints, as shares of all samples: by layer (SQLAlchemy, asyncpg, the event loop...) and by
package, inclusive (a stack counts once for every package
on it) and self (the package of the innermost frame); then the functions with the most self
samples and the most inclusive samples. Line numbers are dropped, so a function is one row.

Run: ``python bench/profile_summary.py PROFILE.folded [--top 25]``. The same file opens in
https://www.speedscope.app (it reads collapsed stacks) for a flame graph.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_STDLIB = re.compile(r"/lib/python3\.\d+/(?P<rest>.*)$")

#: Inclusive shares above this are the event loop and entry points: true of every stack.
_ROOT_SHARE = 0.97

#: Packages by layer, for the "by layer" table (self samples). First match wins.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("event loop and socket I/O", ("stdlib:asyncio", "stdlib:selectors", "stdlib:socket")),
    ("SQLAlchemy", ("sqlalchemy", "greenlet")),
    ("asyncpg", ("asyncpg",)),
    ("FastAPI, Starlette, pydantic", ("fastapi", "starlette", "pydantic", "anyio")),
    ("uvicorn, h11, httptools", ("uvicorn", "h11", "httptools")),
    ("logging (structlog)", ("structlog", "stdlib:logging")),
    ("JSON-RPC client (web3, aiohttp)", ("web3", "aiohttp", "aiohappyeyeballs", "yarl")),
    ("signing (eth_account, eth_keys, rlp)", ("eth_account", "eth_keys", "rlp", "eth_rlp")),
    ("other eth_* libraries", ("eth_", "hexbytes", "ckzg", "cytoolz", "toolz")),
    ("redis client", ("redis",)),
    ("threads (executor hand-offs)", ("stdlib:concurrent", "stdlib:threading")),
    ("Sluice", ("sluice",)),
    ("baseline app", ("baseline_app",)),
    ("other standard library", ("stdlib:", "<frozen")),
)


#: Innermost frames that mean "waiting for work", not working: the event loop's poll, an idle
#: executor thread. py-spy's --nonblocking mode cannot always tell these apart from running.
IDLE_FRAMES = (
    "EpollSelector.select (selectors.py)",
    "_worker (concurrent/futures/thread.py)",
    "Condition.wait (threading.py)",
)


def layer_of(package: str) -> str:
    """The layer a package belongs to (see `LAYERS`)."""
    for layer, prefixes in LAYERS:
        if package.startswith(prefixes):
            return layer
    return "other"


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame: its function and the package its file belongs to."""

    function: str
    package: str


def _package_and_path(path: str) -> tuple[str, str]:
    """The package of a frame's file, and the file's short name.

    py-spy already shortens paths under ``sys.path`` (``asyncio/events.py``,
    ``sqlalchemy/engine/base.py``); full paths are shortened here the same way.
    """
    for marker in ("site-packages/", "dist-packages/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    match = _STDLIB.search(path)
    if match:
        path = match.group("rest")
    if "/sluice/" in path:
        path = "sluice/" + path.rsplit("/sluice/", 1)[1]
    if path.startswith("/"):
        path = path.rsplit("/", 1)[1]
    top = path.split("/", 1)[0].removesuffix(".py")
    if top == "sluice":
        parts = path.split("/")
        return ("sluice." + parts[1].removesuffix(".py") if len(parts) > 2 else "sluice"), path
    if top in sys.stdlib_module_names or top.startswith("<frozen"):
        name = top.removeprefix("<frozen ").removesuffix(">")
        return f"stdlib:{name}", path
    return top or "?", path or "?"


def parse_frame(text: str) -> Frame:
    """A frame of py-spy's raw output: ``function (path:line)``."""
    match = _FRAME.match(text)
    if match is None:
        return Frame(function=text, package="?")
    package, short = _package_and_path(match.group("file"))
    return Frame(function=f"{match.group('name')} ({short})", package=package)


@dataclass
class Profile:
    """Sample counts aggregated from a collapsed-stack file (idle samples left out)."""

    idle: int
    total: int
    package_inclusive: Counter[str]
    package_self: Counter[str]
    function_inclusive: Counter[str]
    function_self: Counter[str]


def load(path: Path, *, include_idle: bool = False) -> Profile:
    """Read and aggregate a collapsed-stack file."""
    profile = Profile(0, 0, Counter(), Counter(), Counter(), Counter())
    cache: dict[str, Frame] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [cache.get(f) or cache.setdefault(f, parse_frame(f)) for f in stack.split(";")]
        if not include_idle and frames[-1].function in IDLE_FRAMES:
            profile.idle += count
            continue
        profile.total += count
        for package in {f.package for f in frames}:
            profile.package_inclusive[package] += count
        for function in {f.function for f in frames}:
            profile.function_inclusive[function] += count
        profile.package_self[frames[-1].package] += count
        profile.function_self[frames[-1].function] += count
    return profile


def _rows(counter: Counter[str], total: int, top: int, *, skip_roots: bool = False) -> list[str]:
    rows = []
    for name, count in counter.most_common():
        share = count / total
        if skip_roots and share > _ROOT_SHARE:
            continue
        rows.append(f"  {100 * share:5.1f}%  {name}")
        if len(rows) == top:
            break
    return rows


def summarize(path: Path, top: int = 25, *, include_idle: bool = False) -> str:
    """A text report of a profile."""
    profile = load(path, include_idle=include_idle)
    if profile.total == 0:
        return f"{path}: no samples"
    lines = [f"{path}: {profile.total} busy samples (shares below are of these)"]
    if profile.idle:
        lines[0] += f"; {profile.idle} idle samples (the event loop waiting) left out"
    layers: Counter[str] = Counter()
    for package, count in profile.package_self.items():
        layers[layer_of(package)] += count
    lines += ["", "by layer, self (innermost frame):"]
    lines += _rows(layers, profile.total, top)
    lines += ["", "by package, inclusive (stacks that pass through it):"]
    lines += _rows(profile.package_inclusive, profile.total, top, skip_roots=True)
    lines += ["", "by package, self (innermost frame):"]
    lines += _rows(profile.package_self, profile.total, top)
    lines += ["", "functions, self:"]
    lines += _rows(profile.function_self, profile.total, top)
    lines += ["", "functions, inclusive:"]
    lines += _rows(profile.function_inclusive, profile.total, top, skip_roots=True)
    return "\n".join(lines)


def main() -> None:
    """Print the summary of each profile named on the command line."""
    parser = argparse.ArgumentParser(description="Summarise py-spy raw (collapsed) profiles.")
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25, help="rows per table")
    parser.add_argument("--include-idle", action="store_true", help="count idle samples too")
    args = parser.parse_args()
    for path in args.profiles:
        print(summarize(path, args.top, include_idle=args.include_idle))
        print()


if __name__ == "__main__":
    main()
