"""`sluice.faults`: kill points parse strictly, cost nothing unset, and SIGKILL when reached."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from sluice import faults


def test_parse_reads_names_and_counts() -> None:
    assert faults.parse("after_sign:3, after_send,") == {"after_sign": 3, "after_send": 1}
    assert faults.parse("") == {}


@pytest.mark.parametrize("spec", ["after_lunch:1", "after_sign:0", "after_sign:x"])
def test_parse_refuses_unknown_points_and_bad_counts(spec: str) -> None:
    with pytest.raises(ValueError, match=r"SLUICE_FAULT_KILL_AT|invalid literal"):
        faults.parse(spec)


def test_checkpoints_are_no_ops_without_kill_points() -> None:
    faults.configure(None)
    for point in faults.KILL_POINTS:
        faults.checkpoint(point)  # still alive


def _run(spec: str, script: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, faults.ENV: spec}
    return subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_process_is_killed_the_nth_time_a_point_is_reached() -> None:
    script = (
        "from sluice import faults\n"
        "for n in range(1, 6):\n"
        "    faults.checkpoint('after_send')\n"
        "    faults.checkpoint('after_sign', when=False)\n"
        "    print(n, flush=True)\n"
    )
    done = _run("after_send:3,after_sign:1", script)
    assert done.returncode == -signal.SIGKILL
    assert done.stdout.split() == ["1", "2"]
    assert "SIGKILL at after_send (time 3)" in done.stderr
