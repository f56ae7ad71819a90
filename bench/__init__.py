"""`make bench`: the bridge against a raw NATS → HTTP baseline, side by side (issue 5)."""
