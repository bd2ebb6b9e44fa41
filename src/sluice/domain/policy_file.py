"""The policy file (TOML): read, checked field by field, and turned into a `Policy`.

Every error names the field at fault as a path (``rules[2].velocity.window``), so an operator
fixing a file is told where to look. The version is the SHA-256 of the file's bytes: the same
file always has the same version, and any change makes a new one. See docs/policy.md.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from fractions import Fraction
from typing import Any

from sluice.domain.addresses import Address, parse_address
from sluice.domain.operators import Role
from sluice.domain.policy import (
    DENIED,
    Action,
    AssetTerms,
    Conditions,
    Fee,
    Policy,
    Rule,
    Scope,
    Velocity,
    Verdict,
)
from sluice.errors import InvalidRequestError, PolicyError

_DURATION = re.compile(r"^([0-9]+)\s*(s|m|h|d)$")
_SECONDS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}
_DECIMAL = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_TOP = {"label", "default", "rules", "assets", "prices", "groups", "address_book", "approvals"}
_RULE = {
    "name",
    "action",
    "approvals",
    "role",
    "code",
    "message",
    "networks",
    "assets",
    "min_amount",
    "max_amount",
    "min_usd",
    "max_usd",
    "users",
    "groups",
    "destinations",
    "in_address_book",
    "cooling",
    "api_keys",
    "velocity",
}
_ACTION = {"action", "approvals", "role", "code", "message"}


def load(raw: bytes, *, source: str = "policy") -> Policy:
    """Parse and check a policy file.

    Raises:
        PolicyError: Not TOML, or a value that is missing, unknown or malformed (its path in
            ``field``).
    """
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"{source} is not valid TOML: {exc}", field="(file)") from None
    _known(data, _TOP, "")
    label = data.get("label", "")
    if not isinstance(label, str) or not label.strip() or len(label) > 128:
        raise PolicyError("label: a name for this version, 1-128 characters", field="label")
    if "default" not in data:
        raise PolicyError("default: what happens when no rule matches", field="default")
    default = _action(_table(data["default"], "default"), "default", _ACTION)
    rules = tuple(
        _rule(_table(r, f"rules[{i}]"), f"rules[{i}]")
        for i, r in enumerate(_list(data.get("rules", []), "rules"))
    )
    names = [r.name for r in rules]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise PolicyError(f"two rules are named {name!r}", field=f"rules[{i}].name")
    book = _table(data.get("address_book", {}), "address_book")
    _known(book, {"cool_down"}, "address_book")
    approvals = _table(data.get("approvals", {}), "approvals")
    _known(approvals, {"expire_after"}, "approvals")
    prices = {
        str(k): _decimal(v, f"prices.{k}")
        for k, v in _table(data.get("prices", {}), "prices").items()
    }
    policy = Policy(
        version=hashlib.sha256(raw).hexdigest(),
        label=label.strip(),
        rules=rules,
        default=default,
        assets=tuple(
            _terms(_table(a, f"assets[{i}]"), f"assets[{i}]")
            for i, a in enumerate(_list(data.get("assets", []), "assets"))
        ),
        prices=prices,
        groups={
            str(k): frozenset(_strings(v, f"groups.{k}"))
            for k, v in _table(data.get("groups", {}), "groups").items()
        },
        cool_down=_duration(book.get("cool_down", "0s"), "address_book.cool_down", zero=True),
        approval_expiry=_duration(approvals.get("expire_after", "24h"), "approvals.expire_after"),
    )
    _check_references(policy)
    return policy


def _check_references(policy: Policy) -> None:
    """Groups that rules name exist."""
    for i, rule in enumerate(policy.rules):
        for group in sorted(rule.when.groups or ()):
            if group not in policy.groups:
                raise PolicyError(
                    f"rule {rule.name!r} names group {group!r}, which [groups] does not define",
                    field=f"rules[{i}].groups",
                )


def unpriced(policy: Policy, assets: Mapping[str, list[str]]) -> list[tuple[str, str]]:
    """The (field, asset) pairs where a rule values in US dollars an asset of ``assets``
    (network → symbols) that has no price: a policy that cannot decide those is refused."""
    missing: list[tuple[str, str]] = []
    for i, rule in enumerate(policy.rules):
        if not rule.when.uses_usd:
            continue
        for network, symbols in sorted(assets.items()):
            if rule.when.networks is not None and network not in rule.when.networks:
                continue
            for symbol in symbols:
                named = rule.when.assets
                if named is not None and symbol not in named and f"{network}:{symbol}" not in named:
                    continue
                if policy.price(network, symbol) is None:
                    missing.append((f"rules[{i}]", f"{network}:{symbol}"))
    return missing


def _rule(data: dict[str, Any], at: str) -> Rule:
    _known(data, _RULE, at)
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise PolicyError(f"{at}.name: every rule has a name, 1-64 characters", field=f"{at}.name")
    velocity = data.get("velocity", [])
    velocities = [velocity] if isinstance(velocity, dict) else _list(velocity, f"{at}.velocity")
    when = Conditions(
        networks=_set(data, "networks", at),
        assets=_set(data, "assets", at),
        min_amount=_optional_decimal(data, "min_amount", at),
        max_amount=_optional_decimal(data, "max_amount", at),
        min_usd=_optional_decimal(data, "min_usd", at),
        max_usd=_optional_decimal(data, "max_usd", at),
        users=_set(data, "users", at),
        groups=_set(data, "groups", at),
        destinations=_addresses(data, at),
        in_address_book=_optional_bool(data, "in_address_book", at),
        cooling=_optional_bool(data, "cooling", at),
        api_keys=_set(data, "api_keys", at),
        velocity=tuple(
            _velocity(_table(v, f"{at}.velocity[{j}]"), f"{at}.velocity[{j}]")
            for j, v in enumerate(velocities)
        ),
    )
    for low, high in (("min_amount", "max_amount"), ("min_usd", "max_usd")):
        lo, hi = getattr(when, low), getattr(when, high)
        if lo is not None and hi is not None and lo > hi:
            raise PolicyError(f"{at}: {low} is above {high}", field=f"{at}.{low}")
    return Rule(name=name.strip(), when=when, action=_action(data, at, _RULE))


def _action(data: dict[str, Any], at: str, allowed: set[str]) -> Action:
    _known(data, allowed, at)
    try:
        verdict = Verdict(data.get("action", ""))
    except ValueError:
        raise PolicyError(
            f"{at}.action: one of allow, require_approval, deny", field=f"{at}.action"
        ) from None
    if verdict is Verdict.REQUIRE_APPROVAL:
        approvals = data.get("approvals", 1)
        if type(approvals) is not int or not 1 <= approvals <= 10:
            raise PolicyError(
                f"{at}.approvals: how many distinct operators, 1-10", field=f"{at}.approvals"
            )
        try:
            role = Role(data.get("role", Role.APPROVER.value))
        except ValueError:
            raise PolicyError(f"{at}.role: approver or admin", field=f"{at}.role") from None
        if role is Role.VIEWER:
            raise PolicyError(f"{at}.role: a viewer never approves", field=f"{at}.role")
        return Action(verdict, approvals=approvals, role=role)
    for only in ("approvals", "role"):
        if only in data:
            raise PolicyError(
                f"{at}.{only}: only for action = require_approval", field=f"{at}.{only}"
            )
    if verdict is Verdict.DENY:
        code = data.get("code", DENIED)
        if not isinstance(code, str) or not _CODE.match(code):
            raise PolicyError(
                f"{at}.code: lower case letters, digits and _ (e.g. daily_limit)",
                field=f"{at}.code",
            )
        message = data.get("message")
        if message is not None and (not isinstance(message, str) or len(message) > 200):
            raise PolicyError(f"{at}.message: text of at most 200", field=f"{at}.message")
        return Action(verdict, code=code, message=message)
    for only in ("code", "message"):
        if only in data:
            raise PolicyError(f"{at}.{only}: only for action = deny", field=f"{at}.{only}")
    return Action(verdict)


def _velocity(data: dict[str, Any], at: str) -> Velocity:
    _known(data, {"per", "window", "max_amount", "max_usd", "max_count"}, at)
    try:
        per = Scope(data.get("per", ""))
    except ValueError:
        raise PolicyError(
            f"{at}.per: one of user, destination, hot_wallet", field=f"{at}.per"
        ) from None
    if "window" not in data:
        raise PolicyError(f"{at}.window: a duration such as 24h", field=f"{at}.window")
    count = data.get("max_count")
    if count is not None and (type(count) is not int or count < 0):
        raise PolicyError(f"{at}.max_count: a whole number", field=f"{at}.max_count")
    velocity = Velocity(
        per=per,
        window=_duration(data["window"], f"{at}.window"),
        max_amount=_optional_decimal(data, "max_amount", at),
        max_usd=_optional_decimal(data, "max_usd", at),
        max_count=count,
    )
    if velocity.max_amount is None and velocity.max_usd is None and count is None:
        raise PolicyError(
            f"{at}: a limit: max_amount, max_usd or max_count", field=f"{at}.max_amount"
        )
    return velocity


def _terms(data: dict[str, Any], at: str) -> AssetTerms:
    _known(data, {"asset", "min_amount", "max_amount", "fee"}, at)
    asset = data.get("asset")
    if not isinstance(asset, str) or not asset:
        raise PolicyError(f"{at}.asset: SYMBOL or network:SYMBOL", field=f"{at}.asset")
    fee = None
    if "fee" in data:
        spec = _table(data["fee"], f"{at}.fee")
        _known(spec, {"fixed", "percent", "min", "max"}, f"{at}.fee")
        if ("fixed" in spec) == ("percent" in spec):
            raise PolicyError(f"{at}.fee: either fixed or percent", field=f"{at}.fee")
        if "fixed" in spec and ({"min", "max"} & set(spec)):
            raise PolicyError(f"{at}.fee: min and max go with percent", field=f"{at}.fee")
        percent = _optional_decimal(spec, "percent", f"{at}.fee")
        if percent is not None and percent >= 100:
            raise PolicyError(f"{at}.fee.percent: below 100", field=f"{at}.fee.percent")
        fee = Fee(
            fixed=_optional_decimal(spec, "fixed", f"{at}.fee"),
            percent=percent,
            minimum=_optional_decimal(spec, "min", f"{at}.fee") or Fraction(0),
            maximum=_optional_decimal(spec, "max", f"{at}.fee"),
        )
    return AssetTerms(
        asset=asset,
        min_amount=_optional_decimal(data, "min_amount", at),
        max_amount=_optional_decimal(data, "max_amount", at),
        fee=fee,
    )


def _known(data: Mapping[str, Any], allowed: set[str], at: str) -> None:
    for key in data:
        if key not in allowed:
            where = f"{at}.{key}" if at else key
            raise PolicyError(
                f"{where}: not a policy field (known: {', '.join(sorted(allowed))})", field=where
            )


def _table(value: Any, at: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PolicyError(f"{at}: a table", field=at)
    return value


def _list(value: Any, at: str) -> list[Any]:
    if not isinstance(value, list):
        raise PolicyError(f"{at}: a list", field=at)
    return value


def _strings(value: Any, at: str) -> list[str]:
    items = _list(value, at)
    if not all(isinstance(v, str) and v for v in items):
        raise PolicyError(f"{at}: a list of strings", field=at)
    return items


def _set(data: Mapping[str, Any], key: str, at: str) -> frozenset[str] | None:
    if key not in data:
        return None
    return frozenset(_strings(data[key], f"{at}.{key}"))


def _addresses(data: Mapping[str, Any], at: str) -> frozenset[Address] | None:
    if "destinations" not in data:
        return None
    out: set[Address] = set()
    for j, text in enumerate(_strings(data["destinations"], f"{at}.destinations")):
        try:
            out.add(parse_address(text))
        except InvalidRequestError as exc:
            raise PolicyError(
                f"{at}.destinations[{j}]: {exc.detail}", field=f"{at}.destinations[{j}]"
            ) from None
    return frozenset(out)


def _optional_bool(data: Mapping[str, Any], key: str, at: str) -> bool | None:
    value = data.get(key)
    if value is not None and not isinstance(value, bool):
        raise PolicyError(f"{at}.{key}: true or false", field=f"{at}.{key}")
    return value


def _optional_decimal(data: Mapping[str, Any], key: str, at: str) -> Fraction | None:
    return None if key not in data else _decimal(data[key], f"{at}.{key}")


def _decimal(value: Any, at: str) -> Fraction:
    if not isinstance(value, str) or not _DECIMAL.match(value):
        raise PolicyError(
            f'{at}: a decimal string such as "1000" or "0.5" (quoted: never a float)', field=at
        )
    return Fraction(value)


def _duration(value: Any, at: str, *, zero: bool = False) -> timedelta:
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise PolicyError(f"{at}: a duration such as 90s, 30m, 24h or 7d", field=at)
    seconds = int(match.group(1)) * _SECONDS[match.group(2)]
    if seconds == 0 and not zero:
        raise PolicyError(f"{at}: longer than 0", field=at)
    return timedelta(seconds=seconds)
