"""Typed reads of the API's JSON, for the models."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sluice_client.errors import UnexpectedResponseError
from sluice_client.status import WithdrawalStatus


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

    def amount(self, name: str) -> Decimal:
        text = self.text(name)
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

    def items(self, name: str) -> list[Any]:
        items: list[Any] = self.value(name, list, "a list")
        return items

    def mapping(self, name: str) -> dict[str, Any]:
        item: dict[str, Any] = self.value(name, dict, "an object")
        return item


def read_list(value: object, what: str) -> list[Any]:
    """A JSON array at the top of an answer."""
    if not isinstance(value, list):
        raise UnexpectedResponseError(f"{what}: expected a JSON array", code="bad_response")
    return value
