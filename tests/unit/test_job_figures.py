"""The pure parts of job statistics and progress: what a finished task adds, and how a job's figures are
summed from its stats buckets (orchestrator/stats.py)."""

from __future__ import annotations

import pytest
from taskfleet import ExecutionContext, TaskValidationError
from taskfleet.task import CurrentTask, JobRef
from taskfleet_functions.orchestrator.stats import LABELS_PER_WRITE, finish_record, summarize

TASK = {
    "task_id": "t",
    "job_id": "j",
    "parent_id": "p",
    "index": 205,
    "state": "COMPUTED",
    "started_at": 1_000,
    "finished_at": 1_250,
    "compute_prev_ms": 40,
    "children": 3,
    "progress": [["", 1, 1], ["items", 10, 7]],
}


def test_a_finished_task_adds_its_state_compute_time_subtasks_and_progress_to_its_bucket():
    record = finish_record(TASK)
    assert record is not None
    assert (record.group, record.bucket, record.member, record.stop) == ("p", 2, 205, 1_250)
    assert record.attempt_code == 5  # index 205 -> 5 in its bucket, attempt 0
    ((seen, counters),) = record.writes
    assert seen == "seen"
    assert counters == {
        "n#COMPUTED": 1,
        "compute_ms": 290,  # 40 of earlier attempts + 250 of the last one
        "created": 3,
        "pt#": 1,
        "pd#": 1,
        "pt#items": 10,
        "pd#items": 7,
    }


@pytest.mark.parametrize("state", ["QUEUED", "RUNNING"])
def test_a_task_not_finished_adds_nothing(state):
    assert finish_record({**TASK, "state": state}) is None


def test_a_skipped_task_has_no_compute_time_of_its_own_and_a_root_groups_under_root():
    record = finish_record({**TASK, "state": "SKIPPED", "parent_id": None, "index": 3})
    assert record is not None and record.group == "root" and record.bucket == 0
    assert record.writes[0][1]["compute_ms"] == 40 and "created" not in record.writes[0][1]


def test_many_labels_go_in_several_writes_each_with_its_own_seen_set():
    labels = [[f"l{i}", i, i] for i in range(LABELS_PER_WRITE * 2 + 1)]
    record = finish_record({**TASK, "progress": labels})
    assert record is not None
    assert [seen for seen, _ in record.writes] == ["seen", "seen_1", "seen_2"]
    assert "n#COMPUTED" in record.writes[0][1] and "n#COMPUTED" not in record.writes[1][1]
    assert sum(len(c) for _, c in record.writes) == 3 + 2 * len(labels)


def test_a_jobs_figures_are_the_sum_of_its_buckets():
    job = {"job_id": "j", "roots": 2, "state": "COMPLETED", "started_at": 1_000, "finished_at": 5_000}
    buckets = [
        {"n#COMPUTED": 2, "compute_ms": 600, "created": 5, "last_stop": 3_000, "pt#": 2, "pd#": 2},
        {"n#COMPUTED": 3, "n#FAILED_OPTIONAL": 1, "compute_ms": 400, "last_stop": 4_000, "pt#x": 4, "pd#x": 1},
        {"n#SKIPPED": 1, "last_stop": 3_500},
    ]
    figures = summarize(job, buckets, now=9_999)
    assert figures["progress"] == [{"label": None, "total": 2, "done": 2}, {"label": "x", "total": 4, "done": 1}]
    stats = figures["execution_stats"]
    assert stats["total_tasks"] == 7
    assert stats["tasks_by_state"] == {"COMPUTED": 5, "FAILED_OPTIONAL": 1, "SKIPPED": 1}
    assert (stats["compute_time_ms"], stats["elapsed_time_ms"], stats["parallelism"]) == (1_000, 3_000, 0.3333)
    assert stats["first_task_started_at"] == "1970-01-01T00:00:01.000Z"
    assert stats["last_task_stopped_at"] == "1970-01-01T00:00:04.000Z"


def test_tasks_not_finished_count_as_queued_and_an_active_jobs_elapsed_time_runs_to_now():
    job = {"job_id": "j", "roots": 1, "state": "RUNNING", "started_at": 1_000}
    figures = summarize(job, [{"n#COMPUTED": 1, "created": 4, "compute_ms": 10, "last_stop": 2_000}], now=3_000)
    stats = figures["execution_stats"]
    assert stats["tasks_by_state"] == {"QUEUED": 4, "COMPUTED": 1}
    assert stats["elapsed_time_ms"] == 2_000


def test_a_bucket_emptied_by_a_job_retry_does_not_set_the_last_stop():
    job = {"job_id": "j", "roots": 1, "state": "RUNNING", "started_at": 1_000}
    figures = summarize(job, [{"n#FAILED": 0, "compute_ms": 0, "last_stop": 2_000}], now=3_000)
    assert figures["execution_stats"]["last_task_stopped_at"] is None
    assert figures["execution_stats"]["tasks_by_state"] == {"QUEUED": 1}


def _context() -> ExecutionContext:
    return ExecutionContext(CurrentTask("t", JobRef("j", "n"), ("T", "v0.0"), 0, 1, None, "c"))


def test_progress_indicators_count_per_label_and_travel_as_the_report_carries_them():
    context = _context()
    context.progress("download").add(10)
    context.progress("download").done(4)
    context.progress().add(1)
    assert context.reported_progress == [
        {"label": "download", "total": 10, "done": 4},
        {"label": None, "total": 1, "done": 0},
    ]


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_a_progress_count_must_be_a_non_negative_int(bad):
    with pytest.raises(TaskValidationError, match="non-negative int"):
        _context().progress("x").add(bad)


def test_progress_labels_are_limited_in_length_and_number():
    context = _context()
    with pytest.raises(TaskValidationError, match="at most 100"):
        context.progress("x" * 101)
    for i in range(1_000):
        context.progress(f"l{i}")
    with pytest.raises(TaskValidationError, match="at most 1000 progress labels"):
        context.progress("one-more")
    with pytest.raises(TaskValidationError, match="non-empty str"):
        context.progress("")
