"""`sluice policy check|load|show`: the withdrawal policy file (docs/policy.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sluice.cli.common import cli_actor, console, fail, line, records, run, settings
from sluice.clock import SystemClock
from sluice.domain.policy import StoredPolicy
from sluice.domain.policy_file import load
from sluice.errors import PolicyError

app = typer.Typer(help="Check, load and show the withdrawal policy.", no_args_is_help=True)


def _read(path: Path | None) -> tuple[Path, bytes]:
    loaded = settings()
    target = path or loaded.policy_file
    if target is None:
        fail("no policy file: name one, or set SLUICE_POLICY_FILE")
    try:
        return target, target.read_bytes()
    except OSError as exc:
        fail(f"cannot read {target}: {exc}")


@app.command("check")
def check(
    path: Annotated[Path | None, typer.Argument(help="Default: SLUICE_POLICY_FILE.")] = None,
) -> None:
    """Check a policy file without loading it; exit 1 naming the field at fault."""
    target, raw = _read(path)
    try:
        policy = load(raw, source=str(target))
    except PolicyError as exc:
        fail(f"{target}: {exc.detail}", 1)
    console.print(
        line(
            f"{target}: policy {policy.label!r}, version {policy.version[:12]}, "
            f"{len(policy.rules)} rules"
        ),
        highlight=False,
    )


@app.command("load")
def load_command(
    path: Annotated[Path | None, typer.Argument(help="Default: SLUICE_POLICY_FILE.")] = None,
) -> None:
    """Make a policy file the one in force now, in every process (within 2 s), as SIGHUP or
    `POST /v1/admin/policy/reload` do."""
    target, raw = _read(path)
    loaded = settings()

    async def main() -> tuple[str, str, bool]:
        from sluice.services.policy import record_policy  # noqa: PLC0415 - keeps --help fast

        networks = [c.to_domain(name, hot_wallets=()) for name, c in loaded.networks().items()]
        async with records(loaded) as uow:
            result = await record_policy(
                uow,
                raw,
                source=str(target),
                actor=cli_actor(),
                networks=networks,
                clock=SystemClock(),
            )
            await uow.commit()
        return result.policy.label, result.policy.version, result.changed

    label, version, changed = run(main(), exit_code=1)
    what = "now in force" if changed else "was in force already"
    console.print(line(f"policy {label!r} ({version[:12]}) {what}"), highlight=False)


@app.command("show")
def show() -> None:
    """The policy in force: its version, label, when and by whom it was loaded, and its text."""
    loaded = settings()

    async def main() -> StoredPolicy | None:
        async with records(loaded) as uow:
            return await uow.policy.current()

    current = run(main())
    if current is None:
        console.print(line("no policy loaded: the built-in one allows everything"))
        return
    console.print(
        line(
            f"policy {current.label!r}, version {current.version}, loaded "
            f"{current.loaded_at.isoformat(timespec='seconds')} by {current.loaded_by}"
        ),
        highlight=False,
    )
    print(current.body)
