"""API keys and scopes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sluice.domain.access import ALL_SCOPES, ApiKey, Scope

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
