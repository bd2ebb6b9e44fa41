"""One set of settings: the data directory places the database, the networks file and dev.json,
unless each is set on its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.config import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLUICE_DATA_DIR", "SLUICE_DATABASE_URL", "SLUICE_NETWORKS_FILE"):
        monkeypatch.delenv(name, raising=False)


def test_everything_local_defaults_to_dot_sluice() -> None:
    settings = Settings()
    assert settings.data_dir == Path(".sluice")
    assert settings.database_url == "sqlite+aiosqlite:///.sluice/sluice.db"
    assert settings.networks_file == Path(".sluice/networks.toml")
    assert settings.dev_file == Path(".sluice/dev.json")


def test_the_data_dir_moves_the_database_networks_file_and_dev_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLUICE_DATA_DIR", "/srv/sluice")
    settings = Settings()
    assert settings.database_url == "sqlite+aiosqlite:////srv/sluice/sluice.db"
    assert settings.networks_file == Path("/srv/sluice/networks.toml")
    assert settings.dev_file == Path("/srv/sluice/dev.json")


def test_a_setting_of_its_own_wins_over_the_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_DATA_DIR", "/srv/sluice")
    monkeypatch.setenv("SLUICE_DATABASE_URL", "postgresql+asyncpg://db/sluice")
    monkeypatch.setenv("SLUICE_NETWORKS_FILE", "/etc/sluice/networks.toml")
    settings = Settings()
    assert settings.database_url == "postgresql+asyncpg://db/sluice"
    assert settings.networks_file == Path("/etc/sluice/networks.toml")
    assert settings.dev_file == Path("/srv/sluice/dev.json")


def test_settings_given_in_code_follow_the_same_rule() -> None:
    settings = Settings(data_dir=Path("/var/lib/run-1"))
    assert settings.database_url == "sqlite+aiosqlite:////var/lib/run-1/sluice.db"
    explicit = Settings(data_dir=Path("/var/lib/run-1"), database_url="sqlite+aiosqlite:///x.db")
    assert explicit.database_url == "sqlite+aiosqlite:///x.db"
