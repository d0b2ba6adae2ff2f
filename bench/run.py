"""taskfleet's benchmark suite, on the local stack, side by side with the Celery peer.

    python -m bench.run                    # default size (fan-out 500, chain 30, 60 s idle), ~5 minutes
    python -m bench.run --size small       # what CI runs (tests/bench)
    python -m bench.run --fanout 10000     # cost flatness and hot items at 10,000 tasks

Run from the repository root.

Prints a table and writes bench/results.json. Every AWS request is counted where it arrives (the
emulator for DynamoDB and SQS, the local API for the requests that front the handlers), so handlers,
runners, sweeper and SDK are all included. Costs use the list prices of shared/reference/aws-facts.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import cost, critical_path
from bench.workloads import Chain, FanOut, Mixed, NoOp, SleepFanOut

ROOT = Path(__file__).resolve().parent.parent

SIZES: dict[str, dict[str, Any]] = {
    "small": {
        "fanout": 60,
        "chain": 10,
        "mixed": 30,
        "scaling_tasks": 24,
        "idle_s": 10,
        "peer_fanout": 20,
        "peer_chain": 5,
    },
    "default": {
        "fanout": 500,
        "chain": 30,
        "mixed": 100,
        "scaling_tasks": 60,
        "idle_s": 60,
        "peer_fanout": 500,
        "peer_chain": 30,
    },
}
SLEEP_TASK_S = 0.1
WORKERS = 2  # runner processes for fan-out, chain and mixed; the peer gets the same number
CLIENT_POLL_SECONDS = 0.5  # the waiting client polls as often as the peer's (Celery's default interval)


@dataclass
class Measured:
    wall_s: float  # as the waiting client saw it (polling every CLIENT_POLL_SECONDS, like the peer's client)
    span_s: float  # the job's own submitted_at -> finished_at (milliseconds, no polling granularity)
    tasks: int
    requests: dict[str, int]
    writes_per_item: Counter[tuple[str, str]]

    @property
    def tasks_per_s(self) -> float:
        return self.tasks / self.wall_s


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class Bench:
    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self.client = stack.client()
        self.procs: list[subprocess.Popen[bytes]] = []

    def start_runners(self, n: int, cluster: str = "default") -> list[subprocess.Popen[bytes]]:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        tasks = [f"bench.workloads:{t}" for t in RUNNER_TASKS]
        started = [
            subprocess.Popen(
                [sys.executable, "-m", "taskfleet_runner", "--url", self.stack.url, "--cluster", cluster, *tasks],
                env=env,
            )
            for _ in range(n)
        ]
        self.procs.extend(started)
        # Warm up: every runner has connected once the warm-up job of n tasks ran.
        job = self.client.jobs().submit("warm-up", [NoOp(i) for i in range(n)], cluster=cluster)
        self.client.jobs().wait(job, timeout=120)
        return started

    def stop_runners(self, procs: list[subprocess.Popen[bytes]] | None = None) -> None:
        for p in procs if procs is not None else self.procs:
            p.send_signal(signal.SIGTERM)
        for p in procs if procs is not None else self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = [p for p in self.procs if p.poll() is None]

    def reset(self) -> None:
        self.stack.emulator.reset_counts()
        self.stack.api.reset_counts()

    def run_job(self, name: str, task: Any, cluster: str = "default", timeout: float = 1800) -> tuple[Measured, Any]:
        emulator = self.stack.emulator
        emulator.track_writes(True)
        self.reset()
        started = time.monotonic()
        job = self.client.jobs().submit(name, task, cluster=cluster)
        deadline = started + timeout
        while True:  # poll the job item only (one GET), like a user script waiting for it
            current = self.client.jobs().find(job)
            if current.state in ("COMPLETED", "FAILED", "CANCELED"):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} still {current.state} after {timeout} s")
            time.sleep(CLIENT_POLL_SECONDS)
        wall = time.monotonic() - started
        if current.state != "COMPLETED":
            raise RuntimeError(f"{name} ended {current.state}: {current.failure}")
        requests = self.stack.request_counts()
        writes = emulator.writes_per_item()
        emulator.track_writes(False)
        tasks = self.client.jobs().tasks(job)  # the first 5,000 (for the duplicate check and the chain's hops)
        span = _epoch(current.finished_at) - _epoch(current.submitted_at)
        # every task of the job, also beyond the 5,000 the task list holds (the job's execution stats)
        count = max(len(tasks), current.execution_stats.total_tasks)
        return Measured(wall, span, count, requests, writes), tasks


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def duplicate_executions(tasks: list[Any]) -> int:
    """Executions beyond one per task: attempts that started more than once (no crash was injected)."""
    return sum(max(0, t.attempt - 1 - t.retry_count) for t in tasks)


# What each benchmark runner registers: one lane each (docs/architecture.md, "Queue protocol").
RUNNER_TASKS = ("NoOp", "Sleep", "FanOut", "SleepFanOut", "Chain", "Hop", "Mixed", "Gather")


def idle_requests(bench: Bench, runners: int, seconds: float, clusters: int) -> float:
    """Requests idle runners make per minute each. The sweeper's DLQ receives (one per cluster per
    sweep) belong to the deployment, not to runners, and are taken out."""
    bench.reset()
    sweeps = bench.stack.sweeps
    time.sleep(seconds)  # the measurement window itself: idle runners are what is measured
    counts = bench.stack.request_counts()
    runner_requests = sum(v for k, v in counts.items() if k.startswith(("sqs:", "api:POST /runner")))
    runner_requests -= (bench.stack.sweeps - sweeps) * clusters
    return runner_requests / runners / (seconds / 60)


def cold_imports() -> dict[str, float]:
    # The deployed functions' environment (infra/): Powertools settings, no pydantic plugin discovery.
    env = {
        **os.environ,
        "POWERTOOLS_SERVICE_NAME": "taskfleet",
        "POWERTOOLS_METRICS_NAMESPACE": "taskfleet",
        "TASKFLEET_TABLE": "t",
        "TASKFLEET_QUEUE_PREFIX": "q",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYDANTIC_DISABLE_PLUGINS": "__all__",
    }
    out = {}
    for name in ("jobs", "clusters", "runner", "sweeper"):
        module = f"taskfleet_functions.handlers.{name}"
        code = (
            "import time; t = time.perf_counter(); import importlib; "
            f"importlib.import_module({module!r}); print((time.perf_counter() - t) * 1000)"
        )
        runs = [
            float(
                subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
            )
            for _ in range(5)
        ]
        out[name] = round(statistics.median(runs), 1)
    return out


def bundle_mb() -> float:
    """Unzipped size of the arm64 bundle the CDK app deploys (built, or reused from its cache)."""
    from taskfleet_infra.bundle import build_bundle, folder_size

    return round(folder_size(build_bundle()) / 1e6, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="default")
    parser.add_argument("--fanout", type=int, default=None, help="fan-out size (10000 for the large run)")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results.json"))
    parser.add_argument("--no-peer", action="store_true", help="skip the Celery peer")
    parser.add_argument(
        "--fanout-only",
        action="store_true",
        help="only the fan-out: throughput, requests, cost and hot items (for --fanout 10000)",
    )
    args = parser.parse_args(argv)
    size = dict(SIZES[args.size])
    if args.fanout:
        size["fanout"] = args.fanout

    from taskfleet_local import LocalStack

    results: dict[str, Any] = {"size": args.size, "workers": WORKERS}
    with LocalStack(lease_seconds=60, sweep_interval=10.0) as stack:
        bench = Bench(stack)
        gpu = bench.client.clusters().create("second").slug
        try:
            main_runners = bench.start_runners(WORKERS)
            fan, fan_tasks = bench.run_job("fan-out", FanOut(size["fanout"]), timeout=7200)
            if args.fanout_only:
                fig = fanout_figures(fan, fan_tasks, cost.item_sizes(stack))
                Path(args.json).write_text(json.dumps(fig, indent=2))
                print(json.dumps(fig, indent=2))
                return 0
            _chain, chain_tasks = bench.run_job("chain", Chain(size["chain"]))
            other = bench.start_runners(1, gpu)
            mixed, _ = bench.run_job("mixed", Mixed(size["mixed"], gpu))
            bench.stop_runners(other)
            idle = idle_requests(bench, WORKERS, size["idle_s"], clusters=2)
            bench.stop_runners(main_runners)
            scaling = {}
            for n in (1, 2, 4):
                procs = bench.start_runners(n)
                m, _ = bench.run_job(f"scaling-{n}", SleepFanOut(size["scaling_tasks"], SLEEP_TASK_S))
                scaling[n] = (size["scaling_tasks"] + 1) / m.span_s  # seconds: polling would blur them
                bench.stop_runners(procs)
        finally:
            bench.stop_runners()
        sizes = cost.item_sizes(stack)
        results["emulator"] = stack.emulator.patch_report() if stack.emulator else {}

    starts = sorted(float(t.display) for t in chain_tasks if t.name == "Hop")  # each hop's start time
    hop_ms = [(b - a) * 1000 for a, b in itertools.pairwise(starts)]
    results.update(fanout_figures(fan, fan_tasks, sizes))
    results.update(
        {
            "chain_hop_ms_median": round(statistics.median(hop_ms), 1),
            "chain_hop_ms_p90": round(percentile(hop_ms, 0.9), 1),
            "mixed_wall_s": round(mixed.wall_s, 2),
            "mixed_tasks_per_s": round(mixed.tasks_per_s, 1),
            "scaling_tasks_per_s": {str(k): round(v, 2) for k, v in scaling.items()},
            "scaling_1_to_4": round(scaling[4] / scaling[1], 2),
            "idle_requests_per_runner_minute": round(idle, 2),
            "idle_requests_per_lane_minute": round(idle / len(RUNNER_TASKS), 2),
            "cold_import_ms": cold_imports(),
            "bundle_mb": bundle_mb(),
        }
    )
    results.update(cold_import_ms_max=max(results["cold_import_ms"].values()), critical_path=critical_path.measure())
    if not args.no_peer:
        from bench.peer_celery import run_peer

        peer = run_peer(size["peer_fanout"], size["peer_chain"])
        results["peer"] = {k: peer[k] for k in ("throughput_tasks_per_s", "chain_hop_ms_median", "requests_per_task")}
        results["peer"]["details"] = {k: v for k, v in peer.items() if k not in results["peer"]}
    Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    print(format_table(results))
    return 0


def fanout_figures(fan: Measured, tasks: list[Any], sizes: dict[tuple[str, str], int]) -> dict[str, Any]:
    model = cost.model(fan.requests, fan.writes_per_item, sizes, fan.tasks)
    total_writes = sum(fan.writes_per_item.values())
    return {
        "throughput_tasks_per_s": round(fan.tasks_per_s, 1),
        "fanout_tasks": fan.tasks,
        "fanout_wall_s": round(fan.wall_s, 2),
        "requests_per_task": round(model["requests_per_task"], 2),
        "client_polls_per_task": round(model["client_polls_per_task"], 3),
        "requests_by_action": {k: round(v / fan.tasks, 3) for k, v in sorted(fan.requests.items())},
        "cost_usd_per_million_tasks": round(model["usd_per_million"], 3),
        "cost_breakdown_usd_per_million": {k: round(v, 3) for k, v in model["breakdown"].items()},
        "write_units_per_task": round(model["write_units_per_task"], 3),
        "hot_item_write_share": round(max(fan.writes_per_item.values()) / total_writes, 4),
        "hot_item": "/".join(fan.writes_per_item.most_common(1)[0][0]),
        "duplicate_executions": duplicate_executions(tasks),
    }


def format_table(r: dict[str, Any]) -> str:
    peer = r.get("peer", {})
    rows = [
        ("fan-out throughput (tasks/s)", r["throughput_tasks_per_s"], peer.get("throughput_tasks_per_s"), "peer x1.5"),
        ("chain hop p50 (ms)", r["chain_hop_ms_median"], peer.get("chain_hop_ms_median"), "<= peer"),
        ("chain hop p90 (ms)", r["chain_hop_ms_p90"], (peer.get("details") or {}).get("chain_hop_ms_p90"), ""),
        ("AWS requests per task", r["requests_per_task"], peer.get("requests_per_task"), "<= peer"),
        ("$ per million tasks", r["cost_usd_per_million_tasks"], None, "<= 2"),
        ("write units per task", r["write_units_per_task"], None, ""),
        ("scaling 1 -> 4 runners", r["scaling_1_to_4"], None, ">= 3.5"),
        ("hottest item's share of writes", r["hot_item_write_share"], None, "<= 0.01 at 10,000"),
        ("idle requests / runner / minute", r["idle_requests_per_runner_minute"], None, ""),
        ("idle requests / lane polled / minute", r["idle_requests_per_lane_minute"], None, "<= 3"),
        ("cold import, slowest handler (ms)", r["cold_import_ms_max"], None, "<= 300 (median of 5)"),
        (
            "duplicate executions",
            r["duplicate_executions"],
            (peer.get("details") or {}).get("duplicate_executions"),
            "0",
        ),
    ]
    path = r.get("critical_path") or {}
    if path:
        rows += [
            ("hop: sequential requests after task", path["chain_hop_sequential_requests_issued"], None, "<= 4"),
            ("hop: modelled AWS latency (ms)", path["chain_hop_modelled_aws_ms"], None, "(bench.critical_path)"),
            ("fan-out call: sequential requests", path["fanout_task_sequential_requests"], None, ""),
        ]
    lines = [f"{'figure':<36}{'taskfleet':>12}{'celery':>12}  goal", "-" * 72]
    for name, ours, theirs, goal in rows:
        lines.append(f"{name:<36}{_fmt(ours):>12}{_fmt(theirs):>12}  {goal}")
    lines.append("")
    lines.append(
        f"fan-out of {r['fanout_tasks']} tasks in {r['fanout_wall_s']} s with {r['workers']} runners; "
        f"mixed DAG {r['mixed_wall_s']} s; scaling {r['scaling_tasks_per_s']} tasks/s"
    )
    emulator = r.get("emulator") or {}
    if emulator:
        lines.append(
            f"emulator: moto {emulator.get('moto')}, patches {', '.join(emulator.get('applied') or []) or 'none'}"
            f"{' (skipped: ' + ', '.join(emulator['skipped']) + ')' if emulator.get('skipped') else ''}"
            " (the same emulator for the peer)"
        )
    lines.append("cost per million: " + ", ".join(f"{k} ${v}" for k, v in r["cost_breakdown_usd_per_million"].items()))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
