"""Fixtures of the SDK's tests: a real `sluice dev` instance for the integration suite.

`sluice dev` runs as a subprocess (its own process group, its own data directory, free ports),
so the suite tests the SDK against the API as it is served, not against a copy of it. Without
the ``sluice`` command or the pinned Anvil binary those tests are skipped locally and fail in
CI (``CI=true``), where ``make install`` provides both.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import httpx
import pytest

from sdk_dev_instance import DevInstance, sluice_env

#: How long `sluice dev` may take to start (Anvil, the demo token, migrations) and to stop.
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0


def _unavailable(reason: str) -> NoReturn:
    """Skip locally; fail in CI, where `make install` provides `sluice` and Anvil."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _sluice_command() -> Path | None:
    """The ``sluice`` command: ``SLUICE_BIN``, else beside this Python (the repository's .venv)."""
    configured = os.environ.get("SLUICE_BIN")
    if configured:
        return Path(configured) if Path(configured).exists() else None
    beside = Path(sys.executable).parent / "sluice"
    if beside.exists():
        return beside
    found = shutil.which("sluice")
    return None if found is None else Path(found)


def _anvil_missing() -> str | None:
    """Why Anvil cannot run, if Sluice can tell (the SDK itself never imports `sluice`)."""
    try:
        from sluice.devnet.anvil import anvil_binary  # noqa: PLC0415 - test set-up only
    except ImportError:
        return None  # another environment: `sluice dev` will say
    if anvil_binary() is None:
        return "the pinned anvil is not installed: run `make tools`"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (Linux /proc), e.g. the Anvil in a session of its own."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited: only its parent's wait is missing.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes], others: list[int]) -> None:
    """SIGTERM the instance's process group and wait; SIGKILL whatever is left, by pid."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_S)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while any(_alive(pid) for pid in others) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in others if _alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    if left:
        pytest.fail(f"sluice dev left processes behind (killed): {left}")


@pytest.fixture(scope="session")
def sluice_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevInstance]:
    """One `sluice dev` for the session: API, workers and an Anvil mining every second."""
    sluice = _sluice_command()
    if sluice is None:
        _unavailable("the `sluice` command is not installed: run `make install`")
    missing = _anvil_missing()
    if missing is not None:
        _unavailable(missing)
    data_dir = tmp_path_factory.mktemp("sluice-dev")
    port, anvil_port = _free_port(), _free_port()
    log_path = data_dir / "sluice-dev.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own command and flags
            [str(sluice), "dev", "--port", str(port), "--anvil-port", str(anvil_port)],
            env=sluice_env(data_dir),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    others: list[int] = []
    try:
        dev_file = data_dir / "dev.json"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            others = sorted(set(others) | set(_descendants(process.pid)))
            if process.poll() is not None:
                log_text = log_path.read_text(errors="replace")[-3000:]
                pytest.fail(f"sluice dev exited with {process.returncode}:\n{log_text}")
            if dev_file.exists() and _healthy(f"http://127.0.0.1:{port}"):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"sluice dev did not start in {START_TIMEOUT_S:g} s")
            time.sleep(0.25)
        info = json.loads(dev_file.read_text(encoding="utf-8"))
        yield DevInstance(
            api_url=info["apiUrl"],
            api_key=info["apiKey"],
            network=info["network"],
            tokens=info["tokens"],
            demo_user_id=info["demoUserId"],
            hot_wallet=info["hotWallet"],
            data_dir=data_dir,
            sluice=sluice,
        )
    finally:
        others = sorted(set(others) | set(_descendants(process.pid)))
        _stop(process, others)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sluice_dev: runs against a real `sluice dev` instance (needs Anvil)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that use `sluice_dev`, so ``-m 'not sluice_dev'`` leaves them out."""
    for item in items:
        if "sluice_dev" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.sluice_dev)
