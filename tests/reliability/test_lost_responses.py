"""A write that was applied but whose response was lost is retried by botocore and then fails its own
condition. Each multi-step change must recognize its own write and carry on, at once, instead of
leaving the rest to a later repair (ticket redelivery after a lease, or the sweeper's outbox)."""

from __future__ import annotations

import contextlib
import secrets
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


def one_task_job(stack: Any, cluster: str, **kwargs: Any) -> tuple[str, str, str]:
    """A job of one task, claimed by a runner of `cluster`: (job id, task id, the claim's lease token)."""
    engine = stack.orchestrator
    job = engine.submit_job("lost", [TaskSpec(name="Leaf", version="v0.0", input="x", **kwargs)], cluster=cluster)
    task_id = next(iter(engine.walk(job)))["task_id"]
    lease = secrets.token_urlsafe(32)
    claim = Claim(job_id=job["job_id"], task_id=task_id, cluster=cluster, lease=lease)
    assert engine.claim(claim, "r1").status == "run"
    return job["job_id"], task_id, lease


def failure(job_id: str, task_id: str, cluster: str, lease: str) -> Report:
    """The runner's report of the claimed attempt's failure."""
    return Report(
        task_id=task_id,
        job_id=job_id,
        attempt=1,
        outcome=Outcome.FAILED,
        cluster=cluster,
        lease=lease,
        failure_message="boom",
    )


def test_a_failure_report_whose_response_was_lost_still_fails_the_job_at_once(stack, cluster):
    engine = stack.orchestrator
    job_id, task_id, lease = one_task_job(stack, cluster)
    with lose_first_response(stack, "UpdateItem") as injector:
        result = engine.report(failure(job_id, task_id, cluster, lease))
    assert injector.injected() == {"dynamodb:lost_response": 1}
    assert result.status == "failed"
    assert engine.get_job(job_id)["state"] == "FAILED"


def test_a_failure_with_retries_left_whose_response_was_lost_is_requeued(stack, cluster):
    engine = stack.orchestrator
    job_id, task_id, lease = one_task_job(stack, cluster, max_retries=1)
    with lose_first_response(stack, "UpdateItem") as injector:
        result = engine.report(failure(job_id, task_id, cluster, lease))
    assert injector.injected() == {"dynamodb:lost_response": 1}
    assert result.status == "requeued"  # the runner hands the ticket back at once, not after the lease


def test_a_job_retry_whose_response_was_lost_still_requeues_at_once(stack, cluster):
    engine = stack.orchestrator
    job_id, task_id, lease = one_task_job(stack, cluster)
    assert engine.report(failure(job_id, task_id, cluster, lease)).status == "failed"
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
    claim = Claim(job_id=job["job_id"], task_id=task_id, cluster=cluster, lease=secrets.token_urlsafe(32))
    faults.arm("claim.before_job_running", times=1)
    with pytest.raises(faults.InjectedCrash):
        engine.claim(claim, "r1")
    assert engine.claim(claim, "r1").status == "run"  # the runner's retry: the same request, the same token
    assert engine.get_job(job["job_id"])["state"] == "RUNNING"
