"""Amounts: integers in base units inside, canonical decimal strings at the edge.

A decimal string such as ``"1.5"`` becomes ``1_500_000_000_000_000_000`` base units for an asset
with 18 decimals. Floats never appear: parsing is textual, so no binary rounding can creep in.
"""

from __future__ import annotations

import re

from sluice.errors import InvalidAmountError

# Plain positive decimals only: no sign, no exponent, no separators, no surrounding spaces.
_DECIMAL = re.compile(r"(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?")

#: The largest amount an EVM transfer can carry (uint256).
MAX_BASE_UNITS = 2**256 - 1


def parse_amount(text: str, decimals: int) -> int:
    """Parse a decimal string in token units into base units.

    Args:
        text: The amount as the caller wrote it, e.g. ``"1.5"``.
        decimals: The asset's decimals, which bound the precision.

    Returns:
        The amount in base units, always positive.

    Raises:
        InvalidAmountError: The text is not a plain positive decimal, has more fractional digits
            than the asset allows, or exceeds uint256.
    """
    match = _DECIMAL.fullmatch(text)
    if match is None:
        raise InvalidAmountError(
            'amount must be a positive decimal string such as "1.5" (no sign, exponent or spaces)'
        )
    whole = match.group("whole")
    fraction = (match.group("fraction") or "").rstrip("0")
    if len(fraction) > decimals:
        raise InvalidAmountError(f"amount has more than {decimals} decimal places")
    if len(whole) > 80:  # far beyond uint256; refuse before building a huge integer
        raise InvalidAmountError("amount is too large")
    scale: int = 10**decimals
    base_units = int(whole) * scale + int(fraction.ljust(decimals, "0") or "0")
    if base_units == 0:
        raise InvalidAmountError("amount must be greater than zero")
    if base_units > MAX_BASE_UNITS:
        raise InvalidAmountError("amount is too large")
    return base_units


def format_amount(base_units: int, decimals: int) -> str:
    """Render base units as the shortest exact decimal string in token units.

    Args:
        base_units: A non-negative amount in base units.
        decimals: The asset's decimals.

    Returns:
        For example ``"1.5"``, ``"0.000001"`` or ``"10"``.
    """
    if base_units < 0:
        raise ValueError("amounts are never negative")
    scale: int = 10**decimals
    whole, fraction = divmod(base_units, scale)
    if fraction == 0:
        return str(whole)
    return f"{whole}.{str(fraction).rjust(decimals, '0').rstrip('0')}"
