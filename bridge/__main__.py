"""`python -m bridge` is the `webhook-bridge` command."""

from bridge.cli import main

raise SystemExit(main())
