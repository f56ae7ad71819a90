"""Pure policy, no I/O: events, routing, signing, URL policy, retries, task records."""
