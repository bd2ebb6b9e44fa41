"""Operator roles: each covers the ones below it; a disabled operator may do nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sluice.domain.operators import Operator, Role, is_operator_name


@pytest.mark.parametrize(
    ("role", "needed", "may"),
    [
        (Role.VIEWER, Role.VIEWER, True),
        (Role.VIEWER, Role.APPROVER, False),
        (Role.APPROVER, Role.VIEWER, True),
        (Role.APPROVER, Role.APPROVER, True),
        (Role.APPROVER, Role.ADMIN, False),
        (Role.ADMIN, Role.APPROVER, True),
        (Role.ADMIN, Role.ADMIN, True),
    ],
)
def test_a_role_covers_the_roles_below_it(role: Role, needed: Role, may: bool) -> None:
    operator = Operator("op_1", "alice", role, datetime.now(UTC))
    assert operator.may(needed) is may
    assert role.covers(needed) is may


def test_a_disabled_operator_may_do_nothing() -> None:
    operator = Operator("op_1", "alice", Role.ADMIN, datetime.now(UTC), disabled=True)
    assert not operator.may(Role.VIEWER)


@pytest.mark.parametrize(
    ("name", "valid"),
    [("alice", True), ("a.b-c_d@x", True), ("Alice", False), ("", False), ("-x", False)],
)
def test_operator_names_are_lower_case_identifiers(name: str, valid: bool) -> None:
    assert is_operator_name(name) is valid
