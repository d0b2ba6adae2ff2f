"""What a runner's credentials reach (docs/architecture.md, "Leases and the runner's cluster"): the attacks
of a runner credential (or code in a task, which can read it) against the orchestrator, each refused
without changing anything. Driven over HTTP against the local stack, which binds runner routes to the
cluster in their path as IAM does on AWS."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from taskfleet import ConflictError, ForbiddenError, rules

from tests.e2e.workflows import Noop


def token() -> str:
    return secrets.token_urlsafe(32)


class Runner:
    """Raw runner calls on one cluster's routes."""

    def __init__(self, client: Any, cluster: str) -> None:
        self.transport = client.transport
        self.cluster = cluster

    def claim(self, job_id: str, task_id: str, lease: str) -> dict[str, Any]:
        body = {"runner_id": "r", "claim": {"job_id": job_id, "task_id": task_id, "lease": lease}}
        return dict(self.transport.request("POST", f"/runner/{self.cluster}/next", body)["claim"])

    def report(self, job_id: str, task_id: str, lease: str, outcome: str = "computed", **extra: Any) -> str:
        report = {"job_id": job_id, "task_id": task_id, "attempt": 1, "lease": lease, "outcome": outcome, **extra}
        return str(
            self.transport.request("POST", f"/runner/{self.cluster}/next", {"runner_id": "r", "report": report})[
                "report"
            ]["status"]
        )

    def extend(self, job_id: str, task_id: str, lease: str) -> Any:
        body = {"runner_id": "r", "task_id": task_id, "job_id": job_id, "attempt": 1, "lease": lease}
        return self.transport.request("POST", f"/runner/{self.cluster}/extend", body)


def queued_job(client: Any, cluster: str, label: str) -> tuple[str, str]:
    job = client.jobs().submit(label, Noop(label), cluster=cluster)
    return job.id, rules.root_task_id(job.id, 0)


def task_item(stack: Any, task_id: str) -> dict[str, Any]:
    return dict(stack.orchestrator.table.get_task(task_id))


@pytest.fixture
def other_cluster(client: Any) -> str:
    return str(client.clusters().create("other").slug)


def test_a_runner_cannot_claim_a_task_of_another_cluster(stack, client, cluster, other_cluster):
    # Given a queued task of one cluster
    job_id, task_id = queued_job(client, cluster, "theirs")
    # When a runner of another cluster claims it, knowing its ids
    with pytest.raises(ForbiddenError) as refused:
        Runner(client, other_cluster).claim(job_id, task_id, token())
    # Then it is refused and the task (and its input) stays where it was
    assert refused.value.code == "WrongCluster"
    item = task_item(stack, task_id)
    assert item["state"] == "QUEUED" and int(item["attempt"]) == 0
    # and nor can it report on it or extend a lease on it
    holder = token()
    assert Runner(client, cluster).claim(job_id, task_id, holder)["status"] == "run"
    with pytest.raises(ForbiddenError):
        Runner(client, other_cluster).report(job_id, task_id, holder)
    assert task_item(stack, task_id)["state"] == "RUNNING"


def test_without_the_lease_token_a_report_extension_or_give_back_changes_nothing(stack, client, cluster):
    # Given a task running under one runner's lease
    job_id, task_id = queued_job(client, cluster, "leased")
    runner = Runner(client, cluster)
    holder = token()
    claim = runner.claim(job_id, task_id, holder)
    assert claim["status"] == "run" and claim["task"]["lease"] == holder
    # When someone else on the same cluster reports it computed, failed or given back, or extends the lease
    intruder = token()
    assert runner.report(job_id, task_id, intruder) == "lease_lost"
    assert runner.report(job_id, task_id, intruder, "failed", failure={"message": "x"}) == "lease_lost"
    assert runner.report(job_id, task_id, intruder, "released") == "lease_lost"
    with pytest.raises(ConflictError):
        runner.extend(job_id, task_id, intruder)
    # Then the task still runs under its holder, whose report stands
    item = task_item(stack, task_id)
    assert item["state"] == "RUNNING" and "failure" not in item
    assert item["lease_hash"] != holder  # only a hash is stored
    runner.extend(job_id, task_id, holder)
    assert runner.report(job_id, task_id, holder) == "ok"
    assert runner.report(job_id, task_id, holder) == "ok"  # a retried report is recognised by its token
    assert client.jobs().find(job_id).state == "COMPLETED"


def test_a_report_naming_another_job_fails_nothing(stack, client, cluster):
    # Given a task running under a lease, and another active job
    job_id, task_id = queued_job(client, cluster, "mine")
    victim, _ = queued_job(client, cluster, "victim")
    runner = Runner(client, cluster)
    lease = token()
    assert runner.claim(job_id, task_id, lease)["status"] == "run"
    # When its holder reports a failure, or subtasks, naming the other job
    with pytest.raises(ConflictError) as refused:
        runner.report(victim, task_id, lease, "failed", failure={"message": "fail them"})
    assert refused.value.code == "WrongJob"
    with pytest.raises(ConflictError):
        runner.report(victim, task_id, lease, subtasks=[{"name": "Noop", "version": "v0.0", "input": {"label": "x"}}])
    # Then neither job changed
    assert client.jobs().find(victim).state == "SUBMITTED"
    assert task_item(stack, task_id)["state"] == "RUNNING"
    # and once the task failed for real, replaying that failure against the other job changes nothing either
    assert runner.report(job_id, task_id, lease, "failed", failure={"message": "real"}) == "failed"
    with pytest.raises(ConflictError):
        runner.report(victim, task_id, lease, "failed", failure={"message": "replayed"})
    assert client.jobs().find(victim).state == "SUBMITTED"
    assert client.jobs().find(job_id).state == "FAILED"


def test_a_task_of_a_canceled_job_cannot_be_claimed_by_naming_an_active_job(stack, client, cluster):
    # Given a canceled job with a queued task, and an active job
    canceled, task_id = queued_job(client, cluster, "canceled")
    client.jobs().cancel(canceled)
    active, _ = queued_job(client, cluster, "active")
    runner = Runner(client, cluster)
    # When a runner claims the canceled job's task naming the active job
    with pytest.raises(ConflictError) as refused:
        runner.claim(active, task_id, token())
    # Then it is refused and the task never runs
    assert refused.value.code == "WrongJob"
    assert task_item(stack, task_id)["state"] == "QUEUED"
    assert runner.claim(canceled, task_id, token())["status"] == "discard"


def test_a_refused_claim_beside_a_recorded_report_refuses_only_the_claim(stack, client, cluster):
    # Given a running task, and a queued task of another job
    job_id, task_id = queued_job(client, cluster, "reported")
    other_job, other_task = queued_job(client, cluster, "other")
    runner = Runner(client, cluster)
    lease = token()
    assert runner.claim(job_id, task_id, lease)["status"] == "run"
    # When one call reports the first and claims the second naming the wrong job
    body = {
        "runner_id": "r",
        "report": {"job_id": job_id, "task_id": task_id, "attempt": 1, "lease": lease, "outcome": "computed"},
        "claim": {"job_id": job_id, "task_id": other_task, "lease": token()},
    }
    answer = client.transport.request("POST", f"/runner/{cluster}/next", body)
    # Then the report is recorded and said to be, and only the claim is refused (the task stays queued)
    assert answer["report"]["status"] == "ok"
    assert answer["claim"]["status"] == "discard" and answer["claim"]["code"] == "refused"
    assert task_item(stack, task_id)["state"] == "COMPUTED"
    assert task_item(stack, other_task)["state"] == "QUEUED"
    assert client.jobs().find(other_job).state == "SUBMITTED"
