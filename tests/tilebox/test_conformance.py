"""The unmodified Tilebox SDK (tilebox-workflows 0.66.0, transport="http1": Connect over HTTP/1.1) against the
local stack: clusters, jobs, runners with dependencies, fan-out, routing, versions, retries, optional tasks,
progress and displays, keys; and one job served by a taskfleet runner and a Tilebox runner together.

Each test runs a scenario (scenario.py) in build/tilebox-venv and checks what the Tilebox SDK saw (its JSON
line), then checks the same through taskfleet's own SDK. `make tilebox` builds the venv.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from taskfleet import NotFoundError

from tests.conftest import LEASE_SECONDS
from tests.support.observe import executions
from tests.support.waits import job_done, wait_until
from tests.tilebox import fleet_tasks
from tests.tilebox.conftest import (
    HERE,
    TileboxRunner,
    make_key,
    run_scenario,
    run_tilebox,
    scenario_result,
    start_tilebox_runner,
)

VERSIONED = "tilebox.com/conformance/Versioned"


@dataclass
class Conformance:
    """One test's setting: the stack, an admin key, the test's cluster, a runner key for it, and the directory
    the tasks write to (executions.log)."""

    stack: Any
    admin_token: str
    cluster: str
    runner_token: str
    out: Path

    def run(self, name: str, *args: str, timeout: float = 120) -> dict[str, Any]:
        """scenario.py `name` on the test's cluster, with its runner key; its JSON line."""
        return run_scenario(
            name,
            "--cluster",
            self.cluster,
            "--runner-token",
            self.runner_token,
            *args,
            url=self.stack.url,
            token=self.admin_token,
            out=self.out,
            timeout=timeout,
        )

    def tasks(self, job_id: str) -> dict[str, Any]:
        """taskfleet's view of the job's tasks, by id."""
        return {t.id: t for t in self.stack.client().jobs().tasks(job_id)}


@pytest.fixture
def tb(stack: Any, admin_token: str, cluster: str, tilebox_python: Path, tmp_path: Path) -> Conformance:
    return Conformance(stack, admin_token, cluster, make_key(stack, "runner", cluster), tmp_path)


@pytest.fixture
def runner_token(stack: Any, cluster: str) -> str:
    """A runner key for the test's cluster."""
    return make_key(stack, "runner", cluster)


def labels(executions: list[dict[str, Any]]) -> list[str]:
    return [e["label"] for e in executions]


def by_label(executions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["label"]: e for e in executions}


def tf_states(stats: Any) -> dict[str, int]:
    return {str(state): count for state, count in stats.tasks_by_state.items() if count}


def progress_set(progress: list[Any]) -> set[tuple[str | None, int, int]]:
    return {
        (p["label"], p["total"], p["done"]) if isinstance(p, dict) else (p.label, p.total, p.done) for p in progress
    }


# --- the scaffolding itself ---------------------------------------------------------------------------------


def test_the_scenario_script_runs_under_the_tilebox_venv(tilebox_python: Path) -> None:
    done = run_tilebox("scenario.py", "--help", url="http://127.0.0.1:9", token="unused", timeout=60)
    assert done.returncode == 0, done.stderr
    for name in ("clusters", "jobs", "dependencies", "fanout", "routing", "versions", "progress", "bad_token"):
        assert name in done.stdout


# --- clusters and jobs (no runner) --------------------------------------------------------------------------


def test_clusters_are_created_found_listed_updated_and_deleted(tb: Conformance, stack: Any) -> None:
    r = tb.run("clusters")

    created = r["created"]
    assert created["display_name"].startswith("Tilebox conformance")
    assert (created["description"], created["deletable"]) == ("made by the Tilebox SDK", True)
    assert created["slug"] and created["slug"] == created["slug"].lower()
    assert r["found"] == created
    assert r["default"]["slug"] == "default" and r["default"]["deletable"] is False  # find("") is the default
    assert r["explicit"]["slug"].startswith("tb-explicit-")
    assert {created["slug"], "default", r["explicit"]["slug"]} <= set(r["all"])
    # an update changes what it names and leaves the rest alone
    assert r["updated_name"]["display_name"].startswith("renamed")
    assert r["updated_name"]["description"] == "made by the Tilebox SDK"
    assert r["updated_description"]["display_name"] == r["updated_name"]["display_name"]
    assert r["updated_description"]["description"] == "changed description"
    assert r["after_update"] == r["updated_description"]
    assert r["updated_description"]["slug"] == created["slug"]
    # delete, and what is not there
    assert r["find_deleted_error"] == "NotFoundError"
    assert r["find_nope_error"] == "NotFoundError"
    assert r["delete_default_error"] is not None
    assert r["explicit"]["slug"] not in r["all_after_delete"] and "default" in r["all_after_delete"]

    # the same through taskfleet's SDK
    clusters = stack.client().clusters()
    kept = clusters.find(created["slug"])
    assert (kept.name, kept.description) == (r["updated_name"]["display_name"], "changed description")
    with pytest.raises(NotFoundError):
        clusters.find(r["explicit"]["slug"])
    assert clusters.find("default").deletable is False


def test_jobs_are_submitted_found_queried_canceled_and_retried(tb: Conformance, stack: Any) -> None:
    r = tb.run("jobs", "--n", "5")

    two = r["two_roots"]
    assert two["state"] == "SUBMITTED" and two["name"] == f"{r['tag']}-two-roots"
    assert not two["submitted_at"].startswith("1970")
    # the job's trace parent is the one the SDK submitted (cancel and retry continue its trace)
    assert r["sent_trace_parent"].startswith("00-")
    for found in (two, r["found"], r["found_by_str"]):
        assert (found["id"], found["name"], found["state"]) == (two["id"], two["name"], "SUBMITTED")
        assert found["trace_parent"] == r["sent_trace_parent"]
    batch = [j["id"] for j in r["batch"]]
    everything = {two["id"], *batch}
    assert len(everything) == 6

    # queries: fuzzy case-insensitive name, [start, end) and (start, end] intervals, pages, states
    assert set(r["by_name"]) == everything and len(r["by_name"]) == len(everything)
    assert r["by_name_pages"] >= 1
    assert set(r["interval_half_open"]) == set(batch[:-1])
    assert set(r["interval_start_exclusive"]) == set(batch[1:])
    assert set(r["interval_wide"]) == everything
    pages = r["small_pages"]
    flat = [job_id for page in pages for job_id in page]
    assert len(pages) >= 3 and all(len(page) <= 2 for page in pages), pages
    assert len(flat) == len(set(flat)) and set(flat) == everything
    assert r["canceled"]["state"] == "CANCELED"
    assert r["by_state_canceled"] == [batch[0]]
    assert set(r["by_state_submitted"]) == everything - {batch[0]}
    # retry resumes a canceled job
    assert isinstance(r["retry_canceled"], int) and r["retry_canceled"] >= 0
    assert r["after_retry"]["state"] not in ("CANCELED", "FAILED", "COMPLETED")
    assert set(r["final_states"].values()) == {"CANCELED"}
    assert r["find_unknown_error"] == "NotFoundError"

    # the same through taskfleet's SDK: one job, two roots, one on the default cluster, one on the test's
    jobs = stack.client().jobs()
    job = jobs.find(two["id"])
    assert (job.name, job.state, job.root_tasks) == (two["name"], "CANCELED", 2)
    assert sorted(t.cluster for t in jobs.tasks(two["id"])) == sorted(["default", tb.cluster])
    assert {jobs.find(job_id).state for job_id in batch} == {"CANCELED"}
    assert {j.id for j in jobs.query(name=r["tag"])} == everything


# --- runners ------------------------------------------------------------------------------------------------


def test_dependencies_order_the_tasks_and_a_dependency_covers_the_subtree(tb: Conformance, stack: Any) -> None:
    r = tb.run("dependencies")

    job = r["job"]
    assert job["state"] == "COMPLETED"
    order = labels(r["executions"])
    assert sorted(order) == sorted(["root", "first", "first.0", "first.1", "second", "third", "last"])
    at = {label: order.index(label) for label in order}
    # second and third wait for first's whole subtree; last for both
    for later in ("second", "third"):
        assert at[later] > max(at["first"], at["first.0"], at["first.1"])
    assert at["last"] > max(at["second"], at["third"])
    stats = job["execution_stats"]
    assert (stats["total_tasks"], stats["tasks_by_state"]) == (7, {"COMPUTED": 7})
    assert stats["first_task_started_at"] and stats["last_task_stopped_at"]

    # taskfleet's view: the same task ids, and the dependencies as submitted
    tasks = tb.tasks(job["id"])
    ids = {e["label"]: e["task_id"] for e in r["executions"]}
    assert set(tasks) == set(ids.values())
    assert tasks[ids["second"]].depends_on == [ids["first"]]
    assert sorted(tasks[ids["last"]].depends_on) == sorted([ids["second"], ids["third"]])
    assert tasks[ids["first.0"]].parent_id == ids["first"]
    tf_job = stack.client().jobs().find(job["id"])
    assert (tf_job.state, tf_job.execution_stats.total_tasks) == ("COMPLETED", 7)


def test_a_fan_out_runs_every_square_before_the_sum(tb: Conformance) -> None:
    n = 12
    r = tb.run("fanout", "--n", str(n))

    assert r["job"]["state"] == "COMPLETED"
    runs = by_label(r["executions"])
    squares = [f"square-{i}" for i in range(1, n + 1)]
    assert Counter(labels(r["executions"])) == Counter(["sum-of-squares", "sum", *squares])
    assert runs["sum"]["result"] == r["expected_sum"]
    assert runs["sum"]["t"] >= max(runs[square]["t"] for square in squares)
    assert {runs[f"square-{i}"]["display"] for i in range(1, n + 1)} == {f"Square({i})" for i in range(1, n + 1)}
    stats = r["job"]["execution_stats"]
    assert (stats["total_tasks"], stats["tasks_by_state"]) == (n + 2, {"COMPUTED": n + 2})

    displays = {t.display for t in tb.tasks(r["job"]["id"]).values()}
    assert {f"Square({i})" for i in range(1, n + 1)} | {f"Sum={r['expected_sum']}"} <= displays


def test_a_subtask_routed_to_another_cluster_runs_on_that_clusters_runner(tb: Conformance, stack: Any) -> None:
    other = stack.client().clusters().create("tilebox routing").slug
    other_token = make_key(stack, "runner", other)
    r = tb.run("routing", "--other-cluster", other, "--other-runner-token", other_token)

    assert r["job"]["state"] == "COMPLETED"
    runs = by_label(r["executions"])
    assert {label: e["runner"] for label, e in runs.items()} == {"multi-cluster": "a", "a": "a", "b": "b", "c": "a"}
    assert runs["a"]["t"] <= runs["b"]["t"] <= runs["c"]["t"]  # dependencies cross clusters both ways

    tasks = tb.tasks(r["job"]["id"])
    clusters = {label: tasks[e["task_id"]].cluster for label, e in runs.items()}
    assert clusters == {"multi-cluster": tb.cluster, "a": tb.cluster, "b": other, "c": tb.cluster}


def test_a_runner_with_a_newer_minor_runs_a_task_and_other_majors_or_older_minors_do_not(tb: Conformance) -> None:
    r = tb.run("versions")

    # neither the v2.0 nor the v1.2 runner was handed the v1.3 task
    assert r["executions_before_v15"] == []
    assert r["before_v15"]["state"] == "SUBMITTED"
    assert r["job"]["state"] == "COMPLETED"
    (run,) = r["executions"]
    # the runner got the task under the identifier it registered (its executor looks it up exactly)
    assert (run["name"], run["version"], run["registered"], run["runner"]) == (
        VERSIONED,
        "v1.5",
        [VERSIONED, "v1.5"],
        "v1.5",
    )
    (task,) = tb.tasks(r["job"]["id"]).values()
    assert (task.name, task.state) == (VERSIONED, "COMPUTED")


def test_failures_are_retried_up_to_max_retries_then_fail_the_job_until_jobs_retry(tb: Conformance, stack: Any) -> None:
    r = tb.run("failure_and_retry", timeout=200)

    # a subtask failing twice with max_retries=2 runs three times and the job completes
    recovers = r["recovers"]
    assert recovers["job"]["state"] == "COMPLETED"
    flaky = [e for e in recovers["executions"] if e["label"] == "recovers.flaky"]
    assert [e["retry_count"] for e in flaky] == [0, 1, 2]

    # a root with max_retries=1 that keeps failing: two runs, the job FAILED; jobs().retry() re-queues it
    exhausted = r["exhausted"]
    assert exhausted["job"]["state"] == "FAILED"
    assert [e["retry_count"] for e in exhausted["executions"]] == [0, 1]
    assert exhausted["job"]["execution_stats"]["tasks_by_state"] == {"FAILED": 1}
    assert r["retried"] == 1
    assert r["after_retry"]["state"] not in ("FAILED", "CANCELED", "COMPLETED")
    assert r["fixed"]["job"]["state"] == "COMPLETED"
    assert len(r["fixed"]["executions"]) == 3

    # no retries: failed for good, the error's repr appended to the display
    always = r["always"]
    assert always["job"]["state"] == "FAILED" and len(always["executions"]) == 1
    (task,) = tb.tasks(always["job"]["id"]).values()
    assert task.state == "FAILED"
    assert "RuntimeError('boom in always')" in task.display + str(task.failure or "")
    assert stack.client().jobs().find(r["fixed"]["job"]["id"]).state == "COMPLETED"


def test_optional_tasks_fail_without_failing_the_job_and_skip_the_rest_of_their_subtree(
    tb: Conformance, stack: Any
) -> None:
    r = tb.run("optional")

    optional = r["optional"]
    assert optional["job"]["state"] == "COMPLETED"
    order = labels(optional["executions"])
    assert sorted(order) == sorted(["optional-root", "required", "flaky", "final"])
    assert order.index("final") > max(order.index("required"), order.index("flaky"))
    assert optional["job"]["execution_stats"]["tasks_by_state"] == {"COMPUTED": 3, "FAILED_OPTIONAL": 1}

    nested = r["nested"]
    assert nested["job"]["state"] == "COMPLETED"
    assert sorted(labels(nested["executions"])) == sorted(["pipeline", "optional-processing", "step1", "always-runs"])
    assert nested["job"]["execution_stats"]["tasks_by_state"] == {"COMPUTED": 3, "FAILED_OPTIONAL": 1, "SKIPPED": 1}

    states = {t.name: t.state for t in tb.tasks(nested["job"]["id"]).values()}
    assert states == {
        "Pipeline": "COMPUTED",
        "OptionalProcessing": "COMPUTED",
        "Step1": "FAILED_OPTIONAL",
        "Step2": "SKIPPED",
        "AlwaysRuns": "COMPUTED",
    }
    assert tf_states(stack.client().jobs().find(optional["job"]["id"]).execution_stats) == {
        "COMPUTED": 3,
        "FAILED_OPTIONAL": 1,
    }


def test_progress_indicators_sum_over_the_job_and_tasks_set_their_displays(tb: Conformance, stack: Any) -> None:
    n = 3
    r = tb.run("progress", "--n", str(n))

    expected = {(None, n, n), ("finalize", 1, 1), ("step1", n, n), ("step2", n, n)}
    assert r["submitted"]["progress"] == []
    assert r["job"]["state"] == "COMPLETED"
    assert progress_set(r["job"]["progress"]) == expected
    assert r["job"]["execution_stats"]["total_tasks"] == 3 * n + 8
    displays = {e["label"]: e["display"] for e in r["executions"]}
    assert displays["display-root"] == "Root(3)"
    assert [displays[f"display-{i}"] for i in range(3)] == ["Leaf Nr. 0", "Leaf Nr. 1", "Leaf Nr. 2"]

    assert progress_set(stack.client().jobs().find(r["job"]["id"]).progress) == expected
    assert {"Root(3)", "Leaf Nr. 0", "Leaf Nr. 1", "Leaf Nr. 2"} <= {
        t.display for t in tb.tasks(r["job"]["id"]).values()
    }


def test_bad_and_misused_keys_raise_authentication_errors(tb: Conformance, stack: Any) -> None:
    other = stack.client().clusters().create("tilebox keys").slug
    r = tb.run("bad_token", "--other-cluster", other)

    for check in ("bogus_clusters_all", "bogus_submit", "bogus_runner", "no_token_clusters_all"):
        assert r[check] == "AuthenticationError", (check, r[check])
    assert r["runner_key_submit"] == "AuthenticationError"  # a runner key submits nothing
    assert r["runner_key_own_cluster"] is None  # but finds its own cluster (what client.runner() does)
    assert r["runner_key_other_cluster"] == "AuthenticationError"
    assert stack.client().jobs().query(clusters=[tb.cluster, other]) == []


def test_the_reference_quickstart_runs_with_one_full_key(stack: Any, tilebox_python: Path, tmp_path: Path) -> None:
    """The published quickstart submits and runs with one client: a `full` key (the admin's calls and running
    tasks on every cluster) lets it run as written, but for url, token and transport."""
    token = make_key(stack, "full")
    done = run_tilebox("quickstart.py", url=stack.url, token=token, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr[-4000:]
    (state,) = [line.split() for line in done.stdout.splitlines() if line.startswith("STATE ")]
    assert state[2] == "COMPLETED", done.stderr[-4000:]
    printed = done.stdout + done.stderr  # the SDK's console logging
    assert "Greetings Universe, from the main task!" in printed and "Hello from the subtask!" in printed
    job = stack.client().jobs().find(state[1])
    assert (job.name, job.state, job.execution_stats.total_tasks) == ("parameterized-hello-world", "COMPLETED", 2)
    assert {t.name for t in stack.client().jobs().tasks(job)} == {"HelloWorldTask", "HelloSubtask"}


def test_a_revoked_key_is_refused_at_once(stack: Any, tilebox_python: Path, tmp_path: Path) -> None:
    """A key revoked with `taskfleet keys revoke` stops working for the Tilebox SDK (on the local stack the
    revoking process is the checking one: at once; deployed, within the key cache's 30 s)."""
    script = tmp_path / "list_clusters.py"
    script.write_text(
        "import sys\n"
        "from tilebox.workflows import Client\n"
        "url, token = sys.argv[sys.argv.index('--url') + 1], sys.argv[sys.argv.index('--token') + 1]\n"
        "try:\n"
        "    print('slugs', sorted(c.slug for c in Client(url=url, token=token, transport='http1').clusters().all()))\n"
        "except Exception as err:\n"
        "    print('error', type(err).__name__)\n"
    )
    created = stack.client().keys().create(role="reader", description="revoked in a test")
    before = run_tilebox(script, url=stack.url, token=created["token"], cwd=tmp_path)
    assert "slugs" in before.stdout and "default" in before.stdout, before.stderr[-2000:]
    revoked = subprocess.run(
        [sys.executable, "-m", "taskfleet.cli", "keys", "revoke", created["key_id"], "--url", stack.url],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert revoked.returncode == 0, revoked.stderr
    after = run_tilebox(script, url=stack.url, token=created["token"], cwd=tmp_path)
    assert after.stdout.split() == ["error", "AuthenticationError"], (after.stdout, after.stderr[-2000:])


# --- one job, two SDKs --------------------------------------------------------------------------------------


@pytest.fixture
def fleet_runner(stack: Any, cluster: str, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """taskfleet's own runner on the test's cluster, serving fleet_tasks' MixedFleet and MixedFleetPing."""
    env = {
        **os.environ,
        "TILEBOX_TEST_DIR": str(tmp_path),
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "taskfleet_runner", "--url", stack.url, "--cluster", cluster, "--grace", "5"]
    proc = subprocess.Popen([*command, "fleet_tasks:MixedFleet", "fleet_tasks:MixedFleetPing"], env=env)
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def test_one_job_is_served_by_a_taskfleet_runner_and_a_tilebox_runner_together(
    tb: Conformance, fleet_runner: Any
) -> None:
    n = 3
    r = tb.run("mixed", "--n", str(n))

    assert r["job"]["state"] == "COMPLETED"
    runs = by_label(r["executions"])
    runtimes = {label: e["runtime"] for label, e in runs.items()}
    assert runtimes == {
        "mixed-root": "tilebox",
        "fleet-ping": "taskfleet",
        "mixed-final": "tilebox",
        **{f"fleet-{i}": "taskfleet" for i in range(n)},
        **{f"leaf-{i}": "tilebox" for i in range(n)},
    }
    assert (runs["mixed-final"]["fleet"], runs["mixed-final"]["leaves"]) == (n, n)
    for i in range(n):  # each leaf is the subtask of the taskfleet task that submitted it
        assert runs[f"leaf-{i}"]["parent_id"] == runs[f"fleet-{i}"]["task_id"]
        assert runs[f"leaf-{i}"]["display"] == f"TileboxLeaf({i})"
    assert progress_set(r["job"]["progress"]) == {("mixed", n, n)}
    assert r["job"]["execution_stats"]["tasks_by_state"] == {"COMPUTED": 2 * n + 3}

    tasks = tb.tasks(r["job"]["id"]).values()
    assert {t.state for t in tasks} == {"COMPUTED"}
    assert {f"Fleet({i})" for i in range(n)} | {f"TileboxLeaf({i})" for i in range(n)} <= {t.display for t in tasks}


# --- runners in the background: leases and SIGTERM ----------------------------------------------------------


def start_runner(
    stack: Any, token: str, cluster: str, workdir: Path, started: list[TileboxRunner], *tasks: str
) -> TileboxRunner:
    runner = start_tilebox_runner(url=stack.url, token=token, cluster=cluster, workdir=workdir, tasks=tasks)
    started.append(runner)
    runner.wait_ready()
    return runner


def test_a_tilebox_runner_runs_taskfleet_submitted_tasks_a_slow_one_once_and_stops_on_sigterm(
    stack: Any, cluster: str, runner_token: str, tilebox_runners: list[TileboxRunner], tmp_path: Path
) -> None:
    runner = start_runner(stack, runner_token, cluster, tmp_path, tilebox_runners, "Leaf", "Slow")
    client = stack.client()
    # longer than the lease taskfleet's own runners get on this stack: a Connect claim's lease must outlast it
    slow_seconds = LEASE_SECONDS + 3
    job = client.jobs().submit(
        "from taskfleet", [fleet_tasks.Leaf("leaf"), fleet_tasks.Slow("slow", float(slow_seconds))], cluster=cluster
    )
    done = wait_until(job_done(client, job), timeout=slow_seconds + 60, what="the job on the Tilebox runner")
    assert done.state == "COMPLETED"

    seen = executions(tmp_path)
    assert Counter((e["label"], e.get("phase")) for e in seen) == Counter(
        [("leaf", None), ("slow", "start"), ("slow", "end")]
    )
    slow = next(t for t in client.jobs().tasks(job) if t.name == "Slow")
    assert (slow.state, slow.retry_count, slow.lease_losses) == ("COMPUTED", 0, 0)

    assert runner.stop() == 0
    assert scenario_result(subprocess.CompletedProcess([], 0, runner.stdout, runner.stderr))["stopped"] == "SIGTERM"
    assert "_LeaseRenewer" not in runner.stderr and "lease_renewer" not in runner.stderr
    assert "Failed to export" not in runner.stderr


def test_sigterm_during_a_task_gives_it_back_without_counting_a_retry(
    stack: Any, cluster: str, runner_token: str, tilebox_runners: list[TileboxRunner], tmp_path: Path
) -> None:
    first = start_runner(stack, runner_token, cluster, tmp_path, tilebox_runners, "Gated")
    client = stack.client()
    job = client.jobs().submit("interrupted", fleet_tasks.Gated("g"), cluster=cluster)
    wait_until(lambda: list(tmp_path.glob("started-g-*")), timeout=60, what="the gated task to start")

    # SIGTERM: 2 s of grace, then TaskFailed(was_workflow_error=False): QUEUED again, no retry counted
    assert first.stop() == 0
    (task,) = client.jobs().tasks(job)
    assert (task.state, task.retry_count) == ("QUEUED", 0)
    assert client.jobs().find(job).state not in ("FAILED", "CANCELED", "COMPLETED")

    start_runner(stack, runner_token, cluster, tmp_path, tilebox_runners, "Gated")
    (tmp_path / "gate-g").write_text("open")
    assert wait_until(job_done(client, job), timeout=60, what="the job on the second runner").state == "COMPLETED"
    (task,) = client.jobs().tasks(job)
    assert (task.state, task.retry_count) == ("COMPUTED", 0)


def test_a_killed_tilebox_runner_s_task_runs_again_once_its_key_s_lease_ends(
    stack: Any, cluster: str, tilebox_runners: list[TileboxRunner], tmp_path: Path
) -> None:
    """Crash recovery for Tilebox runners is the lease (never extended over HTTP/1.1): with a runner key of a
    3 s lease, a task whose runner was killed (SIGKILL, no goodbye) is taken over by another runner once the
    lease and the ticket's margin are over, as a lease loss, not a retry."""
    token = make_key(stack, "runner", cluster, lease_seconds=3)
    first = start_runner(stack, token, cluster, tmp_path, tilebox_runners, "Gated")
    client = stack.client()
    job = client.jobs().submit("killed", fleet_tasks.Gated("k"), cluster=cluster)
    wait_until(lambda: list(tmp_path.glob("started-k-*")), timeout=60, what="the gated task to start")
    os.killpg(first.proc.pid, signal.SIGKILL)  # the runner and the renewer it spawned
    first.proc.wait(timeout=10)
    (tmp_path / "gate-k").write_text("open")  # the next attempt runs through

    start_runner(stack, token, cluster, tmp_path, tilebox_runners, "Gated")
    assert wait_until(job_done(client, job), timeout=60, what="the job on the second runner").state == "COMPLETED"
    (task,) = client.jobs().tasks(job)
    assert (task.state, task.retry_count, task.lease_losses) == ("COMPUTED", 0, 1)
    assert len(list(tmp_path.glob("started-k-*"))) == 2  # two processes started it: the killed one and the next
