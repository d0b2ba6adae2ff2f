"""bench.tilebox at a tiny size: the same fan-out runs to completion under Tilebox SDK runners and under taskfleet's
runners, and every figure is there and sane. (Timing goals are the benchmark's to report, not a test's to assert.)
Needs build/tilebox-venv (`make tilebox`): without it the test fails, it does not skip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TILEBOX_PYTHON = ROOT / "build" / "tilebox-venv" / "bin" / "python"
LEAVES = 10

FIGURES = (
    "wall_s",
    "submit_to_done_s",
    "tasks_per_s",
    "aws_requests_per_task",
    "dynamodb_requests_per_task",
    "sqs_requests_per_task",
    "write_units_per_task",
    "api_calls_per_task",
)


def test_tiny_tilebox_benchmark_produces_every_figure(tmp_path: Path) -> None:
    if not TILEBOX_PYTHON.exists():
        pytest.fail(f"the Tilebox SDK venv is missing ({TILEBOX_PYTHON}): run `make tilebox`", pytrace=False)
    out = tmp_path / "tilebox-results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.tilebox", "--tasks", str(LEAVES), "--runners", "1", "--json", str(out)],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads(out.read_text())
    assert (results["tasks"], results["runners"]) == (LEAVES, 1)
    for mode in ("tilebox", "taskfleet"):
        r = results[mode]
        assert r["job_state"] == "COMPLETED", (mode, r)
        assert r["tasks"] == LEAVES + 1 and r["tasks_by_state"] == {"COMPUTED": LEAVES + 1}, (mode, r)
        assert all(isinstance(r[k], int | float) for k in FIGURES), (mode, r)
        assert 0 < r["wall_s"] <= r["submit_to_done_s"] < 120, (mode, r)
        assert r["tasks_per_s"] > 0, (mode, r)
        # every task is claimed and reported (conditional writes), and its ticket is received from SQS
        assert r["dynamodb_requests_per_task"] >= 1 and r["sqs_requests_per_task"] > 0, (mode, r)
        assert r["aws_requests_per_task"] == pytest.approx(
            r["dynamodb_requests_per_task"] + r["sqs_requests_per_task"], abs=0.01
        )
        assert r["write_units_per_task"] >= 1 and r["api_calls_per_task"] > 0, (mode, r)
    tilebox, taskfleet = results["tilebox"], results["taskfleet"]
    # a Tilebox runner calls NextTask once per task (one task at a time); the job was submitted over Connect
    routes = tilebox["api_calls_by_route_per_task"]
    assert routes["POST /workflows.v1.TaskService"] >= 1 and "POST /workflows.v1.JobService" in routes
    assert "POST /runner" in taskfleet["api_calls_by_route_per_task"]
    assert 0 < tilebox["next_task_ms_p50"] <= tilebox["next_task_ms_p95"] <= tilebox["next_task_ms_max"]
    assert sum(tilebox["next_task_calls"].values()) >= LEAVES + 1
    assert results["environment"]["emulator"]["moto"]
    assert "NextTask p50" in proc.stdout and "emulator: moto" in proc.stdout  # the table was printed
