"""Spans or none, decided once; the URL a span shows; closing never holds the process up."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager

import pytest

from bridge.observability.otel import OtlpSpans
from bridge.observability.tracing import AttemptSpan, close_spans, shown_url, start_spans
from bridge.policy.dead_letter import DeadLetter
from bridge.policy.events import Event, InvalidEvent
from bridge.policy.tasks import DeliveryTask
from bridge.policy.trace_context import TraceContext


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.example.com/h", "https://hooks.example.com/h"),
        (
            "https://u:pw@hooks.example.com:8443/h?token=s3cret#f",
            "https://hooks.example.com:8443/h",
        ),
        ("http://[::1]:8080/a/b?x=1", "http://[::1]:8080/a/b"),
        ("http://[", "(unparsable URL)"),
    ],
)
def test_a_span_shows_no_credentials_nor_query(url: str, shown: str) -> None:
    assert shown_url(url) == shown


def test_no_endpoint_no_spans() -> None:
    assert start_spans(None) is None
    assert start_spans("") is None


def test_an_endpoint_with_the_extra_installed_gives_otlp_spans() -> None:
    spans = start_spans("http://127.0.0.1:9")
    assert isinstance(spans, OtlpSpans)
    spans.close()  # nothing recorded: nothing to export


class Stuck:
    """Spans whose close blocks until released, as the SDK's does while a collector is down."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.closed = threading.Event()

    def consume(self, event: Event | InvalidEvent) -> AbstractContextManager[TraceContext]:
        raise NotImplementedError

    def route(self, event: Event) -> AbstractContextManager[None]:
        raise NotImplementedError

    def attempt(self, task: DeliveryTask) -> AttemptSpan:
        raise NotImplementedError

    def dead_letter(self, record: DeadLetter) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.release.wait()
        self.closed.set()


async def test_closing_gives_up_after_its_deadline_and_leaves_the_export_behind() -> None:
    stuck = Stuck()
    await close_spans(stuck, 0.05)
    assert not stuck.closed.is_set(), "returned although the export was still running"
    stuck.release.set()
    assert stuck.closed.wait(5)


async def test_closing_returns_once_the_export_is_done() -> None:
    stuck = Stuck()
    stuck.release.set()
    await close_spans(stuck, 30)
    assert stuck.closed.is_set()
