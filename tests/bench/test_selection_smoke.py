"""The selection benchmark (bench/selection.py) at its small size: it runs, every figure is printed and
written, and the runner ran all 8 of its own tasks with and without the foreign backlog in its cluster.
(Timing and request goals are the benchmark's to report, not a test's to assert.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_small_selection_benchmark_produces_every_figure(tmp_path: Path):
    out = tmp_path / "selection-results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.selection", "--size", "small", "--repeats", "2", "--json", str(out)],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["foreign_tickets"] == 200
    # the runner polls the lanes the orchestrator answers it: its own task's, not the foreign one's
    assert results["lanes_polled"] == results["busy_lanes_answered"] == 1
    for scenario in ("no_backlog", "backlog"):
        figures = results[scenario]
        # all 8 own tasks ran in every repeat, with the foreign tickets standing beside them or not
        assert figures["completed"] == [8, 8]
        assert all(run["job_state"] == "COMPLETED" for run in figures["runs"])
        assert figures["first_claim_ms_median"] >= 0 and figures["wall_s_median"] > 0
        assert figures["idle"]["requests_per_runner_minute"] >= 0
        assert "sqs:ReceiveMessage" in figures["idle"]["by_action_per_minute"]
    assert results["foreign_lane_before"]["visible"] == 200
    assert results["foreign_job_state"] == "SUBMITTED"  # no runner registers the foreign task
    assert results["moto"]
    assert set(results["goals"]) == {
        "first_claim_equal_within_noise",
        "wall_equal_within_noise",
        "idle_at_most_3_per_lane",
    }
    assert "submit -> first claim" in proc.stdout and "idle requests" in proc.stdout  # the table was printed
