"""webhook-bridge: NATS JetStream lifecycle events delivered as signed HTTP webhooks."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("webhook-bridge")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
