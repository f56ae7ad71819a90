"""Metrics and structured logs, and log flood control."""
