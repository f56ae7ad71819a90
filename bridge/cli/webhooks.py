"""`webhook-bridge webhooks ...`: manage webhooks through the admin API (SPEC §9).

Each action is one HTTP request: options become a JSON body (for `update`, a JSON merge patch
holding only the options given), the answer becomes a table or a key/value view, and `--json`
prints the API's body as is. The CLI checks only what the API cannot see (a duration's
spelling, a header's shape, a confirmation); ids, URLs and globs are the API's to refuse.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, TextIO, get_args

from bridge.cli import terminal, usage
from bridge.cli.api_client import (
    DEFAULT_API,
    AdminApi,
    Answer,
    checked_api_url,
    checked_token,
    printable,
)
from bridge.config.durations import parse_duration_s
from bridge.config.values import ConfigError
from bridge.config.webhooks import Format
from bridge.policy import asymmetric

Command = Callable[[Any, str, str, str], argparse.ArgumentParser]
Action = Callable[[AdminApi, argparse.Namespace, TextIO], int]

LIST_COLUMNS = ("ID", "SOURCE", "ACTIVE", "SCOPE", "EVENTS", "STATUS", "MESSAGE", "URL")
ATTEMPT_COLUMNS = ("AT", "EVENT", "TRY", "RESULT", "NEXT", "DELIVERY")
SHOWN = (
    *("id", "source", "url", "description", "scope", "events", "tenants", "active"),
    *("headers", "transform", "rate_limit", "timeout", "max_retry", "ordering", "revision"),
    *("status", "message"),
    *("format", "public_key"),
)
NOT_SHOWN = {"attempts", "last", "secret", "default"}
FIELDS = (
    *("url", "description", "scope", "events", "tenants"),
    *("transform", "rate_limit", "timeout", "max_retry"),
    "format",
    *("transform", "rate_limit", "timeout", "max_retry", "ordering"),
)
CLEARABLE = ("description", "transform", "rate_limit", "timeout", "max_retry")
SECRET_NOTE = "Save the secret now: it will not be shown again."
PUBLIC_KEY_NOTE = "A new ed25519 key signs: give receivers this public key."


# --- the parser ---------------------------------------------------------------------------


def register(sub: Any, command: Command) -> None:
    """`webhooks` and its actions on the main parser; `command` makes a subcommand parser."""
    parent = command(sub, "webhooks", "list, add, change or remove webhooks", usage.WEBHOOKS)
    actions = parent.add_subparsers(dest="webhooks_command", required=True, metavar="ACTION")
    _common(command(actions, "list", "list webhooks with their status", usage.WEBHOOKS_LIST))
    _common(command(actions, "show", "show one webhook and its attempts", usage.WEBHOOKS_SHOW), 1)
    add = _fields(_common(command(actions, "add", "add a webhook", usage.WEBHOOKS_ADD)), True)
    add.add_argument("--inactive", action="store_true", help="create it paused")
    _update_options(
        _common(command(actions, "update", "change a webhook", usage.WEBHOOKS_UPDATE), 1)
    )
    remove = _common(command(actions, "remove", "remove a webhook", usage.WEBHOOKS_REMOVE), 1)
    remove.add_argument("-y", "--yes", action="store_true", help="remove without asking")
    _common(command(actions, "test", "send a webhook.test event", usage.WEBHOOKS_TEST), 1)
    rotate = command(actions, "rotate-secret", "give a webhook a new secret", usage.ROTATE)
    _common(rotate, 1).add_argument("--ed25519", action="store_true", help=_ED25519)


def _common(action: argparse.ArgumentParser, ids: int = 0) -> argparse.ArgumentParser:
    """The options every action takes, and the webhook's id when it names one."""
    if ids:
        action.add_argument("id", metavar="ID", help="the webhook's id")
    action.add_argument(
        "--api", metavar="URL", help=f"the admin API (env BRIDGE_API, default {DEFAULT_API})"
    )
    action.add_argument(
        "--token", help="admin token (env ADMIN_TOKEN; prefer it: arguments show in `ps`)"
    )
    action.add_argument("--json", action="store_true", help="print the API's JSON answer as is")
    return action


def _fields(action: argparse.ArgumentParser, adding: bool) -> argparse.ArgumentParser:
    action.add_argument("--url", required=adding, help="where deliveries go (vetted by the API)")
    if adding:
        action.add_argument(
            "--id", dest="new_id", metavar="ID", help="1-64 of A-Z a-z 0-9 _ . - (default: new)"
        )
    action.add_argument("--description", metavar="TEXT", help="a note for people")
    action.add_argument("--scope", choices=("global", "on_demand"), help="default on_demand")
    action.add_argument("--event", dest="events", action="append", metavar="GLOB", help=_EVENT)
    action.add_argument("--tenant", dest="tenants", action="append", metavar="T", help=_TENANT)
    action.add_argument(
        "--header",
        dest="headers",
        action="append",
        type=_header,
        metavar="'NAME: VALUE'",
        help=_HEADER,
    )
    _secret_options(action)
    action.add_argument("--transform", metavar="EXPR", help="JMESPath applied to the body")
    action.add_argument("--rate-limit", type=_rate, metavar="N", help="deliveries a second")
    action.add_argument("--timeout", type=_duration, metavar="DURATION", help="e.g. 10s")
    action.add_argument(
        "--max-retry", type=_retries, metavar="N", help="retries before dead-lettering"
    )
    action.add_argument("--format", choices=get_args(Format), help="body format (default raw)")
    action.add_argument("--ordering", choices=("none", "job"), help="job: each job in order")
    return action


_EVENT = "only these events (repeatable; globs like job.*); none: every event"
_TENANT = "only these tenants (repeatable); none: every tenant"
_HEADER = "'Name: value' added to each request (repeatable)"
_ED25519 = "sign with a new ed25519 key made here (v1a); receivers get its public key"


def _secret_options(action: argparse.ArgumentParser) -> None:
    secret = action.add_mutually_exclusive_group()
    secret.add_argument(
        "--secret", metavar="S", help="signing secret; visible in `ps`: prefer --secret-stdin"
    )
    secret.add_argument(
        "--secret-stdin", action="store_true", help="read the secret from stdin (one line)"
    )
    secret.add_argument("--ed25519", action="store_true", help=_ED25519)


def _update_options(action: argparse.ArgumentParser) -> None:
    _fields(action, False)
    action.add_argument("--active", type=_bool, metavar="true|false", help="resume or pause")
    action.add_argument("--no-events", action="store_true", help="deliver every event again")
    action.add_argument("--no-tenants", action="store_true", help="deliver every tenant again")
    action.add_argument(
        "--remove-header",
        dest="removed_headers",
        action="append",
        default=[],
        metavar="NAME",
        help="stop sending this header (repeatable)",
    )
    action.add_argument(
        "--clear",
        action="append",
        default=[],
        choices=CLEARABLE,
        metavar="FIELD",
        help=f"put back to its default (repeatable): {', '.join(CLEARABLE)}",
    )
    action.add_argument("--if-match", metavar="REV", help="only if still at this revision")


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip() or name != name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name, value.strip()


def _duration(text: str) -> str:
    try:
        parse_duration_s(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text.strip()


def _rate(text: str) -> int | float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return int(value) if value.is_integer() else value


def _retries(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 0, got {text!r}")
    return int(text)


def _bool(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text.lower() == "true"


# --- options → request --------------------------------------------------------------------


def create_body(args: argparse.Namespace, stdin: TextIO) -> dict[str, Any]:
    """POST /webhooks: the options given; the API fills in the rest."""
    body = _given(args, stdin)
    if args.new_id is not None:
        body["id"] = args.new_id
    if args.inactive:
        body["active"] = False
    return body


def patch_body(args: argparse.Namespace, stdin: TextIO) -> dict[str, Any]:
    """PATCH /webhooks/ID: a JSON merge patch; a null puts a field back to its default."""
    body = _given(args, stdin) | _cleared(args)
    if args.active is not None:
        body["active"] = args.active
    if not body:
        raise ConfigError("update: nothing to change; give at least one option (see --help)")
    return body


def _given(args: argparse.Namespace, stdin: TextIO) -> dict[str, Any]:
    body = {name: getattr(args, name) for name in FIELDS if getattr(args, name) is not None}
    secret = _secret(args, stdin)
    if secret is not None:
        body["secret"] = secret
    return body | _headers(args)


def _headers(args: argparse.Namespace) -> dict[str, Any]:
    """Set headers merge into the webhook's, removed ones are nulls (RFC 7396)."""
    headers: dict[str, str | None] = dict(args.headers or [])
    headers |= dict.fromkeys(getattr(args, "removed_headers", []))
    return {"headers": headers} if headers else {}


def _cleared(args: argparse.Namespace) -> dict[str, Any]:
    both = [name for name in args.clear if getattr(args, name) is not None]
    if both:
        flag = both[0].replace("_", "-")
        raise ConfigError(f"--clear {both[0]} and --{flag} together: choose one")
    emptied: dict[str, Any] = {}
    for name in ("events", "tenants"):
        if getattr(args, f"no_{name}") and getattr(args, name):
            raise ConfigError(f"--no-{name} and --{name[:-1]} together: choose one")
        if getattr(args, f"no_{name}"):
            emptied[name] = []
    return dict.fromkeys(args.clear) | emptied


def _secret(args: argparse.Namespace, stdin: TextIO) -> str | None:
    if args.ed25519:
        return asymmetric.new_private_key()
    if not args.secret_stdin:
        given: str | None = args.secret
        return given
    line = getpass.getpass("Secret: ") if stdin.isatty() else stdin.readline()
    secret = line.rstrip("\r\n")
    if not secret:
        raise ConfigError("--secret-stdin: read an empty line; the secret goes on stdin")
    return secret


def if_match(revision: str | None) -> dict[str, str]:
    """`--if-match 7` → `If-Match: "7"` (an ETag is quoted; a quoted one is sent as is)."""
    if revision is None:
        return {}
    return {"If-Match": revision if revision.startswith('"') else f'"{revision}"'}


def webhook_path(webhook_id: str, *rest: str) -> str:
    return "/".join(("/webhooks", urllib.parse.quote(webhook_id, safe=""), *rest))


# --- answers → text -----------------------------------------------------------------------


def cell(value: Any) -> str:
    """One value as a table cell or view line: `-` for nothing, lists comma-separated."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(cell(item) for item in value) or "all"
    if isinstance(value, dict):
        return ", ".join(f"{name}: {cell(v)}" for name, v in value.items()) or "-"
    return printable(" ".join(str(value).split()))


def list_row(hook: Mapping[str, Any]) -> tuple[str, ...]:
    names = ("id", "source", "active", "scope", "events", "status", "message", "url")
    return tuple(cell(hook.get(name)) for name in names)


def webhook_view(hook: Mapping[str, Any], secret: str | None = None) -> str:
    """`key  value` lines: the known fields in order, then any the API added since."""
    known = [name for name in SHOWN if name in hook]
    extra = sorted(name for name in hook if name not in SHOWN and name not in NOT_SHOWN)
    pairs = [(name, cell(hook[name])) for name in (*known, *extra)]
    if secret is not None:
        pairs.append(("secret", secret))
    return terminal.pairs(pairs)


def attempts_view(attempts: list[Mapping[str, Any]]) -> str:
    if not attempts:
        return "no attempts yet"
    return "recent attempts:\n" + terminal.table(ATTEMPT_COLUMNS, [_try(a) for a in attempts])


def _try(entry: Mapping[str, Any]) -> tuple[str, ...]:
    after = cell(entry.get("result")) + (f" ({entry['reason']})" if entry.get("reason") else "")
    fields = ("at", "event", "attempt", "message")
    return (
        *(cell(entry.get(name)) for name in fields),
        cell(after),
        cell(entry.get("delivery_id")),
    )


def result_line(answer: Mapping[str, Any]) -> str:
    """`success: status code: 200 (41 ms)`."""
    took = answer.get("duration_ms")
    duration = f" ({took} ms)" if took is not None else ""
    return f"{cell(answer.get('status'))}: {cell(answer.get('message'))}{duration}"


# --- the actions --------------------------------------------------------------------------


def run(args: argparse.Namespace, env: Mapping[str, str], stdin: TextIO) -> int:
    """Run `webhooks <action>` against --api / BRIDGE_API with --token / ADMIN_TOKEN."""
    url = checked_api_url(args.api or env.get("BRIDGE_API") or DEFAULT_API)
    api = AdminApi(url, checked_token(args.token or env.get("ADMIN_TOKEN")))
    return ACTIONS[args.webhooks_command](api, args, stdin)


def _list(api: AdminApi, args: argparse.Namespace, stdin: TextIO) -> int:
    answer = api.call("GET", "/webhooks")
    if args.json:
        return _print_json(answer)
    hooks = _object(answer).get("webhooks") or []
    print(terminal.table(LIST_COLUMNS, [list_row(hook) for hook in hooks]))
    print(f"{len(hooks)} webhook(s)", file=sys.stderr)
    return 0


def _show(api: AdminApi, args: argparse.Namespace, stdin: TextIO) -> int:
    answer = api.call("GET", webhook_path(args.id))
    if args.json:
        return _print_json(answer)
    hook = _object(answer)
    print(webhook_view(hook))
    print()
    print(attempts_view(hook.get("attempts") or []))
    return 0


def _add(api: AdminApi, args: argparse.Namespace, stdin: TextIO) -> int:
    answer = api.call("POST", "/webhooks", create_body(args, stdin))
    hook = _object(answer)
    secret = hook.get("secret")
    if args.json:
        _print_json(answer)
    else:
        print(webhook_view(hook, secret))
        print(f"created webhook {cell(hook.get('id'))}", file=sys.stderr)
    if secret:
        print(SECRET_NOTE, file=sys.stderr)
    return 0


def _update(api: AdminApi, args: argparse.Namespace, stdin: TextIO) -> int:
    body, headers = patch_body(args, stdin), if_match(args.if_match)
    headers["Content-Type"] = "application/merge-patch+json"
    answer = api.call("PATCH", webhook_path(args.id), body, headers)
    if args.json:
        return _print_json(answer)
    hook = _object(answer)
    print(webhook_view(hook))
    print(f"updated webhook {args.id} (revision {cell(hook.get('revision'))})", file=sys.stderr)
    return 0


def _remove(api: AdminApi, args: argparse.Namespace, stdin: TextIO) -> int:
    if not args.yes and not _confirmed(args.id, stdin):
        print("not removed", file=sys.stderr)
        return 1
    answer = api.call("DELETE", webhook_path(args.id))
    if args.json:
        return _print_json(answer)
    print(f"removed webhook {args.id}")
    return 0


def _confirmed(webhook_id: str, stdin: TextIO) -> bool:
    if not stdin.isatty():
        raise ConfigError(f"remove: stdin is not a terminal; pass --yes to remove {webhook_id!r}")
    print(f"Remove webhook {webhook_id!r}? Its deliveries stop. [y/N] ", end="", file=sys.stderr)
    sys.stderr.flush()
    return stdin.readline().strip().lower() in ("y", "yes")


def _test(api: AdminApi, args: argparse.Namespace, stdin: TextIO) -> int:
    answer = api.call("POST", webhook_path(args.id, "test"))
    result = _object(answer)
    if args.json:
        _print_json(answer)
    else:
        print(result_line(result))
    return 0 if result.get("status") == "success" else 1


def _rotate(api: AdminApi, args: argparse.Namespace, stdin: TextIO) -> int:
    body = {"secret": asymmetric.new_private_key()} if args.ed25519 else None
    answer = api.call("POST", webhook_path(args.id, "secret", "rotate"), body)
    rotated = _object(answer)
    public_key = rotated.get("public_key")
    if args.json:
        _print_json(answer)
    else:  # alone on stdout: `$(... rotate-secret ID)`
        print(cell(public_key or rotated.get("secret")))
    note = PUBLIC_KEY_NOTE if public_key else SECRET_NOTE
    print(f"{note} The previous one keeps signing beside it for a grace", file=sys.stderr)
    print("period (WEBHOOK_SECRET_ROTATION_GRACE, 24h by default).", file=sys.stderr)
    return 0


def _object(answer: Answer) -> dict[str, Any]:
    return answer.data if isinstance(answer.data, dict) else {}


def _print_json(answer: Answer) -> int:
    text = answer.body.decode("utf-8", "replace")
    if text:
        print(text, end="" if text.endswith("\n") else "\n")
    return 0


ACTIONS: dict[str, Action] = {
    "list": _list,
    "show": _show,
    "add": _add,
    "update": _update,
    "remove": _remove,
    "test": _test,
    "rotate-secret": _rotate,
}
