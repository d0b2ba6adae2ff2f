"""Optional tasks (FAILED_OPTIONAL, SKIPPED), progress indicators and execution stats, with real runners."""

from __future__ import annotations

from pathlib import Path

from taskfleet import JobState, ProgressIndicator, TaskState

from tests.e2e.workflows import CountedFanOut, ManyLabels, WithOptional, WithOptionalBranch, WithOuterOptional
from tests.support.observe import executions, marked, open_gate
from tests.support.waits import job_done, wait_until


def test_an_optional_task_that_fails_after_its_retries_does_not_fail_the_job(client, cluster, runners, tmp_path):
    runners.start(cluster, "WithOptional", "FailTimes", "Noop")
    job = client.jobs().submit("optional", WithOptional("w", failures=5, retries=2), cluster=cluster)
    done = wait_until(job_done(client, job), what="job with a failing optional task")
    assert done.state == JobState.COMPLETED
    labels = [e["label"] for e in executions(tmp_path)]
    # it ran three times (two retries), then its dependant ran anyway
    assert labels.count("w.opt") == 3 and labels.count("w.after") == 1
    assert labels.index("w.after") > max(i for i, label in enumerate(labels) if label == "w.opt")
    states = {t.name: t.state for t in client.jobs().tasks(job)}
    assert states == {"WithOptional": "COMPUTED", "FailTimes": TaskState.FAILED_OPTIONAL, "Noop": "COMPUTED"}
    assert done.execution_stats.tasks_by_state == {
        TaskState.COMPUTED: 2,
        TaskState.FAILED_OPTIONAL: 1,
    }


def test_an_optional_task_that_recovers_within_its_retries_is_computed(client, cluster, runners, tmp_path):
    runners.start(cluster, "WithOptional", "FailTimes", "Noop")
    job = client.jobs().submit("optional-ok", WithOptional("r", failures=1, retries=2), cluster=cluster)
    assert wait_until(job_done(client, job), what="job").state == "COMPLETED"
    flaky = next(t for t in client.jobs().tasks(job) if t.name == "FailTimes")
    assert (flaky.state, flaky.retry_count, flaky.optional) == ("COMPUTED", 1, True)


def test_a_failure_inside_an_optional_branch_skips_the_rest_of_it_and_the_job_goes_on(
    client, cluster, runners, tmp_path: Path
):
    # two runners: one holds the gated task of the branch while the other runs its failing sibling
    tasks = ("WithOptionalBranch", "OptionalBranch", "GatedSubmitter", "FailAfterGate", "Noop")
    runners.start(cluster, *tasks)
    runners.start(cluster, *tasks)
    job = client.jobs().submit("branch", WithOptionalBranch("j"), cluster=cluster)
    wait_until(lambda: marked(tmp_path, "j.branch.gated-started"), what="the gated task to run")

    # When the failing task of the branch fails: the two tasks queued behind it are skipped at once
    def failed_and_skipped():
        tasks_now = client.jobs().tasks(job)
        failing = [t.state for t in tasks_now if t.name == "FailAfterGate"]
        behind = [t.state for t in tasks_now if t.name == "Noop" and t.parent_id == _branch(tasks_now).id]
        return failing == ["FAILED_OPTIONAL"] and behind == ["SKIPPED", "SKIPPED"]

    wait_until(failed_and_skipped, what="the optional failure and the skipped tasks behind it")
    assert client.jobs().find(job).state == JobState.RUNNING
    # And what the still running task submits once let through is skipped too, when its tickets come up
    open_gate(tmp_path, "j.branch.gated")
    done = wait_until(job_done(client, job), what="the job to complete")
    assert done.state == JobState.COMPLETED
    final = client.jobs().tasks(job)
    gated = next(t for t in final if t.name == "GatedSubmitter")
    children = [t for t in final if t.parent_id == gated.id]
    assert gated.state == "COMPUTED" and [t.state for t in children] == ["SKIPPED", "SKIPPED"]
    assert all(t.optional for t in final if t.parent_id in (gated.id, _branch(final).id))
    ran = {e["label"] for e in executions(tmp_path)}
    assert ran == {"j", "j.required", "j.branch", "j.branch.gated", "j.branch.fail", "j.final"}
    assert done.execution_stats.tasks_by_state == {
        TaskState.COMPUTED: 5,
        TaskState.FAILED_OPTIONAL: 1,
        TaskState.SKIPPED: 4,
    }
    assert done.execution_stats.total_tasks == 10


def _branch(tasks):
    return next(t for t in tasks if t.name == "OptionalBranch")


def test_progress_sums_over_tasks_and_a_retried_task_counts_once(client, cluster, runners, tmp_path):
    runners.start(cluster, "CountedFanOut", "Counted")
    job = client.jobs().submit("progress", CountedFanOut(n=3, items=10, failures=2), cluster=cluster)
    done = wait_until(job_done(client, job), what="progress job")
    assert done.state == "COMPLETED"
    # c0 failed twice after counting 3 of 10 done, then succeeded: only its last attempt counts
    assert [e["label"] for e in executions(tmp_path)].count("c0") == 3
    assert done.progress == [ProgressIndicator(None, 3, 3), ProgressIndicator("items", 30, 30)]
    assert {t.display: t.progress for t in client.jobs().tasks(job)}["Counted"]  # each task keeps its own


def test_a_failed_tasks_progress_counts_and_a_job_retry_replaces_it(client, cluster, runners, tmp_path):
    (tmp_path / "broken-c1").write_text("yes")
    runners.start(cluster, "CountedFanOut", "Counted")
    job = client.jobs().submit("progress-retry", CountedFanOut(n=2, items=10), cluster=cluster)
    failed = wait_until(job_done(client, job), what="failed job")
    assert failed.state == "FAILED"
    wait_until(
        lambda: client.jobs().find(job).execution_stats.tasks_by_state.get(TaskState.COMPUTED) == 2,
        what="the healthy sibling to finish",
    )
    failed = client.jobs().find(job)
    assert ProgressIndicator("items", 20, 13) in failed.progress
    assert failed.execution_stats.tasks_by_state == {TaskState.COMPUTED: 2, TaskState.FAILED: 1}
    (tmp_path / "broken-c1").unlink()
    assert client.jobs().retry(job) == 1
    done = wait_until(job_done(client, job), what="retried job")
    assert done.state == "COMPLETED"
    assert ProgressIndicator("items", 20, 20) in done.progress
    assert done.execution_stats.tasks_by_state == {TaskState.COMPUTED: 3}


def test_execution_stats_of_a_finished_job(client, cluster, runners, tmp_path):
    runners.start(cluster, "CountedFanOut", "Counted")
    runners.start(cluster, "CountedFanOut", "Counted")
    job = client.jobs().submit("stats", CountedFanOut(n=6, items=2, failures=1), cluster=cluster)
    done = wait_until(job_done(client, job), what="stats job")
    stats = done.execution_stats
    assert stats.total_tasks == 7
    assert stats.tasks_by_state == {TaskState.COMPUTED: 7}
    assert stats.first_task_started_at is not None and stats.last_task_stopped_at is not None
    assert stats.first_task_started_at <= stats.last_task_stopped_at
    assert stats.elapsed_time == stats.last_task_stopped_at - stats.first_task_started_at
    # 8 executions (one retry), each with some compute time; parallelism is compute over elapsed
    assert stats.compute_time.total_seconds() > 0
    assert abs(stats.parallelism - stats.compute_time / stats.elapsed_time) < 0.01
    tasks = client.jobs().tasks(job)
    assert stats.first_task_started_at == min(_dt(t.started_at) for t in tasks if t.name == "CountedFanOut")


def _dt(text):
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_an_optional_task_inside_an_optional_subtree_bounds_its_own_failure(client, cluster, runners, tmp_path):
    # outer (optional) -> inner (optional, fails below) -> then after-inner; inner's failure skips inner's rest only
    runners.start(cluster, "WithOuterOptional", "OuterOptional", "InnerOptional", "Fail", "Noop")
    job = client.jobs().submit("nested-optional", WithOuterOptional(), cluster=cluster)
    assert wait_until(job_done(client, job), what="nested optional job").state == "COMPLETED"
    ran = {e["label"] for e in executions(tmp_path)}
    assert "outer.after-inner" in ran and "outer.inner.behind" not in ran
    states = {t.display: t.state for t in client.jobs().tasks(job)}
    assert states["Fail"] == "FAILED_OPTIONAL"
    assert sorted(t.state for t in client.jobs().tasks(job) if t.name == "Noop") == ["COMPUTED", "SKIPPED"]


def test_a_task_with_many_long_progress_labels_is_counted_with_them(client, cluster, runners):
    runners.start(cluster, "ManyLabels")
    job = client.jobs().submit("labels", ManyLabels(80), cluster=cluster)
    done = wait_until(job_done(client, job), what="many labels job")
    assert done.state == "COMPLETED"
    assert len(done.progress) == 80 and {(p.total, p.done) for p in done.progress} == {(2, 1)}
