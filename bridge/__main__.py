"""`python -m bridge` is the `webhook-bridge` command."""

from bridge.cli.main import main

raise SystemExit(main())
