"""Smoke test of the Celery peer benchmark (bench/peer_celery.py) at a small size.

Runs the whole thing for real (emulator, SQS FIFO queue, DynamoDB table, a prefork Celery worker as a
subprocess) and checks that every result arrived, the figures are sane, and no worker process is left.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

# The peer's packages are part of requirements/lock.txt: a missing one fails here, it is not skipped.
import celery  # noqa: F401
import pycurl  # noqa: F401
import pytest

from bench import peer_celery  # this test is about the benchmark itself

FANOUT = 20
CHAIN = 5


def _processes_in_groups(pgids: set[int]) -> list[int]:
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may contain spaces, so split after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) in pgids:
            alive.append(int(entry.name))
    return alive


def test_peer_celery_small_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    worker_pgids: set[int] = set()
    real_stop = peer_celery._stop_workers

    def recording_stop(procs: list[Any]) -> None:
        worker_pgids.update(p.pid for p in procs)
        real_stop(procs)

    monkeypatch.setattr(peer_celery, "_stop_workers", recording_stop)
    out = tmp_path / "peer.json"

    # Through the command line, so the JSON interface is covered too; main() calls run_peer().
    assert peer_celery.main(["--fanout", str(FANOUT), "--chain", str(CHAIN), "--json", str(out)]) == 0
    r = json.loads(out.read_text())

    # Every result arrived (run_peer raises otherwise) and every task left an execution record:
    # warm-up (1 + 4 and 3), the fan-out (1 + FANOUT) and the chain, duplicates on top.
    assert r["executions"] == 5 + 3 + (1 + FANOUT) + CHAIN + r["duplicate_executions"]
    assert isinstance(r["duplicate_executions"], int)
    assert r["duplicate_executions"] >= 0

    for key in ("throughput_tasks_per_s", "fanout_wall_s", "chain_hop_ms_median", "chain_hop_ms_p90",
                "requests_per_task", "requests_per_task_celery", "requests_per_task_client"):  # fmt: skip
        assert math.isfinite(r[key]) and r[key] > 0, (key, r[key])
    assert r["chain_hop_ms_p90"] >= r["chain_hop_ms_median"]
    assert r["throughput_tasks_per_s"] == pytest.approx(FANOUT / r["fanout_wall_s"], rel=0.01)

    by_action = r["requests_by_action_celery"]
    # Celery's own work per task: one SendMessage and one DeleteMessage per task, one result write.
    assert by_action["sqs:SendMessage"] > 0.9
    assert by_action["sqs:DeleteMessage"] >= 1.0
    assert by_action["dynamodb:PutItem"] >= 1.0
    assert by_action.get("sqs:ReceiveMessage", 0) > 0
    assert r["requests_by_action_client"]["dynamodb:GetItem"] >= FANOUT / (FANOUT + 1)
    total = sum(r["requests_by_action"].values())
    assert total == pytest.approx(r["requests_per_task"], abs=0.05)

    # No worker process (nor a pool child in its process group) is left behind.
    assert worker_pgids
    assert _processes_in_groups(worker_pgids) == []
    assert os.getpgid(0) not in worker_pgids
