"""`webhook-bridge webhooks ...`: options → request, answer → text, exit codes.

The command runs in-process (`main`, in a thread: it makes blocking requests) against
`harness.fake_admin_api`, an in-memory stand-in for the admin API's /webhooks routes on
loopback. The same commands against a real bridge: tests/integration/test_cli_webhooks.py.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from harness.fake_admin_api import FakeAdminApi, merge_patch
from harness.ports import free_port

from bridge.cli.main import main
from bridge.cli.webhooks import cell, if_match, result_line, webhook_path

TOKEN = "admin-token-that-must-never-be-printed"
URL = "https://n.example"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


Cli = Callable[..., Awaitable[Run]]


@pytest.fixture
async def api() -> AsyncIterator[FakeAdminApi]:
    server = FakeAdminApi(token=TOKEN)
    await server.start()
    yield server
    await server.stop()


def _main(args: list[str], env: dict[str, str], stdin: io.StringIO) -> int:
    try:
        return main(["webhooks", *args], env, stdin)
    except SystemExit as exit_:  # argparse's own usage errors
        return int(exit_.code or 0)


@pytest.fixture
def cli(api: FakeAdminApi, capsys: pytest.CaptureFixture[str]) -> Cli:
    async def run(*args: str, stdin: io.StringIO | None = None, **env: str) -> Run:
        environ = {"BRIDGE_API": api.url, "ADMIN_TOKEN": TOKEN, **env}
        code = await asyncio.to_thread(_main, list(args), environ, stdin or io.StringIO())
        out, err = capsys.readouterr()
        assert TOKEN not in out + err
        return Run(code, out, err)

    return run


def _sent(api: FakeAdminApi) -> Any:
    return api.requests[-1].body


# --- add ------------------------------------------------------------------------------------


async def test_add_maps_every_option_to_the_body(cli: Cli, api: FakeAdminApi) -> None:
    result = await cli(
        *("add", "--id", "erp", "--url", "https://erp.example.com/hooks"),
        *("--event", "job.*", "--event", "approval.rejected", "--tenant", "acme"),
        *("--scope", "global", "--header", "X-Env: prod", "--header", "X-Team:ops"),
        *("--transform", "{id: job_id}", "--rate-limit", "5", "--timeout", "10s"),
        *("--max-retry", "0", "--description", "the ERP", "--inactive"),
        *("--ordering", "job"),
    )
    assert result.code == 0, result.err
    assert api.requests[-1].method == "POST"
    assert api.requests[-1].path == "/webhooks"
    assert api.requests[-1].headers["Authorization"] == f"Bearer {TOKEN}"
    assert _sent(api) == {
        "id": "erp",
        "url": "https://erp.example.com/hooks",
        "events": ["job.*", "approval.rejected"],
        "tenants": ["acme"],
        "scope": "global",
        "headers": {"X-Env": "prod", "X-Team": "ops"},
        "transform": "{id: job_id}",
        "rate_limit": 5,
        "timeout": "10s",
        "max_retry": 0,
        "ordering": "job",
        "description": "the ERP",
        "active": False,
    }


async def test_add_prints_the_webhook_and_a_generated_secret_once(
    cli: Cli, api: FakeAdminApi
) -> None:
    result = await cli("add", "--id", "erp", "--url", "https://erp.example.com/hooks")
    secret = api.stored["erp"]["secret"]
    lines = result.out.splitlines()
    assert lines[0].split() == ["id", "erp"]
    assert "url          https://erp.example.com/hooks" in lines
    assert "events       all" in lines
    assert lines[-1] == f"secret       {secret}"
    assert result.out.count(secret) == 1
    assert result.err.splitlines() == [
        "created webhook erp",
        "Save the secret now: it will not be shown again.",
    ]


async def test_a_secret_from_stdin_is_sent_and_never_printed(cli: Cli, api: FakeAdminApi) -> None:
    url = "https://erp.example.com/hooks"
    result = await cli(
        "add", "--url", url, "--secret-stdin", stdin=io.StringIO("whsec_mine\nignored\n")
    )
    assert result.code == 0, result.err
    assert _sent(api)["secret"] == "whsec_mine"
    assert "whsec_mine" not in result.out + result.err
    assert "not be shown again" not in result.err  # the API generated nothing


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--secret-stdin"], "--secret-stdin: read an empty line"),
        (["--secret", "a", "--secret-stdin"], "not allowed with argument --secret"),
        (["--timeout", "soon"], "--timeout: invalid duration 'soon'"),
        (["--rate-limit", "0"], "--rate-limit: expected a number above 0"),
        (["--max-retry", "-1"], "--max-retry: expected a whole number of at least 0"),
        (["--header", "X-Env=prod"], "--header: expected 'Name: value'"),
        (["--scope", "sometimes"], "invalid choice: 'sometimes'"),
    ],
)
async def test_add_refuses_bad_options_with_exit_2_before_any_request(
    cli: Cli, api: FakeAdminApi, args: list[str], says: str
) -> None:
    result = await cli("add", "--url", "https://erp.example.com/hooks", *args)
    assert result.code == 2
    assert says in result.err
    assert api.requests == []


# --- list and show --------------------------------------------------------------------------


async def test_list_is_a_table_with_a_count(cli: Cli, api: FakeAdminApi) -> None:
    api.seed("erp", "https://erp.example.com/hooks", events=["job.*", "approval.*"])
    api.seed("audit", "https://audit.example.com/h", source="config", active=False)

    result = await cli("list")

    assert result.code == 0, result.err
    header, *rows = result.out.splitlines()
    assert header.split() == [
        *("ID", "SOURCE", "ACTIVE", "SCOPE", "EVENTS", "STATUS", "MESSAGE", "URL"),
    ]
    assert [row.split() for row in rows] == [
        ["erp", "api", "true", "on_demand", "job.*,approval.*", "pending", "-", "https://erp.example.com/hooks"],
        ["audit", "config", "false", "on_demand", "all", "pending", "-", "https://audit.example.com/h"],
        # an env entry has no active, scope or events: dashes, not a crash
        ["erp.example.com", "env", "-", "-", "-", "pending", "-", "https://erp.example.com/h"],
    ]  # fmt: skip
    assert result.err == "3 webhook(s)\n"


async def test_show_is_a_key_value_view_then_the_attempts(cli: Cli, api: FakeAdminApi) -> None:
    api.seed("erp", "https://erp.example.com/hooks", headers={"X-Env": "prod"}, tenants=["acme"])

    result = await cli("show", "erp")

    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[:9] == [
        "id           erp",
        "source       api",
        "url          https://erp.example.com/hooks",
        "description  -",
        "scope        on_demand",
        "events       all",
        "tenants      acme",
        "active       true",
        "headers      X-Env: [redacted]",
    ]
    assert "revision     1" in lines
    assert "prod" not in result.out
    assert lines[-1] == "no attempts yet"
    assert api.requests[-1].path == "/webhooks/erp"


def test_show_lists_attempts_as_a_table() -> None:
    from bridge.cli.webhooks import attempts_view  # noqa: PLC0415

    entry = {"at": "2026-01-14T10:00:00Z", "event": "job.failed", "attempt": 2}
    entry |= {"message": "unexpected status code: 500", "result": "retry", "delivery_id": "dlv_1"}
    dead = entry | {"attempt": 3, "result": "dead_letter", "reason": "max_retries_exceeded"}
    lines = attempts_view([entry, dead]).splitlines()
    assert lines[0] == "recent attempts:"
    assert lines[1].split() == ["AT", "EVENT", "TRY", "RESULT", "NEXT", "DELIVERY"]
    assert lines[3].split()[-3:] == ["dead_letter", "(max_retries_exceeded)", "dlv_1"]


# --- update ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "patch"),
    [
        (["--active", "false"], {"active": False}),
        (["--active", "TRUE"], {"active": True}),
        (["--event", "job.*", "--event", "x"], {"events": ["job.*", "x"]}),
        (["--no-events", "--no-tenants"], {"events": [], "tenants": []}),
        (["--header", "X-A: 1", "--remove-header", "X-B"], {"headers": {"X-A": "1", "X-B": None}}),
        (["--clear", "rate_limit", "--clear", "timeout"], {"rate_limit": None, "timeout": None}),
        (["--rate-limit", "0.5", "--url", "https://n.example"], {"rate_limit": 0.5, "url": URL}),
        (["--secret", "whsec_known"], {"secret": "whsec_known"}),
    ],
)
async def test_update_sends_only_the_options_given_as_a_merge_patch(
    cli: Cli, api: FakeAdminApi, args: list[str], patch: dict[str, Any]
) -> None:
    api.seed("erp", "https://erp.example.com/hooks", headers={"X-B": "2"}, rate_limit=3)

    result = await cli("update", "erp", *args)

    assert result.code == 0, result.err
    sent = api.requests[-1]
    assert (sent.method, sent.path, sent.body) == ("PATCH", "/webhooks/erp", patch)
    assert sent.headers["Content-Type"] == "application/merge-patch+json"
    assert "If-Match" not in sent.headers
    assert result.err == "updated webhook erp (revision 2)\n"


async def test_update_if_match_sends_the_quoted_revision_and_a_stale_one_exits_2(
    cli: Cli, api: FakeAdminApi
) -> None:
    api.seed("erp", "https://erp.example.com/hooks")

    first = await cli("update", "erp", "--active", "false", "--if-match", "1")
    stale = await cli("update", "erp", "--active", "true", "--if-match", "1")

    assert first.code == 0, first.err
    assert api.requests[-2].headers["If-Match"] == '"1"'
    assert stale.code == 2
    assert stale.err == 'webhook-bridge: 412 erp: changed since revision "1"\n'
    assert api.stored["erp"]["active"] is False


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "update: nothing to change"),
        (["--no-events", "--event", "x"], "--no-events and --event together"),
        (["--clear", "timeout", "--timeout", "5s"], "--clear timeout and --timeout together"),
        (["--active", "maybe"], "--active: expected true or false"),
        (["--clear", "url"], "invalid choice: 'url'"),
    ],
)
async def test_update_refuses_bad_options_with_exit_2_before_any_request(
    cli: Cli, api: FakeAdminApi, args: list[str], says: str
) -> None:
    result = await cli("update", "erp", *args)
    assert result.code == 2
    assert says in result.err
    assert api.requests == []


# --- remove, test, rotate-secret ------------------------------------------------------------


async def test_remove_with_yes_deletes(cli: Cli, api: FakeAdminApi) -> None:
    api.seed("erp", "https://erp.example.com/hooks")
    result = await cli("remove", "erp", "--yes")
    assert (result.code, result.out) == (0, "removed webhook erp\n")
    assert api.requests[-1].method == "DELETE"
    assert "erp" not in api.stored


async def test_remove_without_yes_off_a_terminal_is_bad_usage(cli: Cli, api: FakeAdminApi) -> None:
    api.seed("erp", "https://erp.example.com/hooks")
    result = await cli("remove", "erp")
    assert result.code == 2
    assert "stdin is not a terminal; pass --yes" in result.err
    assert api.requests == []


@pytest.mark.parametrize(("answer", "code", "removed"), [("y\n", 0, True), ("\n", 1, False)])
async def test_remove_on_a_terminal_asks_first(
    cli: Cli, api: FakeAdminApi, answer: str, code: int, removed: bool
) -> None:
    api.seed("erp", "https://erp.example.com/hooks")
    result = await cli("remove", "erp", stdin=Tty(answer))
    assert result.code == code
    assert result.err.startswith("Remove webhook 'erp'? Its deliveries stop. [y/N] ")
    assert ("erp" not in api.stored) is removed


@pytest.mark.parametrize(
    ("answer", "code", "line"),
    [
        ({}, 0, "success: status code: 200 (12 ms)"),
        (
            {"status": "error", "status_code": None, "message": "connection refused"},
            1,
            "error: connection refused (12 ms)",
        ),
    ],
)
async def test_test_prints_the_outcome_and_exits_1_on_error(
    cli: Cli, api: FakeAdminApi, answer: dict[str, Any], code: int, line: str
) -> None:
    api.seed("erp", "https://erp.example.com/hooks")
    api.test_answer |= answer
    result = await cli("test", "erp")
    assert (result.code, result.out) == (code, line + "\n")
    assert api.requests[-1].path == "/webhooks/erp/test"


async def test_rotate_secret_prints_the_new_secret_alone_on_stdout(
    cli: Cli, api: FakeAdminApi
) -> None:
    api.seed("erp", "https://erp.example.com/hooks")
    result = await cli("rotate-secret", "erp")
    assert result.code == 0, result.err
    assert result.out == api.stored["erp"]["secret"] + "\n"
    assert api.requests[-1].path == "/webhooks/erp/secret/rotate"
    assert "will not be shown again" in result.err
    assert "WEBHOOK_SECRET_ROTATION_GRACE" in result.err


# --- --json ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["show", "erp"],
        ["add", "--url", "https://x.example.com/h"],
        ["update", "erp", "--active", "false"],
        ["test", "erp"],
        ["rotate-secret", "erp"],
    ],
)
async def test_json_prints_the_apis_body_as_is(
    cli: Cli, api: FakeAdminApi, args: list[str]
) -> None:
    api.seed("erp", "https://erp.example.com/hooks")
    result = await cli(*args, "--json")
    assert result.code == 0, result.err
    assert result.out == api.last_body.decode() + "\n"
    json.loads(result.out)


async def test_json_remove_prints_nothing(cli: Cli, api: FakeAdminApi) -> None:
    api.seed("erp", "https://erp.example.com/hooks")
    result = await cli("remove", "erp", "--yes", "--json")
    assert (result.code, result.out) == (0, "")


# --- errors and exit codes ------------------------------------------------------------------


async def test_an_unreachable_api_is_one_line_naming_it_and_exit_1(cli: Cli) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = await cli("list", BRIDGE_API=url)
    assert result.code == 1
    assert (
        result.err == f"webhook-bridge: cannot reach the admin API at {url}: connection refused\n"
    )


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (["show", "nope"], 2, "404 no webhook 'nope'"),
        (["add", "--url", "ftp://x"], 2, "400 url: expected an http:// or https:// URL"),
        (["add", "--id", "erp", "--url", "https://x.example.com"], 2, "409 id: already exists"),
        (["remove", "audit", "--yes"], 2, "409 audit: from the config file, read-only at run time"),
        (["rotate-secret", "audit"], 2, "409 audit: from the config file, read-only at run time"),
        (["list", "--token", "wrong"], 2, "401 missing or wrong bearer token"),
    ],
)
async def test_a_refused_request_prints_the_apis_error_line_and_exits_2(
    cli: Cli, api: FakeAdminApi, args: list[str], code: int, line: str
) -> None:
    api.seed("erp", "https://erp.example.com/hooks")
    api.seed("audit", "https://audit.example.com/h", source="config")
    result = await cli(*args)
    assert (result.code, result.err) == (code, f"webhook-bridge: {line}\n")
    assert result.out == ""


async def test_without_a_token_a_401_says_where_to_put_one(cli: Cli) -> None:
    result = await cli("list", ADMIN_TOKEN="")
    assert result.code == 2
    assert result.err == (
        "webhook-bridge: 401 missing or wrong bearer token"
        " (no token given: set ADMIN_TOKEN or pass --token)\n"
    )


async def test_a_5xx_exits_1(cli: Cli, api: FakeAdminApi) -> None:
    api.fail_with = 503
    result = await cli("list")
    assert (result.code, result.err) == (1, "webhook-bridge: 503 NATS is not connected\n")


async def test_an_answer_that_is_not_json_is_one_line(cli: Cli, api: FakeAdminApi) -> None:
    result = await cli("list", BRIDGE_API=api.url + "/nowhere")  # aiohttp's own text 404
    assert (result.code, result.err) == (2, "webhook-bridge: 404 Not Found\n")


@pytest.mark.parametrize("url", ["127.0.0.1:8080", "ftp://127.0.0.1", "http://"])
async def test_a_bad_api_url_is_bad_usage(cli: Cli, api: FakeAdminApi, url: str) -> None:
    result = await cli("list", "--api", url)
    assert result.code == 2
    assert "--api/BRIDGE_API: expected an http:// or https:// URL" in result.err
    assert api.requests == []


async def test_the_api_option_wins_over_the_environment(cli: Cli, api: FakeAdminApi) -> None:
    result = await cli("list", "--api", api.url + "/", BRIDGE_API="http://127.0.0.1:1")
    assert result.code == 0, result.err
    assert api.requests[-1].path == "/webhooks"


async def test_a_token_with_a_line_break_is_refused_without_showing_it(cli: Cli) -> None:
    result = await cli("list", ADMIN_TOKEN=TOKEN + "\nX-Evil: 1")
    assert result.code == 2
    assert result.err == (
        "webhook-bridge: --token/ADMIN_TOKEN: contains a line break or control character\n"
    )


# --- pure helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        ("", "-"),
        (True, "true"),
        ([], "all"),
        (["a", "b"], "a,b"),
        ({}, "-"),
        ({"X-A": "[redacted]"}, "X-A: [redacted]"),
        (3, "3"),
        ("two\nlines\x1b[31m", "two lines?[31m"),  # one line, no terminal escapes
    ],
)
def test_cell(value: Any, text: str) -> None:
    assert cell(value) == text


def test_ids_are_quoted_into_the_path() -> None:
    assert webhook_path("erp", "secret", "rotate") == "/webhooks/erp/secret/rotate"
    assert webhook_path("a/b?c") == "/webhooks/a%2Fb%3Fc"


@pytest.mark.parametrize(("given", "header"), [(None, {}), ("7", '"7"'), ('"7"', '"7"')])
def test_if_match(given: str | None, header: Any) -> None:
    assert if_match(given) == ({} if not header else {"If-Match": header})


def test_result_line_without_a_duration() -> None:
    assert result_line({"status": "error", "message": "timeout"}) == "error: timeout"


def test_the_fake_merge_patch_follows_rfc_7396() -> None:
    target = {"a": 1, "h": {"x": "1", "y": "2"}, "l": [1]}
    patch = {"a": None, "h": {"x": None, "z": "3"}, "l": []}
    assert merge_patch(target, patch) == {"h": {"y": "2", "z": "3"}, "l": []}
