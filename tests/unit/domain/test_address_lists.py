"""Blocklist files: one address per line, or every address in a sanctions list's CSV."""

from __future__ import annotations

import pytest

from sluice.domain.address_lists import parse_csv, parse_lines
from sluice.errors import InvalidRequestError

A = "0x" + "ab" * 20
B = "0x" + "cd" * 20


def test_lines_skip_blanks_and_comments_and_take_any_case() -> None:
    text = f"# sanctioned\n\n{A.upper().replace('0X', '0x')}\n  {B}  # from the list\n"
    assert [a.lower() for a in parse_lines(text)] == [A, B]


def test_a_line_that_is_not_an_address_is_named() -> None:
    with pytest.raises(InvalidRequestError, match="line 3") as refused:
        parse_lines(f"{A}\n\nnot-an-address\n")
    assert refused.value.field == "line 3"


def test_a_csv_gives_every_address_in_any_column_once() -> None:
    text = (
        "ent_num,SDN_Name,remarks\n"
        f'1,"MIXER","Digital Currency Address - ETH {A}; Digital Currency Address - ETH {B};"\n'
        f'2,"{A}",""\n'
        '3,"NOBODY","0x12 is too short"\n'
    )
    assert [a.lower() for a in parse_csv(text)] == [A, B]
