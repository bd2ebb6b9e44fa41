"""Typed reads of the API's JSON, for the models."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sluice_client.errors import UnexpectedResponseError
from sluice_client.status import FeeLevel, WithdrawalStatus


class Reader:
    """Typed reads of one JSON object; a missing or mistyped field is an
    `UnexpectedResponseError` naming it, never a KeyError deep in user code."""

    def __init__(self, value: object, what: str) -> None:
        if not isinstance(value, dict):
            raise UnexpectedResponseError(f"{what}: expected a JSON object", code="bad_response")
        self.data: dict[str, Any] = value
        self._what = what

    def _fail(self, name: str, expected: str) -> UnexpectedResponseError:
        got = self.data.get(name, "<missing>")
        return UnexpectedResponseError(
            f"{self._what}.{name}: expected {expected}, got {got!r:.80}", code="bad_response"
        )

    def value(self, name: str, kind: type[Any], expected: str, *, optional: bool = False) -> Any:
        value = self.data.get(name)
        if value is None and optional:
            return None
        # bool is an int: never accept it where a count belongs, nor an int where a bool does.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self._fail(name, expected)
        return value

    def text(self, name: str) -> str:
        text: str = self.value(name, str, "a string")
        return text

    def opt_text(self, name: str) -> str | None:
        text: str | None = self.value(name, str, "a string or null", optional=True)
        return text

    def integer(self, name: str) -> int:
        number: int = self.value(name, int, "an integer")
        return number

    def opt_integer(self, name: str) -> int | None:
        number: int | None = self.value(name, int, "an integer or null", optional=True)
        return number

    def flag(self, name: str) -> bool:
        flag: bool = self.value(name, bool, "true or false")
        return flag

    def number(self, name: str) -> float:
        """A JSON number, integer or not (never a bool); not for money, which is a string."""
        value = self.data.get(name)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self._fail(name, "a number")
        return float(value)

    def texts(self, name: str, *, optional: bool = False) -> list[str]:
        """A list of strings; with ``optional``, a missing or null one is empty."""
        if optional and self.data.get(name) is None:
            return []
        items = self.items(name)
        if not all(isinstance(item, str) for item in items):
            raise self._fail(name, "a list of strings")
        return items

    def amount(self, name: str) -> Decimal:
        return self._decimal(name, self.text(name))

    def opt_amount(self, name: str) -> Decimal | None:
        text = self.opt_text(name)
        return None if text is None else self._decimal(name, text)

    def _decimal(self, name: str, text: str) -> Decimal:
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise self._fail(name, "a decimal string") from None
        if not amount.is_finite():
            raise self._fail(name, "a decimal string")
        return amount

    def wei(self, name: str) -> int:
        amount = self.opt_wei(name)
        if amount is None:
            raise self._fail(name, "an integer as a decimal string")
        return amount

    def opt_wei(self, name: str) -> int | None:
        text = self.opt_text(name)
        if text is None:
            return None
        if not (text.isascii() and text.isdigit()):
            raise self._fail(name, "an integer as a decimal string")
        return int(text)

    def moment(self, name: str) -> datetime:
        moment = self.opt_moment(name)
        if moment is None:
            raise self._fail(name, "an RFC 3339 time")
        return moment

    def opt_moment(self, name: str) -> datetime | None:
        text = self.opt_text(name)
        if text is None:
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise self._fail(name, "an RFC 3339 time") from None
        if moment.tzinfo is None:
            raise self._fail(name, "an RFC 3339 time with a zone")
        return moment

    def status(self, name: str) -> WithdrawalStatus:
        status = self.opt_status(name)
        if status is None:
            raise self._fail(name, "a withdrawal status")
        return status

    def opt_status(self, name: str) -> WithdrawalStatus | None:
        text = self.opt_text(name)
        if text is None:
            return None
        try:
            return WithdrawalStatus(text)
        except ValueError:
            raise self._fail(name, "a known withdrawal status (is the SDK older?)") from None

    def level(self, name: str) -> FeeLevel:
        level = self.opt_level(name)
        if level is None:
            raise self._fail(name, "a fee level")
        return level

    def opt_level(self, name: str) -> FeeLevel | None:
        text = self.opt_text(name)
        if text is None:
            return None
        try:
            return FeeLevel(text)
        except ValueError:
            raise self._fail(name, "a known fee level (is the SDK older?)") from None

    def opt_per_level(self, name: str) -> dict[FeeLevel, Any] | None:
        """An object keyed by fee level (``slow``, ``normal``, ``fast``), or null."""
        item = self.opt_mapping(name)
        if item is None:
            return None
        if not set(item) <= set(FeeLevel):
            raise self._fail(name, "an object keyed by known fee levels (is the SDK older?)")
        return {FeeLevel(key): value for key, value in item.items()}

    def items(self, name: str) -> list[Any]:
        items: list[Any] = self.value(name, list, "a list")
        return items

    def mapping(self, name: str) -> dict[str, Any]:
        item: dict[str, Any] = self.value(name, dict, "an object")
        return item

    def opt_mapping(self, name: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.value(name, dict, "an object or null", optional=True)
        return item


def read_list(value: object, what: str) -> list[Any]:
    """A JSON array at the top of an answer."""
    if not isinstance(value, list):
        raise UnexpectedResponseError(f"{what}: expected a JSON array", code="bad_response")
    return value
