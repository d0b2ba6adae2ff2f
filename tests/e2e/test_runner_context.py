"""The runner context (resources a runner's tasks share) and the task logger, as the reference has them."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from taskfleet import ExecutionContext, Task, rules


class Shared:
    """What a runner process sets up once for all its tasks (a model, a connection pool)."""

    def __init__(self) -> None:
        self.used_by: list[str] = []


class UsesShared(Task):
    label: str

    def execute(self, context: ExecutionContext) -> None:
        context.runner_context.used_by.append(self.label)
        context.logger.info("working on %s", self.label)


def test_tasks_see_their_runners_context_and_log_with_their_ids(
    client: Any, cluster: str, caplog: pytest.LogCaptureFixture
) -> None:
    shared = Shared()
    job = client.jobs().submit("shared", [UsesShared("a"), UsesShared("b")], cluster=cluster)
    with caplog.at_level(logging.INFO, logger="taskfleet.task"):
        client.runner(cluster, [UsesShared], context=shared, install_signal_handlers=False).run_all()
    assert sorted(shared.used_by) == ["a", "b"]
    assert client.jobs().find(job).state == "COMPLETED"
    # each line names its job and task (root i of the job is the i-th submitted)
    expected = {f"[job {job.id} task {rules.root_task_id(job.id, i)}] working on {x}" for i, x in enumerate("ab")}
    records = [r for r in caplog.records if r.name == "taskfleet.task"]
    assert {r.getMessage() for r in records} == expected
    assert {getattr(r, "job_id", None) for r in records} == {job.id}
