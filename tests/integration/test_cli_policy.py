"""The policy and blocklist commands on a real database: check names the field at fault, load
makes a version the one in force (once), show prints it, and the blocklist imports lines and a
sanctions CSV, lists and removes; each change is in the audit log."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sluice.cli import app
from sluice.cli.check import policy_row
from sluice.services.config_check import Outcome

runner = CliRunner()
GOOD = (
    'label = "cli"\n[[rules]]\nname = "small"\nmax_amount = "1"\naction = "allow"\n'
    '[default]\naction = "require_approval"\n'
)
A = "0x" + "ab" * 20
B = "0x" + "cd" * 20


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("SLUICE_DATABASE_URL", "SLUICE_NETWORKS_FILE", "SLUICE_POLICY_FILE"):
        monkeypatch.delenv(name, raising=False)
    directory = tmp_path / "data"
    monkeypatch.setenv("SLUICE_DATA_DIR", str(directory))
    monkeypatch.setenv("COLUMNS", "200")
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    return directory


def test_check_names_the_field_at_fault(tmp_path: Path, data_dir: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace('max_amount = "1"', "max_amount = 1"), "utf-8")
    result = runner.invoke(app, ["policy", "check", str(bad)])
    assert result.exit_code == 1
    assert "rules[0].max_amount" in result.output
    good = tmp_path / "good.toml"
    good.write_text(GOOD, "utf-8")
    result = runner.invoke(app, ["policy", "check", str(good)])
    assert result.exit_code == 0, result.output
    assert "policy 'cli'" in result.output


def test_load_makes_it_the_one_in_force_once_and_show_prints_it(
    tmp_path: Path, data_dir: Path
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(GOOD.replace('max_amount = "1"', 'max_usd = "5"'), "utf-8")
    (data_dir / "networks.toml").write_text(
        '[networks.base]\npreset = "base"\nrpc_urls = ["http://127.0.0.1:9"]\n'
        'hot_wallet_kms_key_id = "alias/x"\n',
        "utf-8",
    )
    assert runner.invoke(app, ["policy", "show"]).output.startswith("no policy loaded")
    unpriced = runner.invoke(app, ["policy", "load", str(path)])
    assert unpriced.exit_code == 1
    assert "[prices] has none for base:ETH" in unpriced.output
    path.write_text(
        GOOD.replace("[[rules]]", '[prices]\nETH = "3000"\nUSDC = "1"\n[[rules]]').replace(
            'max_amount = "1"', 'max_usd = "5"'
        ),
        "utf-8",
    )
    first = runner.invoke(app, ["policy", "load", str(path)])
    assert first.exit_code == 0, first.output
    assert "now in force" in first.output
    again = runner.invoke(app, ["policy", "load", str(path)])
    assert "was in force already" in again.output
    shown = runner.invoke(app, ["policy", "show"])
    assert "policy 'cli'" in shown.output
    assert "by cli:" in shown.output
    assert 'name = "small"' in shown.output
    audit = runner.invoke(app, ["audit", "list", "--action", "policy.loaded", "--json"])
    assert audit.output.count('"policy.loaded"') == 1


def test_the_blocklist_imports_lines_and_a_csv_lists_and_removes(
    tmp_path: Path, data_dir: Path
) -> None:
    lines = tmp_path / "list.txt"
    lines.write_text(f"# ours\n{A}\n", "utf-8")
    sdn = tmp_path / "sdn.csv"
    sdn.write_text(f'1,"X","Digital Currency Address - ETH {A}; ETH {B};"\n', "utf-8")
    first = runner.invoke(app, ["blocklist", "import", str(lines)])
    assert "1 addresses read, 1 new" in first.output, first.output
    second = runner.invoke(
        app, ["blocklist", "import", str(sdn), "--format", "csv", "--source", "ofac"]
    )
    assert "2 addresses read, 1 new" in second.output, second.output
    listed = runner.invoke(app, ["blocklist", "list"])
    assert listed.output.lower().count("0x") == 2
    assert "ofac" in listed.output
    removed = runner.invoke(app, ["blocklist", "remove", A])
    assert removed.exit_code == 0, removed.output
    assert runner.invoke(app, ["blocklist", "remove", A]).exit_code == 1
    bad = tmp_path / "bad.txt"
    bad.write_text("nope\n", "utf-8")
    refused = runner.invoke(app, ["blocklist", "import", str(bad)])
    assert refused.exit_code != 0
    assert "line 1" in refused.output
    audit = runner.invoke(app, ["audit", "list", "--json"])
    assert audit.output.count('"blocklist.imported"') == 2
    assert audit.output.count('"blocklist.removed"') == 1
    assert runner.invoke(app, ["audit", "verify"]).exit_code == 0


def test_config_check_reports_the_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(GOOD.replace('max_amount = "1"', 'max_usd = "5"'), "utf-8")
    row = policy_row(path, {})
    assert row.result is Outcome.OK
    assert "1 rules" in row.detail
    path.write_text("label = 3", "utf-8")
    assert policy_row(path, {}).result is Outcome.PROBLEM
    assert policy_row(tmp_path / "missing.toml", {}).result is Outcome.PROBLEM
