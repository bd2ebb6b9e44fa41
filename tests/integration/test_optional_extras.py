"""The package without its extras: every runtime module imports, and none loads an extra early.

Each check runs in a fresh interpreter (this one has imported everything already). The extras'
libraries are made unimportable there with ``sys.modules[name] = None``, as if not installed;
`sluice.testing.runtime_imports` imports every module (the newcomer check of a plain install).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

EXTRAS_LIBRARIES = ("aiobotocore", "botocore", "boto3", "redis")


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - this interpreter, a script of ours
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_module_outside_sluice_testing_imports_without_the_aws_and_redis_extras() -> None:
    result = _python(
        f"""
        import sys
        for name in {EXTRAS_LIBRARIES!r}:
            sys.modules[name] = None  # as if not installed: its submodules cannot import either
        from sluice.testing.runtime_imports import main, runtime_modules
        assert len(runtime_modules()) > 50, runtime_modules()
        sys.exit(main())
        """
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_composition_root_and_the_command_line_load_no_extra_at_import() -> None:
    result = _python(
        f"""
        import sys
        import sluice.bootstrap, sluice.cli, sluice.runtime
        loaded = sorted(
            name for name in sys.modules if name.split(".", 1)[0] in {EXTRAS_LIBRARIES!r}
        )
        print(loaded)
        sys.exit(1 if loaded else 0)
        """
    )
    assert result.returncode == 0, result.stdout + result.stderr
