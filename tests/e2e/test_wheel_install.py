"""The built wheel, installed as a production install does it, runs: help, migrate, serve.

The wheel is built from a copy of the package's sources (pyproject.toml, README.md, src/), so the
working tree gets no build/ directory. A fresh venv then gets the runtime lock, with hashes
required, and the wheel without dependencies: what an image installs. Nothing of the development
environment is in it (no pytest, moto, schemathesis).

The venv is made without pip and filled by this environment's pip (``pip --python``), and pip
does not compile the packages' bytecode: both only save time (about 15 s here), the installed
files are the same. The pip cache (~/.cache/pip) is used as it is.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sluice.devnet import setup
from sluice.devnet.anvil import AnvilProcess, free_port
from sluice.testing.harness import PASSPHRASE

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = ROOT / "requirements" / "runtime.lock"
INSTALL_TIMEOUT_S = 600.0
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
DEVELOPMENT_ONLY = ("pytest", "moto", "schemathesis", "mypy", "hypothesis")


@dataclass(frozen=True)
class Installed:
    """A venv holding the runtime lock and the built wheel."""

    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def sluice(self) -> Path:
        return self.venv / "bin" / "sluice"


def _clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without Sluice settings or Python paths, plus ``extra``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SLUICE_", "PYTHON", "VIRTUAL_ENV"))
    }
    return {**env, **extra}


def _run(
    *argv: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120.0
) -> str:
    """Run a command to completion; its output, or a failure that shows it."""
    result = subprocess.run(  # noqa: S603 - our own interpreter, pip and the installed command
        [str(arg) for arg in argv],
        cwd=cwd,
        env=env or _clean_environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        command = " ".join(str(arg) for arg in argv[:4])
        pytest.fail(f"{command}… exited {result.returncode}:\n{output[-4000:]}")
    return output


def _pip(*args: str | Path, cwd: Path) -> str:
    return _run(sys.executable, "-m", "pip", *args, cwd=cwd, timeout=INSTALL_TIMEOUT_S)


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel built from these sources, installed with the runtime lock in a fresh venv.

    Once per session: the module's tests run once per node (`anvil` is session-scoped and
    parametrized), and a module-scoped venv would be built again for each."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "src",
        source / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    dist = work / "dist"
    # An absolute path: pip would take a bare word for a package name on the index.
    _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", dist, source.resolve(), cwd=work)
    (wheel,) = dist.glob("sluice_withdrawals-*.whl")

    venv = work / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=work)
    python = venv / "bin" / "python"
    target = ("--python", python)
    _pip(
        *target,
        "install",
        "--quiet",
        "--no-compile",
        "--require-hashes",
        "-r",
        RUNTIME_LOCK,
        cwd=work,
    )
    _pip(*target, "install", "--quiet", "--no-compile", "--no-deps", wheel, cwd=work)
    return Installed(venv)


def test_the_runtime_lock_satisfies_the_wheel_and_holds_no_development_package(
    installed: Installed, tmp_path: Path
) -> None:
    _pip("--python", installed.python, "check", cwd=tmp_path)
    listed = _pip("--python", installed.python, "list", "--format=freeze", cwd=tmp_path).lower()
    names = {line.split("==", 1)[0] for line in listed.splitlines() if "==" in line}
    assert "sluice-withdrawals" in names
    assert not names & set(DEVELOPMENT_ONLY)


def test_every_runtime_module_of_the_installed_wheel_imports(
    installed: Installed, tmp_path: Path
) -> None:
    output = _run(installed.python, "-m", "sluice.testing.runtime_imports", cwd=tmp_path)
    assert output == ""


def test_the_installed_command_prints_its_help(installed: Installed, tmp_path: Path) -> None:
    output = _run(installed.sluice, "--help", cwd=tmp_path)
    for command in ("serve", "worker", "migrate"):
        assert command in output


def test_the_installed_command_migrates_a_new_sqlite_database(
    installed: Installed, tmp_path: Path
) -> None:
    database = tmp_path / "fresh.db"
    env = _clean_environment(SLUICE_DATABASE_URL=f"sqlite+aiosqlite:///{database}")
    _run(installed.sluice, "migrate", cwd=tmp_path, env=env)
    assert database.stat().st_size > 0


@pytest.fixture
def served(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes started by the test, killed (their whole group) if still running at the end."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT_S)


def test_the_installed_command_serves_until_ready_and_stops_cleanly_on_sigterm(
    installed: Installed,
    anvil: AnvilProcess,
    tmp_path: Path,
    served: list[subprocess.Popen[bytes]],
) -> None:
    data_dir = tmp_path / "data"
    keystore = setup.hot_wallet(data_dir, PASSPHRASE, fast_kdf=True)
    chain = setup.prepare_chain(anvil.rpc_url, data_dir, setup.hot_wallet_address(keystore))
    networks = data_dir / "networks.toml"
    setup.write_networks_file(
        networks,
        rpc_url=anvil.rpc_url,
        keystore=keystore,
        token=chain.token,
        confirmations=1,
        poll_interval_s=0.5,
    )
    env = _clean_environment(
        SLUICE_DATA_DIR=str(data_dir),
        SLUICE_DATABASE_URL=f"sqlite+aiosqlite:///{data_dir / 'sluice.db'}",
        SLUICE_NETWORKS_FILE=str(networks),
        SLUICE_KEYSTORE_PASSPHRASE=PASSPHRASE,
    )
    _run(installed.sluice, "migrate", cwd=tmp_path, env=env)
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - the installed command, our arguments
            [str(installed.sluice), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so the fixture can end all of it
        )
    served.append(process)

    deadline = time.monotonic() + READY_TIMEOUT_S
    status = None
    while time.monotonic() < deadline and process.poll() is None:
        try:
            status = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2.0).status_code
        except httpx.TransportError:
            status = None
        if status == 200:
            break
        time.sleep(0.25)
    text = log.read_text(encoding="utf-8", errors="replace")
    assert status == 200, f"/ready answered {status}; exit code {process.poll()}:\n{text[-4000:]}"

    process.send_signal(signal.SIGTERM)
    exit_code = process.wait(timeout=STOP_TIMEOUT_S)
    text = log.read_text(encoding="utf-8", errors="replace")
    assert exit_code == 0, text[-4000:]
    assert "Traceback" not in text
