"""API tokens from YAML `tokens:` and VIEWER_TOKEN: parsing, one-line errors, redaction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.config.secret import REDACTED, Secret
from bridge.config.settings import ConfigError, Settings, load_settings
from bridge.config.tokens import ApiToken
from bridge.config.view import redacted


def _load(tmp_path: Path, text: str, **env: str) -> Settings:
    path = tmp_path / "bridge.yaml"
    path.write_text(text, encoding="utf-8")
    return load_settings({"BRIDGE_CONFIG": str(path), **env})


def _error(tmp_path: Path, text: str, **env: str) -> str:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text, **env)
    return str(caught.value)


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("", {}, ()),
        ("tokens: []\n", {}, ()),
        (
            "tokens:\n  - {name: ops, token: t-ops, role: admin}\n",
            {},
            (ApiToken("ops", Secret("t-ops"), "admin"),),
        ),
        (
            "tokens:\n  - {name: acme-ro, token: t1, role: viewer, tenants: [acme, acme]}\n",
            {},
            (ApiToken("acme-ro", Secret("t1"), "viewer", ("acme",)),),
        ),
        (
            "tokens:\n  - {name: a.b_c-1, token: '${ACME_TOKEN}', role: admin, tenants: []}\n",
            {"ACME_TOKEN": "from-env"},
            (ApiToken("a.b_c-1", Secret("from-env"), "admin"),),
        ),
        (
            "tokens:\n  - {name: x, token: tx, role: viewer}\n"
            "  - {name: y, token: ty, role: admin, tenants: [acme, globex]}\n",
            {},
            (
                ApiToken("x", Secret("tx"), "viewer"),
                ApiToken("y", Secret("ty"), "admin", ("acme", "globex")),
            ),
        ),
    ],
)
def test_good_tokens(
    tmp_path: Path, text: str, env: dict[str, str], expected: tuple[ApiToken, ...]
) -> None:
    assert _load(tmp_path, text, **env).tokens == expected


GOOD = "  - {name: ok, token: t-ok, role: admin}\n"


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("tokens: {name: x}\n", {}, "bridge.yaml: tokens: expected a list"),
        ("tokens:\n  - just-a-string\n", {}, "bridge.yaml: tokens[0]: expected a mapping"),
        (
            "tokens:\n" + GOOD + "  - {name: x, token: t}\n",
            {},
            "bridge.yaml: tokens[1].role: missing",
        ),
        (
            "tokens:\n" + GOOD + "  - {name: x, token: t, role: owner}\n",
            {},
            "bridge.yaml: tokens[1].role: expected admin or viewer",
        ),
        ("tokens:\n  - {token: t, role: admin}\n", {}, "bridge.yaml: tokens[0].name: missing"),
        ("tokens:\n  - {name: x, role: admin}\n", {}, "bridge.yaml: tokens[0].token: missing"),
        (
            "tokens:\n  - {name: x, token: '  ', role: admin}\n",
            {},
            "bridge.yaml: tokens[0].token: expected a non-empty string",
        ),
        (
            "tokens:\n  - {name: 'a b', token: t, role: admin}\n",
            {},
            "bridge.yaml: tokens[0].name: 1 to 64 letters",
        ),
        (
            f"tokens:\n  - {{name: {'n' * 65}, token: t, role: admin}}\n",
            {},
            "bridge.yaml: tokens[0].name: 1 to 64 letters",
        ),
        (
            "tokens:\n  - {name: admin, token: t, role: admin}\n",
            {},
            "bridge.yaml: tokens[0].name: 'admin' is reserved",
        ),
        (
            "tokens:\n  - {name: x, token: t, role: admin, tenants: acme}\n",
            {},
            "bridge.yaml: tokens[0].tenants: expected a list of tenant ids",
        ),
        (
            "tokens:\n  - {name: x, token: t, role: admin, scope: all}\n",
            {},
            "bridge.yaml: tokens[0].scope: unknown key",
        ),
        (
            "tokens:\n" + GOOD + "  - {name: ok, token: t2, role: viewer}\n",
            {},
            "bridge.yaml: tokens[1].name: duplicate name 'ok'",
        ),
        (
            "tokens:\n" + GOOD + "  - {name: x, token: t-ok, role: viewer}\n",
            {},
            "bridge.yaml: tokens[1].token: the same token as tokens[0].token",
        ),
        (
            "tokens:\n" + GOOD,
            {"ADMIN_TOKEN": "t-ok"},
            "bridge.yaml: tokens[0].token: the same token as ADMIN_TOKEN",
        ),
        (
            "tokens:\n" + GOOD,
            {"VIEWER_TOKEN": "t-ok"},
            "bridge.yaml: tokens[0].token: the same token as VIEWER_TOKEN",
        ),
        ("", {"ADMIN_TOKEN": "same", "VIEWER_TOKEN": "same"}, "VIEWER_TOKEN: the same token"),
        (
            "tokens:\n  - {name: x, token: '${UNSET_TOKEN}', role: admin}\n",
            {},
            "bridge.yaml: tokens[0]: token: environment variable UNSET_TOKEN is not set",
        ),
    ],
)
def test_bad_tokens_are_one_line_naming_the_path(
    tmp_path: Path, text: str, env: dict[str, str], expected: str
) -> None:
    message = _error(tmp_path, text, **env)
    assert message.startswith(expected)
    assert "\n" not in message
    assert "t-ok" not in message
    assert "same" not in message.removeprefix(expected)


def test_viewer_token_from_env_and_yaml(tmp_path: Path) -> None:
    assert load_settings({}).viewer_token is None
    assert load_settings({"VIEWER_TOKEN": "v"}).viewer_token == Secret("v")
    assert _load(tmp_path, "viewer_token: from-yaml\n").viewer_token == Secret("from-yaml")


def test_audit_max_age_default_and_override() -> None:
    assert load_settings({}).audit_max_age_s == 90 * 86400.0
    assert load_settings({"AUDIT_MAX_AGE": "30d"}).audit_max_age_s == 30 * 86400.0


def test_token_values_never_in_repr_or_the_redacted_view(tmp_path: Path) -> None:
    text = "tokens:\n  - {name: acme-ro, token: yaml-token-value, role: viewer, tenants: [acme]}\n"
    settings = _load(tmp_path, text, ADMIN_TOKEN="admin-value", VIEWER_TOKEN="viewer-value")
    view = redacted(settings)
    shown = repr(settings) + repr(settings.tokens) + json.dumps(view)
    for value in ("yaml-token-value", "admin-value", "viewer-value"):
        assert value not in shown
    assert view["tokens"] == [
        {"name": "acme-ro", "token": REDACTED, "role": "viewer", "tenants": ["acme"]}
    ]
    assert view["viewer_token"] == REDACTED
