"""The secret scan finds registered secrets, whatever their case, and nothing else."""

from __future__ import annotations

from sluice.testing import secret_scan


def test_a_registered_secret_is_found_in_any_case_with_or_without_0x() -> None:
    key = "0xAbCdEf0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789"
    secret_scan.register(key, "a test key")

    assert secret_scan.find(f"log line: key={key.lower()}") == ["a test key"]
    assert secret_scan.find(f"error: {key[2:].upper()}") == ["a test key"]
    assert "a test key" not in secret_scan.find("nothing to see here")


def test_an_api_key_is_found_by_its_secret_part_alone() -> None:
    secret_scan.register_api_key("sluice_0123456789abcdef_AAAAbbbbCCCCddddEEEEffff")

    assert secret_scan.find("…bbbbCCCCddddEEEE… AAAAbbbbCCCCddddEEEEffff") == [
        "an API key's secret"
    ]


def test_short_strings_are_not_registered() -> None:
    secret_scan.register("short", "too short")

    assert secret_scan.find("short") == []
