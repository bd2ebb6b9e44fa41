"""`sluice config check`: the settings and the networks file against the chains they name."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from sluice.cli.common import console, fail, line, plain, print_json, run, settings
from sluice.errors import ConfigurationError, PolicyError

if TYPE_CHECKING:
    from sluice.config import NetworkConfig
    from sluice.services.config_check import Row

app = typer.Typer(help="Check the configuration.", no_args_is_help=True)

#: Exit status when the configuration cannot be loaded or a check finds a problem.
PROBLEM = 1

_STYLE = {"ok": "green", "problem": "bold red", "skipped": "yellow"}


@app.command("check")
def check(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Load the settings and the networks file, then ask each RPC URL for its chain id, each
    token for its decimals() and each hot wallet for its balances; check the database too.

    Exits 1 on any problem (an empty hot wallet is one: it cannot pay).
    """
    loaded = settings(exit_code=PROBLEM)
    try:
        networks = loaded.networks()
    except ConfigurationError as exc:
        fail(exc.detail, PROBLEM)

    from sluice.bootstrap import config_checker  # noqa: PLC0415 - keeps other commands fast

    try:
        checker = config_checker(loaded)
    except ConfigurationError as exc:
        fail(exc.detail, PROBLEM)
    rows = run(checker.run(networks), exit_code=PROBLEM)
    if loaded.policy_file is not None:
        rows.append(policy_row(loaded.policy_file, networks))
    problems = sum(not row.ok for row in rows)
    if as_json:
        print_json([row.as_dict() for row in rows])
    else:
        table = Table("check", "target", "result", "detail")
        for row in rows:
            style = _STYLE[row.result.value]
            result = plain(row.result.value, style)
            table.add_row(plain(row.check), plain(row.target), result, plain(row.detail))
        console.print(table)
        where = f" ({loaded.networks_file.resolve()})"
        if problems:
            console.print(line((f"{problems} problem(s)", "bold red"), where), highlight=False)
        else:
            console.print(line(("all good", "green"), where), highlight=False)
    raise typer.Exit(PROBLEM if problems else 0)


def policy_row(path: Path, networks: Mapping[str, NetworkConfig]) -> Row:
    """Whether the policy file loads against these networks (docs/policy.md)."""
    from sluice.domain.policy_file import load, unpriced  # noqa: PLC0415 - as above
    from sluice.services.config_check import Outcome, Row  # noqa: PLC0415 - as above

    try:
        policy = load(path.read_bytes(), source=str(path))
    except OSError as exc:
        return Row("policy", str(path), Outcome.PROBLEM, f"cannot read it: {exc.strerror}")
    except PolicyError as exc:
        return Row("policy", str(path), Outcome.PROBLEM, exc.detail)
    served = {
        name: [a.symbol for a in (n.native, *n.tokens)]
        for name, n in ((name, c.to_domain(name, hot_wallets=())) for name, c in networks.items())
    }
    if missing := unpriced(policy, served):
        field, asset = missing[0]
        return Row("policy", str(path), Outcome.PROBLEM, f"{field} values {asset} in USD: no price")
    return Row(
        "policy",
        str(path),
        Outcome.OK,
        f"{policy.label!r}, version {policy.version[:12]}, {len(policy.rules)} rules",
    )
