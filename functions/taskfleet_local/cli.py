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
        runners = [start_runner_process(stack.url, "default", cpu_tasks) for _ in range(args.runners)]
        runners.append(start_runner_process(stack.url, gpu.slug, gpu_tasks))
        print(f"runners: {args.runners} on cluster 'default' (CPU tasks), 1 on cluster '{gpu.slug}' (GPU task)")
        try:
            job = client.jobs().submit("demo-survey", SurveyWorkflow("alps", args.scenes, gpu.slug))
            print(f"submitted job {job.id}")
            submitted = time.monotonic()
            last = ""
            while True:
                job = client.jobs().find(job)
                tasks = client.jobs().tasks(job)
                counts = Counter(t.state for t in tasks)
                line = (
                    f"  [{time.monotonic() - submitted:5.1f}s] job {job.state:<9} tasks {len(tasks):>3}: "
                    + "  ".join(f"{s} {counts.get(s, 0)}" for s in ("QUEUED", "RUNNING", "COMPUTED", "FAILED"))
                )
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
            print_summary(job, tasks, job_wall, time.monotonic() - started)
            return 0 if job.state == "COMPLETED" else 1
        finally:
            for proc in runners:
                proc.send_signal(signal.SIGTERM)
            for proc in runners:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


def print_summary(job: Any, tasks: list[Any], job_wall: float, total_wall: float) -> None:
    by_name = Counter(t.name for t in tasks)
    by_cluster = Counter(t.cluster for t in tasks)
    print()
    print(f"job {job.id} {job.state} in {job_wall:.1f} s ({total_wall:.1f} s including start-up)")
    print(
        f"  {len(tasks)} tasks, {sum(t.completed for t in tasks)} completed, {sum(t.attempt for t in tasks)} executions"
    )
    for name, n in sorted(by_name.items()):
        print(f"    {name:<20} {n:>4}")
    print("  by cluster: " + ", ".join(f"{c}: {n}" for c, n in sorted(by_cluster.items())))
    root = next((t for t in tasks if t.parent_id is None), None)
    if root:
        print(f"  root: {root.display}")
    if job.failure:
        print(f"  failure: {job.failure}")
