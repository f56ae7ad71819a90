"""Test harness: real nats-server, an HTTP receiver and the webhook-bridge command on loopback."""
