"""Reliability harness: runner crashes, AWS errors, handler crashes, duplicate and late delivery, and
races, each followed by the invariant checks of tests/support/invariants.py.

    python -m bench.faults --size large          # every scenario; prints a table, writes bench/faults-results.json
    python -m bench.faults --size small --only runner_crashes,aws_faults

Run from the repository root. The scenarios live in tests/support/scenarios.py; CI runs them at size
`small` through tests/reliability/ (one LocalStack per process: the tests pass the session's stack in;
this script starts its own).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
from pathlib import Path

from tests.support import ROOT
from tests.support.scenarios import SCENARIOS, SIZES, Result


def table(results: list[Result]) -> str:
    rows = [
        (
            "scenario",
            "jobs",
            "tasks",
            "executions",
            "runners killed",
            "faults/crashes injected",
            "duplicate exec.",
            "tasks lost",
            "violations",
        )
    ]
    for r in results:
        f = r.figures
        injected = sum((f.get("faults_injected") or {}).values()) + sum((f.get("crashes_injected") or {}).values())
        rows.append(
            (
                r.scenario,
                str(f.get("jobs", "")),
                str(f.get("tasks", f.get("fuzz_cases_total", ""))),
                str(f.get("executions", "")),
                str(f.get("runners_killed", "")),
                str(injected or ""),
                str(f.get("duplicate_executions", "")),
                str(f.get("tasks_lost", "")),
                str(len(r.violations)),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="large")
    parser.add_argument("--only", default="", help="comma-separated scenarios: " + ",".join(SCENARIOS))
    parser.add_argument("--json", default=str(ROOT / "bench" / "faults-results.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from taskfleet_local import LocalStack

    size = SIZES[args.size]
    chosen = [s for s in (args.only.split(",") if args.only else SCENARIOS) if s]
    results: list[Result] = []
    with (
        LocalStack(lease_seconds=3, sweep_interval=0.5, outbox_grace_seconds=1.0, submit_lock_seconds=3.0) as stack,
        tempfile.TemporaryDirectory(prefix="taskfleet-faults-") as tmp,
    ):
        for name in chosen:
            print(f"--- {name} ({args.size})", flush=True)
            workdir = Path(tmp) / name
            workdir.mkdir()
            result = SCENARIOS[name](stack, size, workdir)
            results.append(result)
            print(json.dumps(result.figures, indent=1), flush=True)
            for v in result.violations[:20]:
                print("  VIOLATION:", v, flush=True)
    print()
    print(table(results))
    Path(args.json).write_text(
        json.dumps(
            {
                "size": args.size,
                "command": " ".join(["python", "-m", "bench.faults", *(argv or sys.argv[1:])]),
                "results": [
                    {"scenario": r.scenario, "figures": r.figures, "violations": r.violations} for r in results
                ],
            },
            indent=1,
        )
        + "\n"
    )
    return 1 if any(r.violations for r in results) else 0


if __name__ == "__main__":
    threading.current_thread().name = "faults"
    sys.exit(main())
