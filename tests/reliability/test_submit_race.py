"""Idempotent submission under a concurrent duplicate: a client retries a submit (same client token)
while the first request is still writing its tasks, e.g. after a client-side timeout."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

from taskfleet_functions.orchestrator import TaskSpec
from taskfleet_functions.orchestrator.errors import Conflict

from tests.support.fleet import Fleet
from tests.support.invariants import check_executions, check_job
from tests.support.observe import executions
from tests.support.waits import terminal, wait_for


def test_a_duplicate_submit_racing_the_first_never_rewrites_its_running_tasks(
    stack, cluster, tmp_path: Path, monkeypatch
):
    engine = stack.orchestrator
    fleet = Fleet(stack, cluster, tmp_path)
    fleet.start(2)
    specs = [TaskSpec(name="Leaf", version="v0.0", input=f"r{i}", cluster=cluster) for i in range(3)]
    token = f"race-{tmp_path.name}"
    # Given a first submit that is slow: it stops right before writing its tasks, until released
    writes = engine.db.put_many
    paused, release = threading.Event(), threading.Event()

    def slow_put_many(items: Any) -> None:
        items = list(items)
        if threading.current_thread().name == "slow-submit" and not paused.is_set():
            paused.set()
            assert release.wait(60)
        writes(items)

    monkeypatch.setattr(engine.db, "put_many", slow_put_many)
    outcome: dict[str, Any] = {}

    def slow_submit() -> None:
        try:
            outcome["slow"] = engine.submit_job("race", specs, cluster=cluster, client_token=token)
        except Conflict as err:
            outcome["slow"] = err

    slow = threading.Thread(target=slow_submit, name="slow-submit")
    slow.start()
    try:
        assert paused.wait(30)
        # When the client's retry arrives meanwhile: either it is told to come back (the first is still
        # at work), or it submits the job, and the job runs to completion before the first one resumes
        try:
            fast = engine.submit_job("race", specs, cluster=cluster, client_token=token)
            wait_for(terminal(stack, fast["job_id"]), 60, "the job of the fast submit")
        except Conflict as err:
            assert err.code == "SubmitInProgress"
    finally:
        release.set()
        slow.join(60)
    # Then, once the first one finished too, the client's next retry finds the one job
    job_id = engine.submit_job("race", specs, cluster=cluster, client_token=token)["job_id"]
    if isinstance(outcome["slow"], dict):
        assert outcome["slow"]["job_id"] == job_id
    assert wait_for(terminal(stack, job_id), 60, "the job") == "COMPLETED"
    fleet.stop()
    assert check_job(engine, job_id) == []
    violations, figures = check_executions(executions(tmp_path), engine, [job_id])
    assert violations == []
    assert figures["executions_per_task"] == {"1": 3}  # each root ran exactly once
    assert Counter(j["job_id"] for j in engine.list_jobs(name="race", limit=500)[0])[job_id] == 1
