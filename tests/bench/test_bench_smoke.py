"""The benchmark suite at its small size: every workload runs to completion and every figure is there.
(Timing goals are the benchmark's to report, not a test's to assert.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

KEYS = (
    "throughput_tasks_per_s",
    "chain_hop_ms_median",
    "scaling_1_to_4",
    "requests_per_task",
    "cost_usd_per_million_tasks",
    "hot_item_write_share",
    "idle_requests_per_runner_minute",
    "cold_import_ms_max",
    "bundle_mb",
)


def test_small_benchmark_produces_every_figure(tmp_path: Path):
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--size", "small", "--no-peer", "--json", str(out)],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert set(KEYS) <= set(results)
    assert results["fanout_tasks"] == 61 and results["duplicate_executions"] == 0
    assert results["throughput_tasks_per_s"] > 0 and results["chain_hop_ms_median"] > 0
    assert 0 < results["hot_item_write_share"] < 1
    # the per-task request mix has what the design says a task costs: a claim (a put that creates a deferred
    # subtask's item, else an update) and a commit; the sibling bucket's signal (with the task's figures) is
    # shared by the siblings one call reports, as are receives by prefetched tickets
    by_action = results["requests_by_action"]
    assert 2 <= by_action["dynamodb:UpdateItem"] + by_action.get("dynamodb:PutItem", 0) < 3
    assert by_action["api:POST /runner"] < 1  # several tasks per runner call
    path = results["critical_path"]
    assert path["chain_hop_sequential_requests"] == path["chain_hop_sequential_requests_issued"] + 1 >= 3
    assert path["chain_hop_modelled_aws_ms"] > 0 and path["fanout_task_sequential_requests"] >= 1
    assert 0 < by_action["sqs:ReceiveMessage"] < 1
    assert 0 < results["cost_usd_per_million_tasks"] < 100
    assert set(results["cold_import_ms"]) == {"jobs", "clusters", "runner", "sweeper"}
    assert "fan-out throughput" in proc.stdout  # the table was printed
