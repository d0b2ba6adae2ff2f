"""Retention: a job's items carry the table's TTL attribute, set on every write, so DynamoDB deletes them
a retention period after their last change; cluster and lane items never expire. (moto keeps expired
items: the test checks the attribute DynamoDB's TTL acts on.)"""

from __future__ import annotations

import time

from tests.e2e.workflows import Parent
from tests.support.waits import job_done, wait_until

DAY = 86_400


def items(stack, pk: str) -> list[dict]:
    return list(stack.orchestrator.db.query_all(key_condition="#PK = :pk", values={":pk": pk}))


def test_every_item_of_a_finished_job_expires_after_the_retention(stack, client, cluster, runners):
    # Given a job with subtasks, run to completion
    job = client.jobs().submit("retained", Parent("p", 3), cluster=cluster)
    runners.start(cluster, "Parent", "Sleepy")
    assert wait_until(job_done(client, job), what="the job").state == "COMPLETED"
    finished = time.time()
    # Then the job item, its latches and every task's items expire 90 days after their last write
    retention = stack.orchestrator.settings.retention_days * DAY
    rows = items(stack, f"JOB#{job.id}")
    for task in client.jobs().tasks(job):
        rows += items(stack, f"TASK#{task.id}")
    assert len(rows) >= 1 + 4
    for row in rows:
        assert finished + retention - 120 <= int(row["expires_at"]) <= finished + retention + 5, row["SK"]
    # and the cluster and its lanes never do
    assert "expires_at" not in stack.orchestrator.table.get_cluster(cluster)
    assert all("expires_at" not in lane for lane in stack.orchestrator.table.lanes(cluster))
