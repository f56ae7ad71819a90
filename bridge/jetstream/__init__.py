"""The JetStream side, the only part that imports nats: connection and topology, consumers and
their handlers, deferrals, dead letters, the delivery log, per-job webhooks, lag, the
embedded server."""
