"""API keys and scopes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from sluice.domain.access import ALL_SCOPES, ApiKey, Scope, is_user_id, parse_ip_ranges

CREATED = datetime(2025, 1, 1, tzinfo=UTC)
REVOKED = datetime(2025, 2, 1, tzinfo=UTC)


def make_key(scopes: frozenset[Scope], revoked_at: datetime | None = None) -> ApiKey:
    return ApiKey(
        id="key-1",
        name="ops",
        scopes=scopes,
        secret_hash="hash",
        created_at=CREATED,
        revoked_at=revoked_at,
    )


@pytest.mark.parametrize(
    ("scopes", "revoked_at", "scope", "allowed"),
    [
        pytest.param(
            frozenset({Scope.WITHDRAWALS_READ}), None, Scope.WITHDRAWALS_READ, True, id="live-has"
        ),
        pytest.param(
            frozenset({Scope.WITHDRAWALS_READ}),
            None,
            Scope.WITHDRAWALS_WRITE,
            False,
            id="live-missing-scope",
        ),
        pytest.param(frozenset(), None, Scope.ADMIN, False, id="live-without-any-scope"),
        pytest.param(ALL_SCOPES, REVOKED, Scope.ADMIN, False, id="revoked-has-scope"),
        pytest.param(
            frozenset({Scope.WITHDRAWALS_READ}),
            REVOKED,
            Scope.ADMIN,
            False,
            id="revoked-missing-scope",
        ),
    ],
)
def test_a_key_allows_a_scope_only_when_live_and_carrying_it(
    scopes: frozenset[Scope], revoked_at: datetime | None, scope: Scope, allowed: bool
) -> None:
    assert make_key(scopes, revoked_at).allows(scope) is allowed


@pytest.mark.parametrize("scope", list(Scope), ids=[s.value for s in Scope])
def test_a_live_key_with_all_scopes_allows_each_scope(scope: Scope) -> None:
    assert make_key(ALL_SCOPES).allows(scope)


def test_all_scopes_are_write_read_and_admin() -> None:
    assert frozenset({"withdrawals:write", "withdrawals:read", "admin"}) == ALL_SCOPES
    assert frozenset(Scope) == ALL_SCOPES


def test_admin_does_not_imply_the_other_scopes() -> None:
    key = make_key(frozenset({Scope.ADMIN}))
    assert not key.allows(Scope.WITHDRAWALS_READ)
    assert not key.allows(Scope.WITHDRAWALS_WRITE)


def test_an_unrestricted_key_acts_for_every_user_from_anywhere() -> None:
    key = make_key(ALL_SCOPES)
    assert key.may_act_for("anyone")
    assert key.admits("203.0.113.9")
    assert key.admits(None)


def test_a_key_restricted_to_users_never_acts_as_admin_even_if_stored_with_it() -> None:
    key = replace(make_key(ALL_SCOPES), user_ids=frozenset({"bob"}))
    assert not key.allows(Scope.ADMIN)
    assert key.allows(Scope.WITHDRAWALS_WRITE)
    assert key.allows(Scope.WITHDRAWALS_READ)


def test_a_key_restricted_to_users_acts_only_for_them() -> None:
    key = replace(make_key(ALL_SCOPES), user_ids=frozenset({"bob", "carol"}))
    assert key.may_act_for("bob")
    assert key.may_act_for("carol")
    assert not key.may_act_for("alice")


@pytest.mark.parametrize(
    ("address", "admitted"),
    [
        pytest.param("10.1.2.3", True, id="inside-v4"),
        pytest.param("11.0.0.1", False, id="outside-v4"),
        pytest.param("2001:db8::1", True, id="inside-v6"),
        pytest.param("2001:db9::1", False, id="outside-v6"),
        pytest.param("not-an-ip", False, id="garbage"),
        pytest.param(None, False, id="unknown"),
    ],
)
def test_a_key_restricted_to_ip_ranges_admits_only_addresses_inside(
    address: str | None, admitted: bool
) -> None:
    key = replace(make_key(ALL_SCOPES), ip_ranges=("10.0.0.0/8", "2001:db8::/32"))
    assert key.admits(address) is admitted


def test_ip_ranges_are_parsed_into_canonical_cidr_form() -> None:
    assert parse_ip_ranges(["10.1.2.3/8", " 192.0.2.7 ", "2001:DB8::/32"]) == (
        "10.0.0.0/8",
        "192.0.2.7/32",
        "2001:db8::/32",
    )
    with pytest.raises(ValueError, match="does not appear"):
        parse_ip_ranges(["10.0.0.0/33"])


@pytest.mark.parametrize("user_id", ["u", "user-42", "alice@example.com", "acct:7.x_y", "9" * 128])
def test_a_user_id_of_the_documented_characters_is_accepted(user_id: str) -> None:
    assert is_user_id(user_id)


@pytest.mark.parametrize(
    "user_id", ["", "a/b", "a b", "a+b", "a%2F", "a?b", "#a", "-a", "9" * 129, "ü"]
)
def test_anything_else_is_not_a_user_id(user_id: str) -> None:
    assert not is_user_id(user_id)
