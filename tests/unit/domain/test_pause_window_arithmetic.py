"""The circuit breaker's arithmetic (`sluice.domain.pauses`): the limit is inclusive, one base
unit over trips; the window rolls, and a resume starts a fresh one; windows parse from the
networks file's durations and print back the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sluice.domain.pauses import (
    EVERY_NETWORK,
    CircuitBreaker,
    Pause,
    PauseKind,
    breaker_verdict,
    format_window,
    parse_window,
    trip_reason,
    window_start,
)

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
ETH = 10**18


@pytest.mark.parametrize(
    ("outflow", "amount", "limit", "allowed"),
    [
        (0, 50 * ETH, 50 * ETH, True),  # exactly the limit at once
        (49 * ETH, ETH, 50 * ETH, True),  # reaches it exactly
        (50 * ETH, 1, 50 * ETH, False),  # one base unit over
        (49 * ETH, ETH + 1, 50 * ETH, False),
        (0, 50 * ETH + 1, 50 * ETH, False),  # a single payout above the limit
        (0, 0, 0, True),
        (2**255, 2**255 - 1, 2**256 - 1, True),  # exact integers, never floats
        (2**255, 2**255, 2**256 - 1, False),
    ],
)
def test_the_limit_is_inclusive_and_one_base_unit_more_trips(
    outflow: int, amount: int, limit: int, allowed: bool
) -> None:
    assert breaker_verdict(outflow, amount, limit) is allowed


def test_negative_amounts_are_refused() -> None:
    with pytest.raises(ValueError, match="never negative"):
        breaker_verdict(-1, 1, 1)


def test_the_window_rolls_back_from_now() -> None:
    assert window_start(NOW, 3600, None) == NOW - timedelta(hours=1)


def test_a_resume_within_the_window_starts_a_fresh_one() -> None:
    resumed = NOW - timedelta(minutes=10)
    assert window_start(NOW, 3600, resumed) == resumed


def test_a_resume_older_than_the_window_changes_nothing() -> None:
    assert window_start(NOW, 3600, NOW - timedelta(hours=2)) == NOW - timedelta(hours=1)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h", 3600),
        ("30m", 1800),
        ("90s", 90),
        ("1d", 86_400),
        ("1h30m", 5400),
        (" 2H ", 7200),
        (3600, 3600),
        ("7d", 7 * 86_400),
    ],
)
def test_windows_are_seconds_or_durations(text: object, seconds: int) -> None:
    assert parse_window(text) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1x", "not a duration"),
        ("h", "not a duration"),
        ("1h 30m", "not a duration"),
        ("", "not a duration"),
        (0, "between 1 second and 7 days"),
        ("8d", "between 1 second and 7 days"),
        (1.5, "seconds or a duration"),
        (True, "seconds or a duration"),
    ],
)
def test_bad_windows_are_refused_saying_why(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_window(value)


@pytest.mark.parametrize(("seconds", "text"), [(3600, "1h"), (5400, "1h30m"), (45, "45s")])
def test_windows_print_as_people_write_them(seconds: int, text: str) -> None:
    assert format_window(seconds) == text
    assert parse_window(text) == seconds


def test_a_trip_names_the_outflow_the_limit_and_the_window_in_token_units() -> None:
    reason = trip_reason(
        network="base",
        symbol="USDC",
        decimals=6,
        outflow=249_999_000_000,
        amount=1_000_001,
        limit=250_000_000_000,
        window_s=86_400,
    )
    assert reason == (
        "outflow of 250000.000001 USDC on base within 1d would pass its limit of 250000 USDC"
    )


def test_an_asset_without_a_limit_has_none() -> None:
    breaker = CircuitBreaker(window_s=60, limits={"native": 5})
    assert breaker.limit_of("native") == 5
    assert breaker.limit_of("0xtoken") is None


def test_the_waiting_reason_says_which_pause_holds_the_withdrawal() -> None:
    manual = Pause("base", NOW, PauseKind.MANUAL, "incident 7", "operator:op_1")
    freeze = Pause(EVERY_NETWORK, NOW, PauseKind.MANUAL, "freeze", "cli:alice")
    trip = Pause("base", NOW, PauseKind.CIRCUIT_BREAKER, "outflow of …", "system:sluice")
    assert manual.waiting_reason("base") == (
        "paused: network base is paused by operator:op_1: incident 7"
    )
    assert freeze.everywhere
    assert freeze.waiting_reason("base") == "paused: every network is frozen by cli:alice: freeze"
    assert trip.waiting_reason("base") == "circuit_breaker: outflow of …"
