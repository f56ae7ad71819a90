"""API tokens of the admin server: YAML `tokens:`, beside `ADMIN_TOKEN` and `VIEWER_TOKEN`.

Each entry names a bearer token, its role (`admin` may do everything, `viewer` only read)
and optionally the tenants it is scoped to (absent or empty: every tenant). Parsing raises
ValueError with the entry's path (`tokens[1].role: expected admin or viewer`); the settings
loader prefixes the file name and turns it into its ConfigError. A token value is given to
one principal only: the same value twice, or equal to ADMIN_TOKEN or VIEWER_TOKEN, is refused.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec

from bridge.config.secret import Secret

Role = Literal["admin", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "viewer")
# the names the bridge gives ADMIN_TOKEN, VIEWER_TOKEN and the tokenless reader
RESERVED_NAMES = frozenset({"admin", "viewer", "anonymous"})
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_KEYS = ("name", "token", "role", "tenants")


class ApiToken(msgspec.Struct, frozen=True):
    """A named bearer token of the admin API; `tenants` empty = every tenant."""

    name: str
    token: Secret
    role: Role
    tenants: tuple[str, ...] = ()


def parse_tokens(node: Any) -> tuple[ApiToken, ...]:
    """The YAML `tokens:` list; ValueError naming the path of the first bad entry."""
    if node is None:
        return ()
    if not isinstance(node, list):
        raise ValueError("tokens: expected a list of {name, token, role, tenants}")
    parsed = tuple(_token(item, f"tokens[{i}]") for i, item in enumerate(node))
    names: set[str] = set()
    for i, entry in enumerate(parsed):
        if entry.name in names:
            raise ValueError(f"tokens[{i}].name: duplicate name {entry.name!r}")
        names.add(entry.name)
    return parsed


def _token(node: Any, path: str) -> ApiToken:
    if not isinstance(node, dict):
        raise ValueError(f"{path}: expected a mapping with name, token and role")
    for key in node:
        if key not in _KEYS:
            raise ValueError(f"{path}.{key}: unknown key; expected {', '.join(_KEYS)}")
    for required in ("name", "token", "role"):
        if node.get(required) is None:
            raise ValueError(f"{path}.{required}: missing")
    return ApiToken(
        name=_name(node["name"], f"{path}.name"),
        token=Secret(_value(node["token"], f"{path}.token")),
        role=_role(node["role"], f"{path}.role"),
        tenants=_tenants(node.get("tenants"), f"{path}.tenants"),
    )


def _name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(f"{path}: 1 to 64 letters, digits, '.', '-' or '_'")
    if value in RESERVED_NAMES:
        raise ValueError(f"{path}: {value!r} is reserved (ADMIN_TOKEN, VIEWER_TOKEN, no token)")
    return value


def _value(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{path}: expected a non-empty string")
    return value.strip()


def _role(value: Any, path: str) -> Role:
    for role in ROLES:
        if value == role:
            return role
    raise ValueError(f"{path}: expected admin or viewer")


def _tenants(value: Any, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) and t.strip() for t in value):
        raise ValueError(f"{path}: expected a list of tenant ids")
    return tuple(dict.fromkeys(t.strip() for t in value))


def check_distinct(
    tokens: tuple[ApiToken, ...], admin: Secret | None, viewer: Secret | None
) -> None:
    """ValueError (naming the setting, never the value) when a token value is given twice."""
    seen: dict[str, str] = {}
    given = [("ADMIN_TOKEN", admin), ("VIEWER_TOKEN", viewer)]
    given += [(f"tokens[{i}].token", entry.token) for i, entry in enumerate(tokens)]
    for where, secret in given:
        if secret is None:
            continue
        if (first := seen.get(secret.reveal())) is not None:
            raise ValueError(f"{where}: the same token as {first}; give each its own")
        seen[secret.reveal()] = where
