"""Behaviours 4 (failures), 5 (retry) and 6 (cancel)."""

from __future__ import annotations

from pathlib import Path

import pytest
from taskfleet import ConflictError

from tests.e2e.workflows import Fail, FailTimes, FlakyUntilFixed, Gated, Noop
from tests.support.observe import executions, marked, open_gate, queue_depth
from tests.support.waits import job_done, wait_until


def test_exception_is_captured_and_fails_the_task_and_the_job(client, cluster, runners, tmp_path: Path):
    runners.start(cluster, "Fail")
    job = client.jobs().submit("fails", Fail("x"), cluster=cluster)
    assert wait_until(job_done(client, job), what="failing job").state == "FAILED"
    (task,) = client.jobs().tasks(job)
    assert task.state == "FAILED"
    assert task.failure["message"] == "RuntimeError: boom in x"
    assert "workflows.py" in task.failure["traceback"] and "raise RuntimeError" in task.failure["traceback"]
    assert client.jobs().find(job).failure["message"] == "RuntimeError: boom in x"
    assert len(executions(tmp_path)) == 1


def test_failures_with_retries_left_are_requeued(client, cluster, runners, tmp_path: Path):
    runners.start(cluster, "FailTimes")
    job = client.jobs().submit("flaky", FailTimes("f", 2), cluster=cluster, max_retries=2)
    assert wait_until(job_done(client, job), what="flaky job").state == "COMPLETED"
    (task,) = client.jobs().tasks(job)
    assert (task.state, task.retry_count, task.attempt) == ("COMPUTED", 2, 3)
    assert [e["retry"] for e in executions(tmp_path)] == [0, 1, 2]


def test_out_of_retries_fails_the_job_and_stops_handing_out_its_tasks(stack, client, cluster, runners, tmp_path: Path):
    # Given a job whose first task blocks on a gate, while a sibling fails with one retry
    runners.start(cluster, "Gated", "FailTimes", "Noop")
    runners.start(cluster, "Gated", "FailTimes", "Noop")
    job = client.jobs().submit("fail-stops", [Gated("g", 3), FailTimes("f", 5)], cluster=cluster, max_retries=1)
    wait_until(lambda: marked(tmp_path, "started-g-1"), what="gated task start")
    assert wait_until(job_done(client, job), what="job failure").state == "FAILED"
    # When the running task finishes after the job failed, and submits subtasks
    open_gate(tmp_path, "g")
    wait_until(
        lambda: {t.display: t.state for t in client.jobs().tasks(job)}.get("Gated") == "COMPUTED",
        what="gated task to be recorded",
    )
    # Then it was allowed to finish, but nothing it submitted is handed out: once the runners have
    # settled every ticket, none of its subtasks ran and all are still queued
    wait_until(lambda: queue_depth(stack, cluster) == 0, what="tickets settled")
    tasks = client.jobs().tasks(job)
    children = [t for t in tasks if t.parent_id is not None]
    assert len(children) == 3 and {t.state for t in children} == {"QUEUED"}
    assert not [e for e in executions(tmp_path) if e["label"].startswith("g.child")]
    failing = next(t for t in tasks if t.name == "FailTimes")
    assert (failing.state, failing.retry_count) == ("FAILED", 1)


def test_retry_requeues_failed_tasks_and_keeps_only_the_successful_executions_subtasks(
    client, cluster, runners, tmp_path: Path
):
    (tmp_path / "broken-p").write_text("yes")
    runners.start(cluster, "FlakyUntilFixed", "Noop")
    job = client.jobs().submit("retry", [FlakyUntilFixed("p", 3), Noop("sibling")], cluster=cluster)
    assert wait_until(job_done(client, job), what="first failure").state == "FAILED"
    # The failed execution submitted 3 subtasks, but none of them exists
    tasks = client.jobs().tasks(job)
    assert {t.display for t in tasks} == {"FlakyUntilFixed", "Noop"}
    # When the bug is fixed and the job retried
    (tmp_path / "broken-p").unlink()
    # (the sibling may not have run before the job failed: then it is rescheduled too)
    sibling_pending = next(t for t in tasks if t.display == "Noop").state != "COMPUTED"
    assert client.jobs().retry(job) == 1 + sibling_pending
    assert wait_until(job_done(client, job), what="retried job").state == "COMPLETED"
    # Then the job continued, and only the successful execution's subtasks exist and ran
    tasks = client.jobs().tasks(job)
    parent = next(t for t in tasks if t.name == "FlakyUntilFixed")
    children = [t for t in tasks if t.parent_id == parent.id]
    assert parent.state == "COMPUTED" and parent.attempt == 2 and len(children) == 3
    child_runs = sorted(e["label"] for e in executions(tmp_path) if e["label"].startswith("p.attempt"))
    assert child_runs == [f"p.attempt2.child{i}" for i in range(3)]
    sibling_runs = [e for e in executions(tmp_path) if e["label"] == "sibling"]
    assert len(sibling_runs) == 1  # the retry did not run completed work again
    with pytest.raises(ConflictError, match="only a FAILED or CANCELED job can be retried"):
        client.jobs().retry(job)  # a completed job has nothing left to retry


def test_cancel_stops_queued_tasks_and_lets_running_ones_finish(stack, client, cluster, runners, tmp_path: Path):
    # (tasks of different names have lanes of their own, so the Noop runner joins once the job is canceled)
    runners.start(cluster, "Gated")
    job = client.jobs().submit("cancel", [Gated("g", 2), *[Noop(f"q{i}") for i in range(5)]], cluster=cluster)
    wait_until(lambda: marked(tmp_path, "started-g-1"), what="gated task start")
    canceled = client.jobs().cancel(job)
    assert canceled.state == "CANCELED"
    runners.start(cluster, "Noop")
    open_gate(tmp_path, "g")
    # The running task finishes and is recorded; the queued tickets are discarded on receipt
    wait_until(
        lambda: {t.display: t.state for t in client.jobs().tasks(job)}.get("Gated") == "COMPUTED",
        what="gated task recorded",
    )
    wait_until(lambda: queue_depth(stack, cluster) == 0, what="queued tickets discarded")
    ran = {e["label"] for e in executions(tmp_path)}
    assert ran == {"g"}
    states = [t.state for t in client.jobs().tasks(job) if t.name == "Noop"]
    assert states == ["QUEUED"] * 7  # 5 queued roots + 2 subtasks of the finished task
    assert client.jobs().find(job).state == "CANCELED"
    # A canceled job can be resumed with retry: everything left runs (7 tasks rescheduled)
    assert client.jobs().retry(job) == 7
    assert wait_until(job_done(client, job), what="resumed job").state == "COMPLETED"
    assert len(executions(tmp_path)) == 2 + 5 + 2
