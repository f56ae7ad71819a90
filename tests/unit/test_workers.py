"""Worker environments under `run --workers N`: each worker's admin port."""

from __future__ import annotations

import pytest

from bridge.cli.workers import check_ports, worker_env
from bridge.config.values import ConfigError


@pytest.mark.parametrize(
    ("http_port", "index", "expected"),
    [(8080, 0, "8080"), (8080, 1, "8081"), (8080, 3, "8083"), (0, 0, "0"), (0, 2, "0")],
)
def test_worker_i_serves_http_port_plus_i(http_port: int, index: int, expected: str) -> None:
    env = worker_env({"HTTP_PORT": str(http_port), "NATS_URL": "nats://n:4222"}, index, http_port)
    assert env == {"HTTP_PORT": expected, "NATS_URL": "nats://n:4222"}


@pytest.mark.parametrize(("http_port", "count"), [(8080, 4), (0, 64), (65534, 2)])
def test_ports_that_fit(http_port: int, count: int) -> None:
    check_ports(http_port, count)


def test_ports_past_65535_stop_start_up() -> None:
    with pytest.raises(ConfigError, match="HTTP_PORT"):
        check_ports(65535, 2)
