"""The `taskfleet dev` and `taskfleet demo` subcommands (the local stack), added to the `taskfleet` command
through the `taskfleet.commands` entry points of this distribution (functions/pyproject.toml)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any


def add_dev(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dev = sub.add_parser("dev", help="run the local stack (moto + handlers) on loopback")
    dev.add_argument("--port", type=int, default=8000)
    dev.add_argument("--lease-seconds", type=int, default=60)
    dev.set_defaults(func=cmd_dev)


def add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser("demo", help="run the example workflow on the local stack, end to end")
    demo.add_argument("--scenes", type=int, default=12)
    demo.add_argument("--runners", type=int, default=2)
    demo.add_argument("--timeout", type=float, default=300)
    demo.set_defaults(func=cmd_demo)


def _moto_missing(command: str) -> bool:
    """taskfleet-functions installed without its `local` extra: say so in one line (exit status 2)."""
    if importlib.util.find_spec("moto") is not None:
        return False
    print(
        f"taskfleet {command}: the local stack needs moto (the `local` extra of taskfleet-functions), which is "
        "not installed; run `make setup` in a clone of the taskfleet repository",
        file=sys.stderr,
    )
    return True


def cmd_dev(args: argparse.Namespace) -> int:
    if _moto_missing("dev"):
        return 2
    from . import LocalStack

    # Stable ports (the API's and the next one for the emulated AWS), so runners left running reconnect
    # when `dev` starts again.
    emulator_port = args.port + 1 if args.port else 0
    try:
        stack = LocalStack(port=args.port, lease_seconds=args.lease_seconds, emulator_port=emulator_port).start()
    except OSError as err:
        print(f"taskfleet dev: cannot listen on ports {args.port} and {emulator_port}: {err}", file=sys.stderr)
        return 1
    print(f"taskfleet local stack: {stack.url}   (emulated AWS at {stack.emulator.url if stack.emulator else '?'})")
    print(f"  export TASKFLEET_URL={stack.url}")
    print("  State lives in memory: stopping this command discards every job and cluster.")
    print(
        f'  Tilebox SDK clients: Client(url="{stack.url}", token=<key>, transport="http1"), with a key from'
        " `taskfleet keys create --role admin` (or --role runner --cluster SLUG)"
    )
    print(f"  Job cache bucket: {stack.cache_bucket} (emulated S3); for `taskfleet runner` to use it:")
    print("  export " + " ".join(f"{k}={v}" for k, v in stack.cache_env().items()))
    print("  Ctrl-C stops it.", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    print("taskfleet dev: stopping (local state discarded)", flush=True)
    stack.stop()
    return 0


def start_runner_process(
    url: str, cluster: str, tasks: list[str], *, log_level: str = "WARNING", extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TASKFLEET_LOG_LEVEL": log_level, **(extra_env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "taskfleet_runner", "--url", url, "--cluster", cluster, *tasks], env=env
    )


def cmd_demo(args: argparse.Namespace) -> int:
    if _moto_missing("demo"):
        return 2
    from taskfleet.examples.demo import CPU_TASKS, GPU_TASKS, SurveyWorkflow

    from . import LocalStack

    started = time.monotonic()
    print("starting the local stack (moto + the orchestrator's Lambda handlers) ...", flush=True)
    with LocalStack(lease_seconds=10) as stack:
        client = stack.client()
        gpu = client.clusters().create("gpu")
        cpu_tasks = [f"taskfleet.examples.demo:{t.__name__}" for t in CPU_TASKS]
        gpu_tasks = [f"taskfleet.examples.demo:{t.__name__}" for t in GPU_TASKS]
        # every runner uses the job cache on the emulated S3 bucket; short long polls let them stop at once
        cache = {**stack.cache_env(), "TASKFLEET_LONG_POLL_SECONDS": "2"}
        runners = [start_runner_process(stack.url, "default", cpu_tasks, extra_env=cache) for _ in range(args.runners)]
        runners.append(start_runner_process(stack.url, gpu.slug, gpu_tasks, extra_env=cache))
        print(f"runners: {args.runners} on cluster 'default' (CPU tasks), 1 on cluster '{gpu.slug}' (GPU task)")
        print(f"job cache: s3://{stack.cache_bucket} (emulated)")
        try:
            job = client.jobs().submit("demo-survey", SurveyWorkflow("alps", args.scenes, gpu.slug))
            print(f"submitted job {job.id}")
            submitted = time.monotonic()
            last = ""
            while True:
                job = client.jobs().find(job)
                line = f"  [{time.monotonic() - submitted:5.1f}s] job {job.state:<9} " + progress_line(job)
                if line != last:
                    print(line, flush=True)
                    last = line
                if job.state in ("COMPLETED", "FAILED", "CANCELED"):
                    break
                if time.monotonic() - submitted > args.timeout:
                    print(f"timed out after {args.timeout} s")
                    return 1
                time.sleep(0.3)
            job_wall = time.monotonic() - submitted
            print_summary(job, client.jobs().tasks(job), job_wall, time.monotonic() - started)
            return 0 if job.state == "COMPLETED" else 1
        finally:
            for proc in runners:
                proc.send_signal(signal.SIGTERM)
            for proc in runners:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


def progress_line(job: Any) -> str:
    """The job's progress indicators and its tasks by state, on one line."""
    bars = "  ".join(f"{p.label or 'progress'} {p.done}/{p.total}" for p in job.progress)
    states = " ".join(f"{s} {n}" for s, n in job.execution_stats.tasks_by_state.items())
    return f"{bars}   tasks: {states}" if bars else f"tasks: {states}"


def print_summary(job: Any, tasks: list[Any], job_wall: float, total_wall: float) -> None:
    by_name = Counter(t.name for t in tasks)
    by_cluster = Counter(t.cluster for t in tasks)
    stats = job.execution_stats
    print()
    print(f"job {job.id} {job.state} in {job_wall:.1f} s ({total_wall:.1f} s including start-up)")
    print(
        f"  {stats.total_tasks} tasks: "
        + ", ".join(f"{n} {s}" for s, n in stats.tasks_by_state.items())
        + f"; {sum(t.attempt for t in tasks)} executions"
    )
    print(
        f"  compute {stats.compute_time.total_seconds():.2f} s over {stats.elapsed_time.total_seconds():.2f} s"
        f" elapsed: parallelism {stats.parallelism:.2f}"
    )
    print("  progress: " + ", ".join(f"{p.label or 'progress'} {p.done}/{p.total}" for p in job.progress))
    for name, n in sorted(by_name.items()):
        print(f"    {name:<20} {n:>4}")
    print("  by cluster: " + ", ".join(f"{c}: {n}" for c, n in sorted(by_cluster.items())))
    root = next((t for t in tasks if t.parent_id is None), None)
    if root:
        print(f"  root: {root.display}")
    report = next((t for t in tasks if t.name == "PublishReport"), None)
    if report:
        print(f"  last: {report.display}")
    for task in tasks:
        if task.state == "FAILED_OPTIONAL":
            print(f"  optional task {task.display} failed, the job went on: {(task.failure or {}).get('message')}")
    if job.failure:
        print(f"  failure: {job.failure}")
