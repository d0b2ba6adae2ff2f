"""Runner calls with several reports and claims (docs/architecture.md, "Runner loop"), sibling buckets
(docs/architecture.md, "Latches") and the job read that overlaps a claim's write. The orchestrator runs in
process against the local stack's moto; every AWS request it makes is seen through botocore's events."""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from typing import Any

import pytest
from taskfleet_functions.orchestrator import Claim, Outcome, Report, TaskSpec
from taskfleet_functions.orchestrator.errors import Forbidden

from tests.reliability.test_deferred_subtasks import Runner, drain, parent_with_children
from tests.support.invariants import check_job


class WriteLog:
    """The (PK, SK) of every UpdateItem/PutItem the orchestrator's DynamoDB client sends."""

    def __init__(self, client: Any) -> None:
        self.writes: Counter[tuple[str, str]] = Counter()
        self.client = client
        client.meta.events.register("provide-client-params.dynamodb.*", self._seen)

    def _seen(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in ("UpdateItem", "PutItem"):
            key = params.get("Key") or params.get("Item") or {}
            self.writes[(key["PK"]["S"], key["SK"]["S"])] += 1

    def close(self) -> None:
        self.client.meta.events.unregister("provide-client-params.dynamodb.*", self._seen)


def claims_for(job_id: str, cluster: str, tickets: list[Any]) -> list[Claim]:
    return [
        Claim(job_id=job_id, task_id=t.task_id, cluster=cluster, lease=secrets.token_urlsafe(32), ref=t.ref)
        for t in tickets
    ]


def computed(claim: Claim, outcome: Outcome = Outcome.COMPUTED, **fields: Any) -> Report:
    """The report of the first attempt of a claimed task (computed, unless said otherwise)."""
    return Report(
        task_id=claim.task_id,
        job_id=claim.job_id,
        attempt=1,
        outcome=outcome,
        cluster=claim.cluster,
        lease=claim.lease,
        **fields,
    )


def test_siblings_reported_in_one_call_are_counted_and_signalled_in_one_write(stack, cluster):
    engine = stack.orchestrator
    job_id, root = parent_with_children(stack, cluster, [TaskSpec(name="Leaf", version="v0.0") for _ in range(30)])
    tickets = sorted(drain(stack, cluster), key=lambda t: t.ref[2] if t.ref else -1)
    first, second, third = tickets[:10], tickets[10:20], tickets[20:]
    claims = claims_for(job_id, cluster, first)
    _, claimed = engine.next_many([], claims, "r")
    assert [c.status for c in claimed] == ["run"] * 10

    # the ten reports of one call, with the claims of the next ten
    log = WriteLog(engine.db.client)
    try:
        next_claims = claims_for(job_id, cluster, second)
        reported, claimed = engine.next_many([computed(c) for c in claims], next_claims, "r")
    finally:
        log.close()
    assert [r.status for r in reported] == ["ok"] * 10 and [c.status for c in claimed] == ["run"] * 10
    bucket_key = (f"JOB#{job_id}", f"STATS#{root}#0")
    assert log.writes[bucket_key] == 1  # ten siblings: one write counts and signals them all
    bucket = engine.db.get(*bucket_key)
    assert bucket["total"] == 30 and bucket["done"] == set(range(10)) and bucket["seen"] == set(range(10))
    assert bucket["n#COMPUTED"] == 10

    # the same reports again (a runner retrying after a lost response): recognised, nothing counted twice
    again, _ = engine.next_many([computed(c) for c in claims], [], "r")
    assert [r.status for r in again] == ["ok"] * 10
    assert engine.db.get(*bucket_key)["n#COMPUTED"] == 10

    last = claims_for(job_id, cluster, third)
    engine.next_many([computed(c) for c in next_claims], last, "r")
    engine.next_many([computed(c) for c in last], [], "r")
    job = engine.get_job(job_id)
    assert job["state"] == "COMPLETED"
    assert engine.job_figures(job)["execution_stats"]["tasks_by_state"] == {"COMPUTED": 31}
    assert check_job(engine, job_id) == []


def test_claims_of_another_clusters_tasks_are_refused_each_in_its_own_half(stack, cluster):
    engine = stack.orchestrator
    other = str(engine.create_cluster("elsewhere")["slug"])
    job_id, _ = parent_with_children(stack, cluster, [TaskSpec(name="Leaf", version="v0.0") for _ in range(2)])
    tickets = drain(stack, cluster)
    # a runner of another cluster claims this cluster's tasks (their tickets copied from elsewhere)
    theirs = claims_for(job_id, other, tickets)
    _, claimed = engine.next_many([], theirs, "r")
    assert [(c.status, c.code) for c in claimed] == [("discard", "refused")] * 2
    # alone, such a claim refuses the whole call, as it always did
    with pytest.raises(Forbidden):
        engine.next_many([], theirs[:1], "r")
    assert all(engine.db.get(f"TASK#{t.task_id}", "META") is None for t in tickets)  # nothing created
    assert check_job(engine, job_id) == []


def test_a_claim_whose_job_was_canceled_takes_its_write_back_and_runs_nothing(stack, cluster, monkeypatch):
    engine = stack.orchestrator
    job_id, _ = parent_with_children(stack, cluster, [TaskSpec(name="Leaf", version="v0.0") for _ in range(3)])
    tickets = drain(stack, cluster)
    engine.cancel_job(job_id)
    # the job's read comes back only after the claim's write went out (as it may on AWS)
    written = threading.Event()
    brief = engine.jobs.brief
    monkeypatch.setattr(engine.jobs, "brief", lambda job: (written.wait(10), brief(job))[1])

    def after_write(model: Any, **_: Any) -> None:
        if model.name in ("PutItem", "UpdateItem"):
            written.set()

    engine.db.client.meta.events.register("after-call.dynamodb", after_write)
    try:
        for ticket in tickets:
            written.clear()
            result = Runner(engine, cluster).claim(job_id, ticket.task_id, ref=ticket.ref)
            assert (result.status, result.code) == ("discard", "job_not_active")
            task = engine.db.get(f"TASK#{ticket.task_id}", "META")
            # the claim created the deferred task RUNNING beside the read; finding the job canceled, it took
            # its write back: QUEUED, no lease, no attempt, as a canceled job's tasks are
            assert task["state"] == "QUEUED" and "lease_owner" not in task and "lease_expires" not in task
            assert task["attempt"] == 0
    finally:
        engine.db.client.meta.events.unregister("after-call.dynamodb", after_write)
    assert check_job(engine, job_id) == []


def test_nested_single_children_complete_through_their_sibling_buckets(stack, cluster):
    engine = stack.orchestrator
    job_id = engine.submit_job("nest", [TaskSpec(name="Root", version="v0.0")], cluster=cluster)["job_id"]
    runner = Runner(engine, cluster)
    (ticket,) = drain(stack, cluster)
    for depth in range(4):  # each task submits one child, the fourth none
        assert runner.claim(job_id, ticket.task_id, ref=ticket.ref).status == "run"
        subtasks = (TaskSpec(name="Root", version="v0.0"),) if depth < 3 else ()
        assert runner.report(job_id, ticket.task_id, subtasks=subtasks).status == "ok"
        if subtasks:
            assert engine.get_job(job_id)["state"] != "COMPLETED"
            (ticket,) = drain(stack, cluster)
    job = engine.get_job(job_id)
    assert job["state"] == "COMPLETED"
    assert engine.job_figures(job)["execution_stats"]["tasks_by_state"] == {"COMPUTED": 4}
    assert check_job(engine, job_id) == []


def test_a_task_given_back_before_it_started_keeps_its_attempt_for_the_next_claim(stack, cluster):
    engine = stack.orchestrator
    job_id, _ = parent_with_children(stack, cluster, [TaskSpec(name="Leaf", version="v0.0") for _ in range(2)])
    unstarted, interrupted = claims_for(job_id, cluster, drain(stack, cluster))
    _, claimed = engine.next_many([], [unstarted, interrupted], "r")
    assert [c.status for c in claimed] == ["run", "run"]

    def released(claim: Claim, *, before_start: bool) -> Report:
        return computed(claim, Outcome.RELEASED, unstarted=before_start)

    reported, _ = engine.next_many(
        [released(unstarted, before_start=True), released(interrupted, before_start=False)], [], "r"
    )
    assert [r.status for r in reported] == ["requeued", "requeued"]
    # given back before it started: not an attempt; given back while it ran (a stopping runner): one
    assert engine.db.get(f"TASK#{unstarted.task_id}", "META")["attempt"] == 0
    assert engine.db.get(f"TASK#{interrupted.task_id}", "META")["attempt"] == 1
    # the same give-back again (its response was lost): recognised, nothing changes
    again, _ = engine.next_many([released(unstarted, before_start=True)], [], "r")
    assert again[0].status == "requeued"
    assert engine.db.get(f"TASK#{unstarted.task_id}", "META")["attempt"] == 0
    # the next claim is attempt 1, and an old token changes nothing
    (retaken,) = claims_for(job_id, cluster, [unstarted])
    _, claimed = engine.next_many([], [retaken], "r2")
    assert claimed[0].status == "run" and claimed[0].task is not None and claimed[0].task["attempt"] == 1
    stale, _ = engine.next_many([released(unstarted, before_start=True)], [], "r")
    assert stale[0].status == "lease_lost"
    assert engine.db.get(f"TASK#{unstarted.task_id}", "META")["state"] == "RUNNING"


def test_a_job_written_before_sibling_buckets_completes_through_its_old_latches(stack, cluster):
    engine = stack.orchestrator
    job_id, root = parent_with_children(stack, cluster, [TaskSpec(name="Leaf", version="v0.0") for _ in range(3)])
    # As the previous version wrote it: the roots' and the children's latches on their owners (up to 100
    # members); the stats buckets hold figures only (the root's, counted at its report)
    for group in ("root", root):
        engine.db.update(f"JOB#{job_id}", f"STATS#{group}#0", remove=["total", "done"])
    engine.db.update(f"JOB#{job_id}", "META", set={"roots_total": 1, "roots_bucketed": False}, remove=["roots_done"])
    engine.db.update(f"TASK#{root}", "META", set={"children_total": 3, "children_bucketed": False})
    tickets = drain(stack, cluster)
    claims = claims_for(job_id, cluster, tickets)
    engine.next_many([], claims, "r")
    reported, _ = engine.next_many([computed(c) for c in claims], [], "r")
    assert [r.status for r in reported] == ["ok"] * 3
    assert engine.db.get(f"TASK#{root}", "META")["children_done"] == {0, 1, 2}
    job = engine.get_job(job_id)
    assert job["state"] == "COMPLETED" and job["roots_done"] == {0}
    assert engine.job_figures(job)["execution_stats"]["tasks_by_state"] == {"COMPUTED": 4}
    assert check_job(engine, job_id) == []
