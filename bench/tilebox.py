"""One workload, two runtimes: Tilebox SDK runners on taskfleet's Connect endpoint beside taskfleet's own runners.

    python -m bench.tilebox                          # 200 no-op leaves under one root, 1 runner (~1-2 minutes)
    python -m bench.tilebox --tasks 10 --json X      # what CI runs (tests/bench)

Run from the repository root; needs build/tilebox-venv (`make tilebox`). Prints a table and writes
bench/tilebox-results.json.

On one local stack, the same job (a root that submits N no-op leaves in one fan-out, the same task names and
versions on both sides) runs twice, each mode on a cluster of its own:

- tilebox: submitted with the Tilebox SDK (tilebox-workflows 0.66.0, transport="http1"), run by R Tilebox runners
  (`run_all()` in a loop, on a runner key). A Tilebox runner asks NextTask for one task at a time and reports the
  task it computed in the same call; the server receives the SQS ticket and claims for it
  (functions/taskfleet_functions/connect/runners.py).
- taskfleet: submitted with taskfleet's SDK, run by R `python -m taskfleet_runner` processes, which receive their
  tickets themselves and batch claims and reports.

For each mode: the wall time from the job's first claim (execution_stats.first_task_started_at) to its
finished_at (COMPLETED), tasks/s over it, and per task the AWS requests where they arrive (the emulator's counts,
reset before each run: DynamoDB and SQS apart), DynamoDB write units (bench/cost.py's sizing), and the calls to
the orchestrator's API (the local API's counts, by route; a Tilebox runner's calls include the SDK's OTLP exports
to /v1/...). The benchmark's own waiting for the job (one GET /jobs and one GetItem per poll) is taken out. The
runners warm up on a small job first; idle polls between the reset and the first claim, and after the last
report until the poll sees the job done, are included (a second or so of idle polling). Sweeps of the stack's
sweeper during a run are included too (one every 10 s, as in bench/run.py).

NextTask latency: each Tilebox runner times its NextTask calls (the SDK's TaskService.next_task, wrapped in the
runner's process: the HTTP round trip as the runner sees it) and hands the timings back. p50/p95 are over the
calls of the measured job that reported a computed task and got the next one in return: the steady hand-off (a
report and a claim). A call made while idle waits up to a second for a ticket (connect/runners.py, RECEIVE_WAIT),
so the call that brought the job's first task (begun before the job was submitted) and the final idle answer are
counted apart, not in the percentiles.

The figures are the emulator's, not AWS's: moto serializes DynamoDB requests (the emulator's middleware), every
call is a loopback HTTP request to one process on a shared machine, and the Connect handler runs in-process.
Compare the modes with each other, not with a deployment.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from taskfleet import ExecutionContext, Task

from bench import cost
from bench.run import ROOT, _fmt, percentile

TILEBOX_PYTHON = ROOT / "build" / "tilebox-venv" / "bin" / "python"
TILEBOX_SDK = "tilebox-workflows==0.66.0"
FANOUT_ID = ("bench/tilebox/FanOut", "v1.0")
LEAF_ID = ("bench/tilebox/Leaf", "v1.0")
POLL_SECONDS = 0.25  # how often the benchmark looks at the job (its polls are taken out of the counts)
JOB_TIMEOUT = 900.0
# Tilebox's own configuration and .venv's interpreter settings must not reach the Tilebox venv's python
_DROPPED_ENV = (
    "TILEBOX_API_URL",
    "TILEBOX_API_KEY",
    "TILEBOX_RUNTIME_DIR",
    "TILEBOX_RUNTIME_TOKEN",
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "PYTHONSTARTUP",
    "PYTHONSAFEPATH",
)


# --- the workload, taskfleet's side (the Tilebox side is in TILEBOX_SCRIPT, with the same identifiers) ---------


class FanOut(Task):
    n: int

    @staticmethod
    def identifier() -> tuple[str, str]:
        return FANOUT_ID

    def execute(self, context: ExecutionContext) -> None:
        context.submit_subtasks([Leaf(i) for i in range(self.n)])


class Leaf(Task):
    i: int

    @staticmethod
    def identifier() -> tuple[str, str]:
        return LEAF_ID

    def execute(self, context: ExecutionContext) -> None:
        pass


# Runs in build/tilebox-venv (python -c): `submit URL TOKEN CLUSTER N` prints {"ready": true}, waits for a line
# on stdin, submits and prints {"job": id}; `runner URL TOKEN CLUSTER STOP OUT` prints {"ready": true} after its
# first run_all(), loops run_all() until the file STOP exists, then writes its NextTask timings to OUT.
TILEBOX_SCRIPT = f"""
import json, os, sys, time
from tilebox.workflows import Client, ExecutionContext, Task
from tilebox.workflows.runner.task_service import TaskService


class FanOut(Task):
    n: int

    @staticmethod
    def identifier():
        return {FANOUT_ID!r}

    def execute(self, context: ExecutionContext) -> None:
        context.submit_subtasks([Leaf(i) for i in range(self.n)])


class Leaf(Task):
    i: int

    @staticmethod
    def identifier():
        return {LEAF_ID!r}

    def execute(self, context: ExecutionContext) -> None:
        pass


def submit(url, token, cluster, n):
    jobs = Client(url=url, token=token, transport="http1").jobs()
    print(json.dumps({{"ready": True}}), flush=True)
    sys.stdin.readline()
    job = jobs.submit("tilebox-bench", FanOut(int(n)), cluster=cluster)
    print(json.dumps({{"job": str(job.id)}}), flush=True)


def runner(url, token, cluster, stop, out):
    calls = []
    next_task = TaskService.next_task

    def timed(self, task_to_run=None, computed_task=None):
        at, started = time.time(), time.perf_counter()
        work = next_task(self, task_to_run=task_to_run, computed_task=computed_task)
        calls.append([at, time.perf_counter() - started, type(work).__name__, computed_task is not None])
        return work

    TaskService.next_task = timed
    each = Client(url=url, token=token, transport="http1").runner(cluster=cluster, tasks=[FanOut, Leaf])
    each.run_all()
    print(json.dumps({{"ready": True}}), flush=True)
    while not os.path.exists(stop):
        each.run_all()
        time.sleep(0.1)
    with open(out, "w") as f:
        json.dump(calls, f)


if __name__ == "__main__":
    {{"submit": submit, "runner": runner}}[sys.argv[1]](*sys.argv[2:])
"""


# --- measuring one mode ---------------------------------------------------------------------------------------


@dataclass
class Run:
    mode: str
    job_state: str
    tasks: int
    tasks_by_state: dict[str, int]
    wall_s: float  # first claim -> job finished
    submit_to_done_s: float
    requests: dict[str, int]  # emulator and local API, the benchmark's own polls taken out
    write_units: float
    sweeps: int
    seen_done_at: float  # when the benchmark's poll saw the job finished (epoch)
    # Tilebox only: the NextTask calls that ended after the reset and began before the job was seen done, each
    # [began (epoch), seconds, answer ("Task", "Idling"), whether it reported a computed task]
    next_task_calls: list[list[Any]] = field(default_factory=list)
    reset_at: float = 0.0  # when the counts were reset (epoch): a call begun before waited for the job, not in p50

    def figures(self) -> dict[str, Any]:
        n = max(self.tasks, 1)
        dynamodb = sum(v for k, v in self.requests.items() if k.startswith("dynamodb:"))
        sqs = sum(v for k, v in self.requests.items() if k.startswith("sqs:"))
        api = {k: v for k, v in self.requests.items() if k.startswith("api:")}
        out: dict[str, Any] = {
            "job_state": self.job_state,
            "tasks": self.tasks,
            "tasks_by_state": self.tasks_by_state,
            "wall_s": round(self.wall_s, 3),
            "submit_to_done_s": round(self.submit_to_done_s, 3),
            "tasks_per_s": round(self.tasks / self.wall_s, 2) if self.wall_s > 0 else None,
            "aws_requests_per_task": round((dynamodb + sqs) / n, 3),
            "dynamodb_requests_per_task": round(dynamodb / n, 3),
            "sqs_requests_per_task": round(sqs / n, 3),
            "write_units_per_task": round(self.write_units / n, 3),
            "api_calls_per_task": round(sum(api.values()) / n, 3),
            "api_calls_by_route_per_task": {k.removeprefix("api:"): round(v / n, 3) for k, v in api.items()},
            "aws_requests_by_action_per_task": {
                k: round(v / n, 3) for k, v in self.requests.items() if not k.startswith("api:")
            },
            "sweeps": self.sweeps,
        }
        if self.next_task_calls:
            handoffs = [
                s * 1000
                for at, s, answer, reported in self.next_task_calls
                if answer == "Task" and reported and at >= self.reset_at
            ]
            if handoffs:
                out["next_task_ms_p50"] = round(percentile(handoffs, 0.5), 1)
                out["next_task_ms_p95"] = round(percentile(handoffs, 0.95), 1)
                out["next_task_ms_max"] = round(max(handoffs), 1)
            out["next_task_calls"] = dict(
                sorted(
                    Counter(
                        f"{'report' if reported else 'ask'}{' (begun before the job)' if at < self.reset_at else ''}"
                        f" -> {'task' if answer == 'Task' else 'idle'}"
                        for at, _, answer, reported in self.next_task_calls
                    ).items()
                )
            )
        return out


def _epoch(value: datetime | str | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.timestamp()


def measure(stack: Any, mode: str, job_id: str, sweeps_before: int) -> Run:
    """Wait for the job (polling it), then read the counts: the caller reset them just before submitting."""
    client = stack.client()
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:
        job = client.jobs().find(job_id)
        if job.state in ("COMPLETED", "FAILED", "CANCELED"):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{mode}: job {job_id} still {job.state} after {JOB_TIMEOUT} s")
        time.sleep(POLL_SECONDS)
    seen_done_at = time.time()
    requests = stack.request_counts()
    writes = stack.emulator.writes_per_item()
    stack.emulator.track_writes(False)
    sweeps = stack.sweeps - sweeps_before
    polls = requests.pop("api:GET /jobs", 0)  # the benchmark's own waiting: one job read (one GetItem) each
    requests["dynamodb:GetItem"] = requests.get("dynamodb:GetItem", 0) - polls
    requests = {k: v for k, v in requests.items() if v}
    stats = job.execution_stats
    tasks = stats.total_tasks
    first = _epoch(stats.first_task_started_at)
    done = _epoch(job.finished_at) or _epoch(stats.last_task_stopped_at)
    submitted = _epoch(job.submitted_at)
    units = cost.model(requests, writes, cost.item_sizes(stack), max(tasks, 1))["write_units_per_task"] * tasks
    return Run(
        mode=mode,
        job_state=str(job.state),
        tasks=tasks,
        tasks_by_state={str(k): v for k, v in stats.tasks_by_state.items() if v},
        wall_s=(done - first) if done and first else 0.0,
        submit_to_done_s=(done - submitted) if done and submitted else 0.0,
        requests=requests,
        write_units=units,
        sweeps=sweeps,
        seen_done_at=seen_done_at,
    )


def reset_counts(stack: Any) -> int:
    stack.emulator.track_writes(True)
    stack.emulator.reset_counts()
    stack.api.reset_counts()
    return int(stack.sweeps)


def wait_job(client: Any, job: Any, timeout: float = 300) -> None:
    done = client.jobs().wait(job, timeout=timeout)
    if done.state != "COMPLETED":
        raise RuntimeError(f"warm-up job ended {done.state}: {done.failure}")


# --- Tilebox processes ----------------------------------------------------------------------------------------


def tilebox_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def tilebox(args: list[str], workdir: Path, name: str, stdin: bool = False) -> subprocess.Popen[str]:
    """The Tilebox script in build/tilebox-venv, in its own process group (the SDK's lease renewer is a child);
    stderr to a file in workdir."""
    with (workdir / f"{name}.err").open("w") as err:
        return subprocess.Popen(
            [str(TILEBOX_PYTHON), "-c", TILEBOX_SCRIPT, *args],
            cwd=workdir,
            env=tilebox_env(),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        )


def read_json_line(proc: subprocess.Popen[str], key: str, workdir: Path, name: str, timeout: float = 120) -> Any:
    """The value of `key` in the next JSON line on the process's stdout that has it; an error with the process's
    stderr if it ends, or stays silent for `timeout` seconds, first."""
    found: queue.Queue[tuple[bool, Any]] = queue.Queue()

    def scan() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                parsed = json.loads(line) if line.startswith("{") else None
            except ValueError:
                parsed = None
            if isinstance(parsed, dict) and key in parsed:
                found.put((True, parsed[key]))
                return
        found.put((False, None))

    threading.Thread(target=scan, name=f"{name}-stdout", daemon=True).start()
    try:
        ok, value = found.get(timeout=timeout)
    except queue.Empty:
        ok, value = False, None
    if not ok:
        stderr = (workdir / f"{name}.err").read_text(errors="replace")[-4000:]
        raise RuntimeError(f"{name} gave no {key!r} in {timeout} s (exit {proc.poll()}):\n{stderr}")
    return value


def stop_group(proc: subprocess.Popen[str], timeout: float = 60) -> None:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the lease renewer it left behind, if any


def run_tilebox(stack: Any, n: int, runners: int, workdir: Path) -> Run:
    client = stack.client()
    cluster = client.clusters().create("tilebox-bench").slug
    runner_token = stack.orchestrator.keys.create("runner", cluster=cluster)[1]
    admin_token = stack.orchestrator.keys.create("admin")[1]
    stop = workdir / "stop"
    procs = [
        tilebox(
            ["runner", stack.url, runner_token, cluster, str(stop), str(workdir / f"next-task-{i}.json")],
            workdir,
            f"tilebox-runner-{i}",
        )
        for i in range(runners)
    ]
    submitter = tilebox(["submit", stack.url, admin_token, cluster, str(n)], workdir, "tilebox-submit", stdin=True)
    try:
        for i, proc in enumerate(procs):
            read_json_line(proc, "ready", workdir, f"tilebox-runner-{i}")
        read_json_line(submitter, "ready", workdir, "tilebox-submit")
        # warm-up: every runner has claimed and reported once (submitted with taskfleet's SDK: the same identifiers)
        wait_job(client, client.jobs().submit("warm-up", [Leaf(i) for i in range(runners)], cluster=cluster))
        sweeps, reset_at = reset_counts(stack), time.time()
        assert submitter.stdin is not None
        submitter.stdin.write("go\n")
        submitter.stdin.flush()
        job_id = read_json_line(submitter, "job", workdir, "tilebox-submit")
        run = measure(stack, "tilebox", job_id, sweeps)
    finally:
        stop.touch()
        for proc in [submitter, *procs]:
            stop_group(proc)
    run.reset_at = reset_at
    for i in range(runners):
        calls = json.loads((workdir / f"next-task-{i}.json").read_text())
        # the measured job's calls: those that ended after the reset (the job's first claim may answer a call made
        # before it) and began before the benchmark saw the job done; not the warm-up's
        run.next_task_calls += [c for c in calls if c[0] + c[1] >= reset_at and c[0] <= run.seen_done_at]
    return run


# --- taskfleet processes --------------------------------------------------------------------------------------


def run_taskfleet(stack: Any, n: int, runners: int) -> Run:
    client = stack.client()
    cluster = client.clusters().create("taskfleet-bench").slug
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "taskfleet_runner", "--url", stack.url, "--cluster", cluster]
    procs = [
        subprocess.Popen([*command, "bench.tilebox:FanOut", "bench.tilebox:Leaf"], env=env) for _ in range(runners)
    ]
    try:
        wait_job(client, client.jobs().submit("warm-up", [Leaf(i) for i in range(runners)], cluster=cluster))
        sweeps = reset_counts(stack)
        job = client.jobs().submit("taskfleet-bench", FanOut(n), cluster=cluster)
        return measure(stack, "taskfleet", job.id, sweeps)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# --- output ---------------------------------------------------------------------------------------------------


def environment(stack: Any) -> dict[str, Any]:
    emulator = stack.emulator.patch_report() if stack.emulator else {}
    return {
        "python": platform.python_version(),
        "tilebox_sdk": TILEBOX_SDK,
        "cpus": os.cpu_count(),
        "emulator": emulator,
    }


def format_table(r: dict[str, Any]) -> str:
    tb, tf = r["tilebox"], r["taskfleet"]
    rows = [
        ("job state", "job_state"),
        ("tasks", "tasks"),
        ("wall, first claim -> done (s)", "wall_s"),
        ("submit -> done (s)", "submit_to_done_s"),
        ("tasks/s", "tasks_per_s"),
        ("AWS requests per task", "aws_requests_per_task"),
        ("  DynamoDB per task", "dynamodb_requests_per_task"),
        ("  SQS per task", "sqs_requests_per_task"),
        ("DynamoDB write units per task", "write_units_per_task"),
        ("API calls per task", "api_calls_per_task"),
        ("NextTask p50 (ms, runner-side)", "next_task_ms_p50"),
        ("NextTask p95 (ms, runner-side)", "next_task_ms_p95"),
        ("NextTask max (ms, runner-side)", "next_task_ms_max"),
    ]
    lines = [f"{'figure':<34}{'tilebox':>12}{'taskfleet':>12}", "-" * 58]
    for name, key in rows:
        lines.append(f"{name:<34}{_fmt(tb.get(key)):>12}{_fmt(tf.get(key)):>12}")
    lines.append("")
    for mode, fig in (("tilebox", tb), ("taskfleet", tf)):
        routes = ", ".join(f"{k} {v}" for k, v in fig["api_calls_by_route_per_task"].items())
        lines.append(f"{mode} API calls per task by route: {routes}")
    calls = ", ".join(f"{k} {v}" for k, v in (tb.get("next_task_calls") or {}).items())
    lines.append(f"tilebox NextTask calls during the job: {calls or 'none recorded'} (p50/p95: report -> task)")
    lines.append(f"{r['tasks']} leaves under one root ({tb['tasks']} tasks), {r['runners']} runner(s) per mode")
    emulator = r["environment"].get("emulator") or {}
    lines.append(
        f"emulator: moto {emulator.get('moto')}, patches {', '.join(emulator.get('applied') or []) or 'none'}"
        f"{' (skipped: ' + ', '.join(emulator['skipped']) + ')' if emulator.get('skipped') else ''}; "
        f"python {r['environment']['python']}, {r['environment']['tilebox_sdk']}, {r['environment']['cpus']} CPUs"
        " (the emulator's figures, not AWS's)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=200, help="no-op leaves under the one root")
    parser.add_argument("--runners", type=int, default=1, help="runner processes per mode")
    parser.add_argument("--json", default=str(ROOT / "bench" / "tilebox-results.json"))
    args = parser.parse_args(argv)
    if not TILEBOX_PYTHON.exists():
        print(f"the Tilebox SDK venv is missing ({TILEBOX_PYTHON}): run `make tilebox`", file=sys.stderr)
        return 2

    from taskfleet_local import LocalStack

    results: dict[str, Any] = {"tasks": args.tasks, "runners": args.runners}
    with tempfile.TemporaryDirectory(prefix="bench-tilebox-") as tmp, LocalStack(sweep_interval=10.0) as stack:
        results["environment"] = environment(stack)
        results["tilebox"] = run_tilebox(stack, args.tasks, args.runners, Path(tmp)).figures()
        results["taskfleet"] = run_taskfleet(stack, args.tasks, args.runners).figures()
    Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(format_table(results))
    ok = all(results[m]["job_state"] == "COMPLETED" for m in ("tilebox", "taskfleet"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
