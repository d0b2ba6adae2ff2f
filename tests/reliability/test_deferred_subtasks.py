"""Deferred subtasks (docs/architecture.md, "Deferred subtasks"): a subtask outside any dependency is
stored only as a spec in its parent's chunk items until its first claim creates its item. These tests
drive the orchestrator directly against the local stack's moto and read the stored items."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from taskfleet import rules
from taskfleet_functions import faults
from taskfleet_functions.dal.queues import Ticket
from taskfleet_functions.orchestrator import Claim, ClaimResult, Orchestrator, Outcome, Report, ReportResult, TaskSpec
from taskfleet_functions.orchestrator.contracts import lease_hash

from tests.support.invariants import check_job
from tests.support.observe import lane_urls


class Runner:
    """One runner of `cluster`, calling the orchestrator in process: each claim with a fresh lease token, each
    report with the token of that task's claim (as taskfleet_runner does)."""

    def __init__(self, engine: Orchestrator, cluster: str, runner_id: str = "r") -> None:
        self.engine, self.cluster, self.runner_id = engine, cluster, runner_id
        self.leases: dict[str, str] = {}  # task id -> the token of this runner's claim that ran it

    def claim(self, job_id: str, task_id: str, ref: Any = None) -> ClaimResult:
        token = secrets.token_urlsafe(32)
        claim = Claim(job_id=job_id, task_id=task_id, cluster=self.cluster, lease=token, ref=ref)
        result = self.engine.claim(claim, self.runner_id)
        if result.status == "run":
            self.leases[task_id] = token
        return result

    def report(self, job_id: str, task_id: str, **fields: Any) -> ReportResult:
        fields.setdefault("outcome", Outcome.COMPUTED)
        return self.engine.report(
            Report(
                task_id=task_id,
                job_id=job_id,
                attempt=fields.pop("attempt", 1),
                cluster=self.cluster,
                lease=self.leases[task_id],
                **fields,
            )
        )


def parent_with_children(stack: Any, cluster: str, children: list[TaskSpec]) -> tuple[str, str]:
    """A job whose root reported `children`; returns (job id, root id). The root's ticket is consumed."""
    engine = stack.orchestrator
    job = engine.submit_job("deferred", [TaskSpec(name="Root", version="v0.0")], cluster=cluster)
    root = next(iter(engine.walk(job)))["task_id"]
    drain(stack, cluster)
    runner = Runner(engine, cluster, "r1")
    assert runner.claim(job["job_id"], root).status == "run"
    assert runner.report(job["job_id"], root, subtasks=tuple(children)).status == "ok"
    return job["job_id"], root


def drain(stack: Any, cluster: str) -> list[Ticket]:
    """Every ticket in the cluster's lanes (received and deleted)."""
    engine = stack.orchestrator
    tickets: list[Ticket] = []
    for url in lane_urls(stack, cluster):
        while messages := engine.queues.receive(url, max_messages=10):
            tickets.extend(Ticket.parse(m["Body"]) for m in messages)
            engine.queues.delete_messages(url, [m["ReceiptHandle"] for m in messages])
    return tickets


def test_subtasks_outside_dependencies_are_stored_as_specs_and_created_by_their_first_claim(stack, cluster):
    engine = stack.orchestrator
    children = [TaskSpec(name="Leaf", version="v0.0", input={"i": i}) for i in range(150)]
    children.append(TaskSpec(name="After", version="v0.0", depends_on=(0,)))  # 0 has a dependant: not deferred
    job_id, root = parent_with_children(stack, cluster, children)
    ids = [rules.child_task_id(root, 1, i) for i in range(151)]

    stored = {t["task_id"] for t in engine.db.batch_get([(f"TASK#{t}", "META") for t in ids])}
    assert stored == {ids[0], ids[150]}
    chunks = list(
        engine.db.query_all(
            key_condition="#PK = :pk AND begins_with(#SK, :k)", values={":pk": f"TASK#{root}", ":k": "KIDS#"}
        )
    )
    assert sorted(c["SK"] for c in chunks) == ["KIDS#1#0", "KIDS#1#1"]
    assert sum(len(c["specs"]) for c in chunks) == 149

    shown = {t["task_id"]: t for t in engine.job_tasks(job_id)}
    assert len(shown) == 152 and all(shown[t]["state"] == "QUEUED" for t in ids)
    tickets = {t.task_id: t for t in drain(stack, cluster)}
    assert set(tickets) == set(ids[:150])  # "After" waits for 0
    assert tickets[ids[0]].ref is None and tickets[ids[7]].ref == (root, 1, 7)

    r2 = Runner(engine, cluster, "r2")
    claim = r2.claim(job_id, ids[7], ref=tickets[ids[7]].ref)
    assert claim.status == "run" and claim.task is not None
    assert claim.task["input"] == '{"i":7}' and claim.task["attempt"] == 1 and claim.task["parent_id"] == root
    item = engine.db.get(f"TASK#{ids[7]}", "META")
    assert item["state"] == "RUNNING" and item["lease_owner"] == "r2" and item["index"] == 7
    assert item["lease_hash"] == lease_hash(r2.leases[ids[7]])  # the item created by the claim holds its lease
    # the same ticket received twice: the second claim finds the item and does not run it again
    again = Runner(engine, cluster, "r3").claim(job_id, ids[7], ref=tickets[ids[7]].ref)
    assert again.status == "busy"
    assert engine.db.get(f"TASK#{ids[7]}", "META")["attempt"] == 1


def test_claims_with_a_ref_the_orchestrator_did_not_send_run_nothing(stack, cluster):
    engine = stack.orchestrator
    job_id, root = parent_with_children(stack, cluster, [TaskSpec(name="Leaf", version="v0.0") for _ in range(3)])
    child = rules.child_task_id(root, 1, 1)
    runner = Runner(engine, cluster)
    assert runner.claim(job_id, child, ref=(root, 1, 2)).status == "discard"  # id does not match
    uncommitted = rules.child_task_id(root, 2, 1)
    assert runner.claim(job_id, uncommitted, ref=(root, 2, 1)).status == "discard"  # no such attempt
    assert runner.claim(job_id, child).status == "discard"  # no ref: nothing to create it from
    assert engine.db.get(f"TASK#{child}", "META") is None
    assert engine.db.get(f"TASK#{uncommitted}", "META") is None


def test_deferred_subtasks_complete_their_parent_and_the_job(stack, cluster):
    engine = stack.orchestrator
    job_id, _ = parent_with_children(stack, cluster, [TaskSpec(name="Leaf", version="v0.0") for _ in range(120)])
    runner = Runner(engine, cluster)
    for ticket in drain(stack, cluster):
        assert runner.claim(job_id, ticket.task_id, ref=ticket.ref).status == "run"
        assert runner.report(job_id, ticket.task_id).status == "ok"
    assert engine.get_job(job_id)["state"] == "COMPLETED"
    assert check_job(engine, job_id) == []


def test_lost_tickets_of_deferred_subtasks_are_sent_again_by_resume_and_redrive(stack, cluster):
    engine = stack.orchestrator
    job_id, _ = parent_with_children(stack, cluster, [TaskSpec(name="Leaf", version="v0.0") for _ in range(5)])
    first = drain(stack, cluster)  # the tickets are lost
    engine.resume(engine.get_job(job_id))
    resent = {t.task_id: t.ref for t in drain(stack, cluster)}
    assert resent == {t.task_id: t.ref for t in first}

    # a ticket that ended in the DLQ, as the sweeper receives it (called directly: the stack's own sweeper
    # runs on a timer and would race this test for the DLQ)
    assert engine.recovery.redrive(engine.cluster(cluster), {"Body": first[0].body()}) is True
    assert [t.task_id for t in drain(stack, cluster)] == [first[0].task_id]
    assert Runner(engine, cluster).claim(job_id, first[0].task_id, ref=first[0].ref).status == "run"
    assert check_job(engine, job_id, quiescent=False) == []


def test_a_large_fan_out_sends_its_tickets_as_a_window_that_slides_with_completed_buckets(stack, cluster):
    shared = stack.orchestrator
    engine = Orchestrator(shared.db, shared.queues, shared.settings)
    engine.reports.dispatch_window = 2  # latch buckets of 100: 200 tickets out at a time
    runner = Runner(engine, cluster)
    job = engine.submit_job("window", [TaskSpec(name="Root", version="v0.0")], cluster=cluster)
    root = next(iter(engine.walk(job)))["task_id"]
    drain(stack, cluster)
    assert runner.claim(job["job_id"], root).status == "run"
    children = [TaskSpec(name="Leaf", version="v0.0", input=i) for i in range(450)]
    assert runner.report(job["job_id"], root, subtasks=tuple(children)).status == "ok"

    def run(tickets: list[Ticket]) -> None:
        for ticket in tickets:
            assert runner.claim(job["job_id"], ticket.task_id, ref=ticket.ref).status == "run"
            assert runner.report(job["job_id"], ticket.task_id).status == "ok"

    def indexes(tickets: list[Ticket]) -> set[int]:
        return {t.ref[2] for t in tickets if t.ref}

    out = drain(stack, cluster)
    assert indexes(out) == set(range(200))
    engine.resume(engine.get_job(job["job_id"]))  # a resume (or repair) keeps to the window too
    assert indexes(drain(stack, cluster)) == set(range(200))
    run([t for t in out if t.ref and t.ref[2] >= 100])  # bucket 1 completes first
    nxt = drain(stack, cluster)
    assert indexes(nxt) == set(range(300, 400))
    # then bucket 0, whose filling report crashes before it sends bucket 2: the runner's retry of that
    # report finds it recorded and replays the propagation, window slide included
    bucket0 = sorted((t for t in out if t.ref and t.ref[2] < 100), key=lambda t: t.ref[2] if t.ref else 0)
    run(bucket0[:-1])
    filler = bucket0[-1]
    assert runner.claim(job["job_id"], filler.task_id, ref=filler.ref).status == "run"
    faults.arm("propagate.before_window_dispatch")
    try:
        with pytest.raises(faults.InjectedCrash):
            runner.report(job["job_id"], filler.task_id)
    finally:
        faults.disarm_all()
    assert drain(stack, cluster) == []
    assert runner.report(job["job_id"], filler.task_id).status == "ok"  # the runner's retry, same token
    later = drain(stack, cluster)
    assert indexes(later) == set(range(200, 300))
    run(nxt)  # bucket 3 opens bucket 5, which does not exist
    assert drain(stack, cluster) == []
    run(later)  # bucket 2 opens bucket 4, only half full
    last = drain(stack, cluster)
    assert indexes(last) == set(range(400, 450))
    run(last)
    assert drain(stack, cluster) == []
    assert engine.get_job(job["job_id"])["state"] == "COMPLETED"
    assert check_job(engine, job["job_id"]) == []
