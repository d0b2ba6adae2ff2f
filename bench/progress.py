"""What progress indicators and job statistics cost: write units and dollars per task, and the hottest
item's share of a job's writes, for a fan-out whose every task reports progress, beside the same fan-out
without progress (docs/architecture.md, "Job statistics and progress").

    python -m bench.progress                   # 10,000 tasks with progress, 1,000 without (about 15 minutes)
    python -m bench.progress --tasks 200       # what CI runs (tests/bench)

Run from the repository root. Prints a table and writes bench/progress-results.json. Every write is
counted where it arrives (the emulator), per item, and priced as bench/cost.py prices it (each write costs
its item's size in KB, rounded up). The plain fan-out pays for the job statistics too (every finished task
is counted in its stats bucket); the progress fan-out adds one indicator per task (`--labels` more).

Goals (the parity issue): no item takes more than 1% of the job's writes because of progress; the write
units and cost per task are reported, not bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import cost
from bench.run import ROOT, Bench, _fmt, fanout_figures
from bench.workloads import CountedFanOut, FanOut, NoOp

TASKS = ("NoOp", "FanOut", "Counted", "CountedFanOut")


def start_runners(bench: Bench, n: int) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    args = [sys.executable, "-m", "taskfleet_runner", "--url", bench.stack.url, "--cluster", "default"]
    for _ in range(n):
        bench.procs.append(subprocess.Popen([*args, *[f"bench.workloads:{t}" for t in TASKS]], env=env))
    job = bench.client.jobs().submit("warm-up", [NoOp(i) for i in range(n)])
    bench.client.jobs().wait(job, timeout=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10_000, help="fan-out size with progress")
    parser.add_argument(
        "--plain-tasks", type=int, default=None, help="fan-out size without (default: min(tasks, 1000))"
    )
    parser.add_argument("--labels", type=int, default=1, help="progress indicators per task")
    parser.add_argument("--runners", type=int, default=2)
    parser.add_argument("--json", default=str(ROOT / "bench" / "progress-results.json"))
    args = parser.parse_args(argv)
    plain_n = args.plain_tasks or min(args.tasks, 1_000)

    from taskfleet_local import LocalStack

    results: dict[str, Any] = {"tasks_with_progress": args.tasks, "tasks_without": plain_n, "labels": args.labels}
    with LocalStack(lease_seconds=60, sweep_interval=10.0) as stack:
        bench = Bench(stack)
        try:
            start_runners(bench, args.runners)
            plain, plain_tasks = bench.run_job("plain", FanOut(plain_n), timeout=7200)
            counted, counted_tasks = bench.run_job("progress", CountedFanOut(args.tasks, args.labels), timeout=7200)
            job = bench.client.jobs().list(name="progress", limit=1)[0]
        finally:
            bench.stop_runners()
        sizes = cost.item_sizes(stack)
    results["without_progress"] = fanout_figures(plain, plain_tasks, sizes)
    results["with_progress"] = fanout_figures(counted, counted_tasks, sizes)
    stats_writes = {k: n for k, n in counted.writes_per_item.items() if k[1].startswith("STATS#")}
    total = sum(counted.writes_per_item.values())
    results["stats_buckets"] = len(stats_writes)
    results["stats_bucket_max_write_share"] = round(max(stats_writes.values()) / total, 4) if stats_writes else 0.0
    results["job_progress"] = [p.__dict__ for p in job.progress]
    results["job_tasks_by_state"] = {str(k): v for k, v in job.execution_stats.tasks_by_state.items()}
    Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    print(format_table(results))
    ok = results["job_tasks_by_state"] == {"COMPUTED": args.tasks + 1}
    return 0 if ok else 1


def format_table(r: dict[str, Any]) -> str:
    w, p = r["without_progress"], r["with_progress"]
    rows = [
        ("tasks", r["tasks_without"], r["tasks_with_progress"], ""),
        ("write units per task", w["write_units_per_task"], p["write_units_per_task"], "reported"),
        ("cost per million tasks (USD)", w["cost_usd_per_million_tasks"], p["cost_usd_per_million_tasks"], "reported"),
        ("hottest item's share of writes", w["hot_item_write_share"], p["hot_item_write_share"], "<= 0.01"),
        ("hottest item", w["hot_item"], p["hot_item"], ""),
        ("stats buckets (items read for the figures)", "", r["stats_buckets"], ""),
        ("largest stats bucket's share of writes", "", r["stats_bucket_max_write_share"], "<= 0.01"),
    ]
    lines = [f"{'figure':<44} {'no progress':>14} {'progress':>14}  goal", "-" * 84]
    lines += [f"{name:<44} {_fmt(a):>14} {_fmt(b):>14}  {goal}" for name, a, b, goal in rows]
    lines.append(f"job progress: {r['job_progress']}")
    lines.append(f"tasks by state: {r['job_tasks_by_state']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
