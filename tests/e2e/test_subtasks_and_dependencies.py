"""Behaviour 2: subtasks become visible on success; dependencies wait for whole subtrees; clusters."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.workflows import FanOut, Tree
from tests.support.observe import executions
from tests.support.waits import job_done, wait_until


def test_dependants_wait_for_the_whole_subtree_and_may_run_on_another_cluster(client, cluster, runners, tmp_path: Path):
    other = client.clusters().create("other").slug
    runners.start(cluster, "Tree", "Parent", "Sleepy")
    runners.start(cluster, "Sleepy")
    runners.start(other, "OtherNoop")
    job = client.jobs().submit("tree", Tree(other), cluster=cluster)
    assert wait_until(job_done(client, job), timeout=60, what="tree job").state == "COMPLETED"

    runs = executions(tmp_path)
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for e in runs:
        first.setdefault(e["label"], e["t"])
        last[e["label"]] = e["t"]
    # A's subtasks ran after A was computed (they did not exist before A returned)
    assert first["A1"] > last["A"] and first["A2"] > last["A"]
    # B depends on A, and A is completed only when A1 and A2 are: B started after both ended
    assert first["B"] >= max(last["A1"], last["A2"])
    # C ran on the other cluster's runner, after B
    c = next(e for e in runs if e["label"] == "C")
    assert first["C"] >= last["B"]
    assert c["pid"] not in {e["pid"] for e in runs if e["label"] != "C"}
    tasks = {t.display: t for t in client.jobs().tasks(job)}
    assert tasks["OtherNoop"].cluster == other
    assert all(t.state == "COMPUTED" and t.completed for t in tasks.values())
    # The job completed only after its last task: its finish time is not before C's
    assert len(runs) == 1 + 1 + 2 * 2 + 2 + 1  # root, A, A1/A2 (start+end), B (start+end), C


def test_fan_out_with_fan_in_over_the_latch_bucket_size(client, cluster, runners, tmp_path: Path):
    # 150 subtasks: over 100, so the completion counters are split into bucket items
    runners.start(cluster, "FanOut", "Noop", "OtherNoop")
    runners.start(cluster, "Noop", "OtherNoop")
    job = client.jobs().submit("fan", FanOut("f", 150, ""), cluster=cluster)
    assert wait_until(job_done(client, job), timeout=120, what="fan-out job").state == "COMPLETED"
    runs = executions(tmp_path)
    labels = [e["label"] for e in runs]
    assert sorted(labels) == sorted(["f", "f.fanin", *[f"f.{i}" for i in range(150)]])
    fan_in = next(e for e in runs if e["label"] == "f.fanin")
    assert fan_in["t"] >= max(e["t"] for e in runs if e["label"].startswith("f.") and e["label"] != "f.fanin")
    tasks = client.jobs().tasks(job)
    assert len(tasks) == 152
    fanin_task = next(t for t in tasks if t.name == "OtherNoop")
    assert len(fanin_task.depends_on) == 150
