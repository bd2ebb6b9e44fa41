"""Amounts: decimal strings at the edge, integer base units inside."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sluice.domain.amounts import MAX_BASE_UNITS, format_amount, parse_amount
from sluice.errors import InvalidAmountError

FAST = settings(max_examples=200, deadline=None, database=None)

ETHER = 10**18


@pytest.mark.parametrize(
    ("text", "decimals", "base_units"),
    [
        pytest.param("1.5", 18, 1_500_000_000_000_000_000, id="one-and-a-half-with-18-decimals"),
        pytest.param("0.000001", 6, 1, id="smallest-unit-with-6-decimals"),
        pytest.param("10", 18, 10 * ETHER, id="whole-number"),
        pytest.param("1.50", 18, 1_500_000_000_000_000_000, id="trailing-zero-in-fraction"),
        pytest.param("007", 18, 7 * ETHER, id="leading-zeros"),
        pytest.param("7", 0, 7, id="zero-decimals"),
        pytest.param("1.000000", 6, 1_000_000, id="zeros-up-to-the-precision"),
        pytest.param("1.0000000", 6, 1_000_000, id="zeros-beyond-the-precision-are-exact"),
        pytest.param("0.5", 1, 5, id="fraction-only-value"),
        pytest.param(str(MAX_BASE_UNITS), 0, MAX_BASE_UNITS, id="uint256-max-exactly"),
        pytest.param(
            format_amount(MAX_BASE_UNITS, 18), 18, MAX_BASE_UNITS, id="uint256-max-in-ether"
        ),
        pytest.param("0" * 79 + "1", 0, 1, id="80-digit-whole-part-with-leading-zeros"),
    ],
)
def test_a_plain_positive_decimal_is_parsed_into_base_units(
    text: str, decimals: int, base_units: int
) -> None:
    assert parse_amount(text, decimals) == base_units


def test_a_trailing_zero_does_not_change_the_amount() -> None:
    assert parse_amount("1.50", 18) == parse_amount("1.5", 18)


NOT_A_DECIMAL = "positive decimal string"
TOO_PRECISE = "more than"
ZERO = "greater than zero"
TOO_LARGE = "too large"


@pytest.mark.parametrize(
    ("text", "decimals", "message"),
    [
        pytest.param("0", 18, ZERO, id="zero"),
        pytest.param("0.0", 18, ZERO, id="zero-with-fraction"),
        pytest.param("000.000", 18, ZERO, id="zero-with-padding"),
        pytest.param("-1", 18, NOT_A_DECIMAL, id="negative-sign"),
        pytest.param("+1", 18, NOT_A_DECIMAL, id="plus-sign"),
        pytest.param("1e18", 18, NOT_A_DECIMAL, id="exponent"),
        pytest.param("abc", 18, NOT_A_DECIMAL, id="letters"),
        pytest.param("", 18, NOT_A_DECIMAL, id="empty"),
        pytest.param(" 1", 18, NOT_A_DECIMAL, id="leading-space"),
        pytest.param("1 ", 18, NOT_A_DECIMAL, id="trailing-space"),
        pytest.param("1\n", 18, NOT_A_DECIMAL, id="trailing-newline"),
        pytest.param("1,5", 18, NOT_A_DECIMAL, id="comma-separator"),
        pytest.param("1_000", 18, NOT_A_DECIMAL, id="underscore-separator"),
        pytest.param(".5", 18, NOT_A_DECIMAL, id="no-whole-part"),
        pytest.param("5.", 18, NOT_A_DECIMAL, id="no-fraction-after-the-point"),
        pytest.param("1.2.3", 18, NOT_A_DECIMAL, id="two-points"),
        pytest.param("0x10", 18, NOT_A_DECIMAL, id="hexadecimal"),
        pytest.param("\u0663", 18, NOT_A_DECIMAL, id="non-ascii-digit"),
        pytest.param("NaN", 18, NOT_A_DECIMAL, id="nan"),
        pytest.param("1.0000001", 6, TOO_PRECISE, id="more-decimals-than-the-token-has"),
        pytest.param("1.5", 0, TOO_PRECISE, id="any-fraction-with-zero-decimals"),
        pytest.param(str(MAX_BASE_UNITS + 1), 0, TOO_LARGE, id="uint256-max-plus-one"),
        pytest.param("1" + "0" * 60, 18, TOO_LARGE, id="above-uint256-after-scaling"),
        pytest.param("9" * 81, 0, TOO_LARGE, id="81-digit-whole-part"),
    ],
)
def test_anything_but_a_positive_decimal_within_precision_and_uint256_is_refused(
    text: str, decimals: int, message: str
) -> None:
    with pytest.raises(InvalidAmountError, match=message):
        parse_amount(text, decimals)


@pytest.mark.parametrize(
    ("base_units", "decimals", "text"),
    [
        pytest.param(0, 18, "0", id="zero"),
        pytest.param(0, 0, "0", id="zero-with-zero-decimals"),
        pytest.param(1, 6, "0.000001", id="smallest-unit"),
        pytest.param(1_500_000_000_000_000_000, 18, "1.5", id="trailing-zeros-trimmed"),
        pytest.param(10 * ETHER, 18, "10", id="whole-number-has-no-point"),
        pytest.param(1_050_000, 6, "1.05", id="inner-zero-kept"),
        pytest.param(1_000_001, 6, "1.000001", id="leading-fraction-zeros-kept"),
        pytest.param(123, 0, "123", id="zero-decimals"),
        pytest.param(MAX_BASE_UNITS, 0, str(MAX_BASE_UNITS), id="uint256-max"),
    ],
)
def test_base_units_are_formatted_as_the_shortest_exact_decimal(
    base_units: int, decimals: int, text: str
) -> None:
    assert format_amount(base_units, decimals) == text


@pytest.mark.parametrize("base_units", [-1, -(10**18)], ids=["minus-one", "minus-one-ether"])
def test_formatting_a_negative_amount_raises_value_error(base_units: int) -> None:
    with pytest.raises(ValueError, match="never negative"):
        format_amount(base_units, 18)


@FAST
@given(base_units=st.integers(0, MAX_BASE_UNITS), decimals=st.integers(0, 36))
def test_formatting_then_parsing_gives_back_the_same_base_units(
    base_units: int, decimals: int
) -> None:
    text = format_amount(base_units, decimals)
    if base_units == 0:
        assert text == "0"
        with pytest.raises(InvalidAmountError):
            parse_amount(text, decimals)
    else:
        assert parse_amount(text, decimals) == base_units
