"""A write that was applied but whose response was lost is retried by botocore and then fails its own
condition. Each multi-step change must recognize its own write and carry on, at once, instead of
leaving the rest to a later repair (ticket redelivery after a lease, or the sweeper's outbox)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from taskfleet_functions import faults
from taskfleet_functions.orchestrator import Claim, Outcome, Report, TaskSpec
from taskfleet_runner.aws_faults import FaultInjector


@contextlib.contextmanager
def lose_first_response(stack: Any, operation: str) -> Iterator[FaultInjector]:
    """The next `operation` call of the handlers is applied, and its answer lost (once)."""
    injector = FaultInjector(1.0, kinds=("lost_response",), operations=(operation,), limit=1)
    injector.install(stack.orchestrator.db.client)
    try:
        yield injector
    finally:
        injector.uninstall(stack.orchestrator.db.client)


def one_task_job(stack: Any, cluster: str, **kwargs: Any) -> tuple[str, str]:
    engine = stack.orchestrator
    job = engine.submit_job("lost", [TaskSpec(name="Leaf", version="v0.0", input="x", **kwargs)], cluster=cluster)
    task_id = next(iter(engine.walk(job)))["task_id"]
    assert engine.claim(Claim(job_id=job["job_id"], task_id=task_id), "r1").status == "run"
    return job["job_id"], task_id


def test_a_failure_report_whose_response_was_lost_still_fails_the_job_at_once(stack, cluster):
    engine = stack.orchestrator
    job_id, task_id = one_task_job(stack, cluster)
    with lose_first_response(stack, "UpdateItem") as injector:
        result = engine.report(
            Report(task_id=task_id, job_id=job_id, attempt=1, outcome=Outcome.FAILED, failure_message="boom")
        )
    assert injector.injected() == {"dynamodb:lost_response": 1}
    assert result.status == "failed"
    assert engine.get_job(job_id)["state"] == "FAILED"


def test_a_failure_with_retries_left_whose_response_was_lost_is_requeued(stack, cluster):
    engine = stack.orchestrator
    job_id, task_id = one_task_job(stack, cluster, max_retries=1)
    with lose_first_response(stack, "UpdateItem"):
        result = engine.report(
            Report(task_id=task_id, job_id=job_id, attempt=1, outcome=Outcome.FAILED, failure_message="boom")
        )
    assert result.status == "requeued"  # the runner hands the ticket back at once, not after the lease


def test_a_job_retry_whose_response_was_lost_still_requeues_at_once(stack, cluster):
    engine = stack.orchestrator
    job_id, task_id = one_task_job(stack, cluster)
    engine.report(Report(task_id=task_id, job_id=job_id, attempt=1, outcome=Outcome.FAILED, failure_message="boom"))
    with lose_first_response(stack, "UpdateItem"):
        engine.retry_job(job_id)
    assert engine.db.get(f"TASK#{task_id}", "META")["state"] == "QUEUED"
    assert "outbox_at" not in engine.get_job(job_id)  # dispatched, not left to the sweeper


def test_a_submit_whose_job_write_response_was_lost_dispatches_at_once(stack, cluster):
    engine = stack.orchestrator
    with lose_first_response(stack, "PutItem"):
        job = engine.submit_job("lost-submit", [TaskSpec(name="Leaf", version="v0.0", input="x")], cluster=cluster)
    assert "outbox_at" not in engine.get_job(job["job_id"])


@pytest.fixture(autouse=True)
def _disarm():
    faults.disarm_all()
    yield
    faults.disarm_all()


def test_a_claim_retried_after_a_crash_moves_the_job_to_running(stack, cluster):
    engine = stack.orchestrator
    job = engine.submit_job("claim-crash", [TaskSpec(name="Leaf", version="v0.0", input="x")], cluster=cluster)
    task_id = next(iter(engine.walk(job)))["task_id"]
    faults.arm("claim.before_job_running", times=1)
    with pytest.raises(faults.InjectedCrash):
        engine.claim(Claim(job_id=job["job_id"], task_id=task_id), "r1")
    assert engine.claim(Claim(job_id=job["job_id"], task_id=task_id), "r1").status == "run"  # the runner's retry
    assert engine.get_job(job["job_id"])["state"] == "RUNNING"
