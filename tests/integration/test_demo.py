"""`webhook-bridge demo` runs end to end on its own: embedded NATS, bridge, receivers."""

from __future__ import annotations

import pytest
from harness.bridge import run_cli


@pytest.mark.e2e
async def test_demo_runs_and_summarises() -> None:
    result = await run_cli(["demo"], env={}, timeout_s=90)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "SIGNATURE MISMATCH" not in out
    assert "✔ demo complete. Deliveries by receiver: dead 2, erp 6, flaky 4." in out
    assert out.count("signatures verified") == 12  # 6 erp + 4 flaky + 2 replayed
    assert "answered 503" in out  # flaky
    assert "answered 500" in out  # dead
    assert "replayed 2 dead letter(s)" in out
    assert "Traceback" not in result.stderr
