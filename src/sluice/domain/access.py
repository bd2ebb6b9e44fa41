"""API keys and the scopes they carry."""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime


class Scope(enum.StrEnum):
    """What an API key may do."""

    WITHDRAWALS_WRITE = "withdrawals:write"
    """Request and cancel withdrawals."""
    WITHDRAWALS_READ = "withdrawals:read"
    """Read withdrawals, their history, and user balances."""
    ADMIN = "admin"
    """Credit ledgers, manage dead letters and keys."""


ALL_SCOPES = frozenset(Scope)

#: A user id: what a platform calls its user. Only characters that mean the same in a path, a
#: query string and a log line (no `/`, `?`, `#`, `%`, `+`, spaces).
USER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
_USER_ID = re.compile(USER_ID_PATTERN)


def is_user_id(text: str) -> bool:
    """Whether ``text`` is a user id the API accepts (`USER_ID_PATTERN`)."""
    return _USER_ID.match(text) is not None


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key: only a hash of its secret is kept."""

    id: str
    name: str
    scopes: frozenset[Scope]
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None = None
    user_ids: frozenset[str] | None = None
    """The users this key may act for (a platform's sub-account); None: every user."""
    ip_ranges: tuple[str, ...] = ()
    """CIDR ranges requests with this key must come from; empty: anywhere."""
    require_signature: bool = False
    """Whether every request must be signed (with the private key of ``signing_public_key``)."""
    signing_public_key: bytes | None = None
    """The caller's Ed25519 public key (32 raw bytes) its requests are signed with; Sluice never
    sees the private key. A key that must sign but has none (made by a version that signed with
    HMAC) is refused until replaced (docs/api.md, "Signed requests")."""
    rate_limit_per_s: int | None = None
    """Requests a second this key may make; None: the deployment's default; 0: unlimited."""
    operator_id: str | None = None
    """The operator whose own key this is; None: a platform's service key, which never
    approves a withdrawal nor does an operator's work (docs/policy.md, "Operators")."""

    def allows(self, scope: Scope) -> bool:
        """Whether the key is live and carries ``scope``.

        A key restricted to users never acts as ``admin``, whatever it carries (admin work spans
        every user: credits, dead letters, other users' withdrawals).
        """
        if scope is Scope.ADMIN and self.user_ids is not None:
            return False
        return self.revoked_at is None and scope in self.scopes

    def may_act_for(self, user_id: str) -> bool:
        """Whether the key may read or act on ``user_id``'s withdrawals and balances."""
        return self.user_ids is None or user_id in self.user_ids

    def admits(self, address: str | None) -> bool:
        """Whether a request from ``address`` (an IP address) may use this key."""
        if not self.ip_ranges:
            return True
        if address is None:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(cidr, strict=False) for cidr in self.ip_ranges)


def parse_ip_ranges(ranges: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """CIDR ranges in canonical form (``10.0.0.0/8``, ``2001:db8::/32``; a bare address is /32 or
    /128).

    Raises:
        ValueError: A range is not an IP address or network.
    """
    return tuple(str(ipaddress.ip_network(r.strip(), strict=False)) for r in ranges)
