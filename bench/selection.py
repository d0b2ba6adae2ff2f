"""Task selection by lanes: an idle runner finds its own work whatever else waits in its cluster, and
costs the same few requests while it waits.

    python -m bench.selection                  # default size: 1,000 foreign tickets, 3 repeats, 60 s idle windows
    python -m bench.selection --size small     # what CI runs (tests/bench): 200 foreign tickets, 10 s windows

Run from the repository root. Prints a table and writes bench/selection-results.json.

Each scenario has its own cluster and its own runner process registered for one task
(bench.workloads:NoOp), so each runner polls one lane: "no backlog" (cluster quiet) holds nothing but the
runner's own work; "backlog" (cluster busy) also holds one job of foreign tickets, submitted before its
runner starts (root tasks of `Foreign`, which no runner registers: they stay queued in their own lane).
Each runner first runs one job of 8 of its tasks to warm up; then the two get such a job `--repeats`
times each, alternating (the machine's speed drifts), each while idle (in its long poll). The quiet
runner's idle window is measured before the backlog exists, the busy runner's after the timed runs, with
the quiet runner stopped, so that each window counts one runner alone. Figures, medians of the repeats:

- submit-to-first-claim: the first own task's `started_at` minus the job's `submitted_at` (milliseconds,
  both from the orchestrator's items, both stamped by the orchestrator's clock);
- wall time: the job's `finished_at` minus its `submitted_at` (seconds; no client polling granularity);
- idle requests per runner per minute over a window (`--idle-seconds`), in each scenario: every SQS request
  plus every runner-route API call (`POST /runner/<slug>/...`: its lane refresh), counted where they
  arrive (moto, the local API). The sweeper's DLQ receives (one per cluster per sweep) belong to the
  deployment and are taken out, as in bench/run.py's `idle_requests`. The window starts 5 s into a long
  poll, so that neither of its edges falls next to a receive.

Goals: each timing equal within noise behind the backlog (the repeats' ranges overlap; a backlog run
faster than every run without it counts as met too), and at most 3 idle requests a minute per lane polled.
Before the lanes (one queue per cluster), such a runner ran none of its 8 tasks in 120 s behind 150
foreign tickets and made about 70 receives a minute. The exit status is 1 if any own job did not complete.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from taskfleet import ExecutionContext, Task

from bench.run import _fmt
from bench.workloads import NoOp
from tests.support import ROOT
from tests.support.waits import TERMINAL, wait_for

SIZES: dict[str, dict[str, Any]] = {
    "small": {"foreign": 200, "idle_s": 10.0},
    "default": {"foreign": 1000, "idle_s": 60.0},  # 1,000: the most root tasks one job may have
}
OWN_TASKS = 8
OWN_TIMEOUT_S = 120.0  # what the runner got before the lanes, and ran none of its tasks in
IDLE_LANES_GOAL = 3.0  # idle requests per runner per minute, per lane it polls
# An idle window starts this long after the runner began its long polls (each 20 s), so that neither edge of
# the window falls next to a receive: a 60 s window then holds exactly the receives of 60 s.
IDLE_PHASE_S = 5.0
RUNNER_TASKS = ("bench.workloads:NoOp",)
IDLE_LOG = "idle: waiting for tickets"  # the runner's line when it starts its long polls (runner/.../lanes.py)
IDLE_LANES = re.compile(IDLE_LOG + r" on (\d+) lane")


class Foreign(Task):
    """A task no runner of this benchmark registers: its tickets only wait in their lane."""

    i: int

    def execute(self, context: ExecutionContext) -> None:  # pragma: no cover - never runs
        raise AssertionError("no runner of bench.selection registers Foreign")


class Runner:
    """One runner subprocess of bench.workloads:NoOp, logging at INFO to a file that tells when it is idle."""

    def __init__(self, stack: Any, cluster: str, workdir: Path, name: str) -> None:
        self.log = workdir / f"runner-{name}.log"
        env = {
            **os.environ,
            "TASKFLEET_LOG_LEVEL": "INFO",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "taskfleet_runner", "--url", stack.url, "--cluster", cluster),
                    *("--grace", "5", *RUNNER_TASKS),
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def idle_spells(self) -> int:
        """How often the runner said it is idle, its long polls under way (once per idle spell)."""
        return self.text().count(IDLE_LOG)

    def lanes(self) -> int:
        """How many lanes the runner said it polls, when it last fell idle."""
        found = IDLE_LANES.findall(self.text())
        return int(found[-1]) if found else 0

    def wait_idle(self, spells_before: int, timeout: float = 60.0) -> None:
        def idle() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the runner exited ({self.proc.returncode}):\n{self.text()[-3000:]}")
            return self.idle_spells() > spells_before

        wait_for(idle, timeout=timeout, what="the runner to be idle (in its long poll)", poll=0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=45)  # it waits for its open long polls (at most 20 s) before it exits
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def own_run(stack: Any, client: Any, cluster: str, runner: Runner) -> dict[str, Any]:
    """Submit 8 own tasks to the idle runner; the job's timings from the orchestrator's items."""
    spells = runner.idle_spells()
    job = client.jobs().submit("selection-own", [NoOp(i) for i in range(OWN_TASKS)], cluster=cluster)
    orchestrator = stack.orchestrator
    with contextlib.suppress(TimeoutError):  # a job that does not finish is reported as such
        wait_for(
            lambda: orchestrator.get_job(job.id)["state"] in TERMINAL,
            timeout=OWN_TIMEOUT_S,
            what="the own job",
            poll=0.2,  # the timings come from the items: polling slower only spares moto
        )
    item = orchestrator.get_job(job.id)
    tasks = orchestrator.job_tasks(job.id)
    submitted = int(item["submitted_at"])
    started = [int(t["started_at"]) for t in tasks if t.get("started_at") is not None]
    completed = sum(1 for t in tasks if t.get("completed"))
    run = {
        "job_state": str(item["state"]),
        "completed": completed,
        "first_claim_ms": min(started) - submitted if started else None,
        "wall_s": round((int(item["finished_at"]) - submitted) / 1000, 3) if item.get("finished_at") else None,
    }
    if item["state"] == "COMPLETED":
        runner.wait_idle(spells)  # back in its long poll before the next measurement
    return run


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": runs, "completed": [r["completed"] for r in runs]}
    for key in ("first_claim_ms", "wall_s"):
        values = [r[key] for r in runs if r[key] is not None]
        out[f"{key}_median"] = round(statistics.median(values), 3) if values else None
        out[f"{key}_range"] = [min(values), max(values)] if values else None
    return out


def idle_window(stack: Any, seconds: float, clusters: int, lanes: int) -> dict[str, Any]:
    """The runner's requests over `seconds` of idleness: SQS requests and runner-route API calls."""
    time.sleep(IDLE_PHASE_S)  # see IDLE_PHASE_S: the runner is idle already, this only sets the window's phase
    stack.emulator.reset_counts()
    stack.api.reset_counts()
    sweeps = stack.sweeps
    time.sleep(seconds)  # the measurement window itself: what an idle runner does in it is the figure
    counts = stack.request_counts()
    sweeps = stack.sweeps - sweeps
    runner = {k: v for k, v in counts.items() if k.startswith(("sqs:", "api:POST /runner"))}
    if "sqs:ReceiveMessage" in runner:  # the sweeper's DLQ receives: one per cluster per sweep
        runner["sqs:ReceiveMessage"] -= sweeps * clusters
    per_minute = 60 / seconds
    total = sum(runner.values()) * per_minute
    return {
        "seconds": seconds,
        "requests_per_runner_minute": round(total, 2),
        "per_lane_polled": round(total / lanes, 2) if lanes else None,
        "by_action_per_minute": {k: round(v * per_minute, 2) for k, v in sorted(runner.items())},
        "sweeps_taken_out": sweeps * clusters,
    }


def lane_state(stack: Any, url: str) -> dict[str, int]:
    attributes = stack.boto_client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return {
        "visible": int(attributes["ApproximateNumberOfMessages"]),
        "in_flight": int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    }


def receive_counts(stack: Any, url: str) -> list[int]:
    """How often each of up to 10 foreign tickets had been received, this look included (1: never by a
    runner); they are handed back at once."""
    sqs = stack.boto_client("sqs")
    resp = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"])
    counts = []
    for message in resp.get("Messages", []):
        counts.append(int(message["Attributes"]["ApproximateReceiveCount"]))
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return counts


def code_version() -> dict[str, Any]:
    """The commit measured, and the application files that differed from it (others may be editing)."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout
        except OSError:
            return ""

    changed = git("status", "--porcelain", "--", "sdk", "runner", "functions").splitlines()
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "uncommitted": [line[3:] for line in changed]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="default")
    parser.add_argument("--repeats", type=int, default=3, help="own jobs per scenario (medians are reported)")
    parser.add_argument("--idle-seconds", type=float, default=None, help="each idle measurement window")
    parser.add_argument("--foreign", type=int, default=None, help="foreign tickets (at most 1,000: one job)")
    parser.add_argument("--json", default=str(ROOT / "bench" / "selection-results.json"))
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    foreign = args.foreign if args.foreign is not None else int(size["foreign"])
    idle_s = args.idle_seconds if args.idle_seconds is not None else float(size["idle_s"])

    from taskfleet_local import LocalStack

    results: dict[str, Any] = {
        "size": args.size,
        "command": " ".join(["python", "-m", "bench.selection", *(argv if argv is not None else sys.argv[1:])]),
        "own_tasks": OWN_TASKS,
        "foreign_tickets": foreign,
        "idle_seconds": idle_s,
        "repeats": args.repeats,
        "code": code_version(),
    }
    with (
        LocalStack(lease_seconds=60, sweep_interval=10.0) as stack,
        tempfile.TemporaryDirectory(prefix="taskfleet-selection-") as tmp,
    ):
        assert stack.emulator is not None and stack.orchestrator is not None  # started by the with
        results["moto"] = stack.emulator.patch_report()["moto"]
        client = stack.client()
        # Each scenario has a cluster and a runner of its own, so that their runs can alternate (the machine's
        # speed drifts): "quiet" holds nothing but the runner's own work, "busy" the foreign tickets too.
        slugs = {"no_backlog": client.clusters().create("quiet").slug, "backlog": client.clusters().create("busy").slug}
        clusters = len(stack.orchestrator.list_clusters())
        runners: dict[str, Runner] = {}
        try:
            # Without a backlog: the quiet runner, alone, warms up and is measured idle.
            quiet = runners["no_backlog"] = Runner(stack, slugs["no_backlog"], Path(tmp), "quiet")
            quiet.wait_idle(0)  # it polls its lanes
            warm_up = {"no_backlog": own_run(stack, client, slugs["no_backlog"], quiet)}  # not counted
            idle = {"no_backlog": idle_window(stack, idle_s, clusters, quiet.lanes())}

            # The foreign tickets first, then the busy runner beside them.
            backlog = client.jobs().submit("foreign", [Foreign(i) for i in range(foreign)], cluster=slugs["backlog"])
            foreign_lane = stack.orchestrator.clusters.lane_url(slugs["backlog"], *Foreign.identifier())
            wait_for(lambda: lane_state(stack, foreign_lane)["visible"] >= foreign, 60, "the foreign tickets")
            results["foreign_lane_before"] = lane_state(stack, foreign_lane)
            busy = runners["backlog"] = Runner(stack, slugs["backlog"], Path(tmp), "busy")
            busy.wait_idle(0)
            warm_up["backlog"] = own_run(stack, client, slugs["backlog"], busy)

            # The timed runs, alternating (quiet first in even rounds, busy first in odd ones).
            runs: dict[str, list[dict[str, Any]]] = {"no_backlog": [], "backlog": []}
            for i in range(args.repeats):
                for key in ("no_backlog", "backlog") if i % 2 == 0 else ("backlog", "no_backlog"):
                    runs[key].append(own_run(stack, client, slugs[key], runners[key]))

            # With the backlog: the busy runner, alone, is measured idle.
            quiet.stop()
            idle["backlog"] = idle_window(stack, idle_s, clusters, busy.lanes())
            results["foreign_lane_after"] = lane_state(stack, foreign_lane)
            results["foreign_receive_counts"] = receive_counts(stack, foreign_lane)
            results["foreign_job_state"] = str(stack.orchestrator.get_job(backlog.id)["state"])
            results["busy_lanes_answered"] = len(stack.orchestrator.runner_lanes(slugs["backlog"], [identifier(NoOp)]))
            for key, runner in runners.items():
                results[key] = {**summary(runs[key]), "warm_up": warm_up[key], "lanes_polled": runner.lanes()}
                results[key]["idle"] = idle[key]
            results["lanes_polled"] = busy.lanes()
        finally:
            for runner in runners.values():
                runner.stop()
    results["goals"] = verdicts(results)
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(format_table(results))
    every_own_task_ran = all(c == OWN_TASKS for s in ("no_backlog", "backlog") for c in results[s]["completed"])
    return 0 if every_own_task_ran else 1


def identifier(cls: type[Task]) -> Any:
    """The orchestrator's identifier of a task class (what a runner registers)."""
    from taskfleet_functions.orchestrator.clusters import Identifier

    return Identifier(*cls.identifier())


def compare(quiet: list[float] | None, busy: list[float] | None) -> str:
    """ "met" when the runs' ranges (min-max) overlap, "met (faster behind the backlog)" when every run behind
    the backlog was faster than every run without it, "NOT MET" when every one was slower."""
    if quiet is None or busy is None:
        return "NOT MET"
    if busy[1] < quiet[0]:
        return "met (faster behind the backlog)"
    if busy[0] > quiet[1]:
        return "NOT MET"
    return "met"


def verdicts(r: dict[str, Any]) -> dict[str, str]:
    quiet, busy = r["no_backlog"], r["backlog"]
    idle = max(s["idle"]["requests_per_runner_minute"] / max(1, s["lanes_polled"]) for s in (quiet, busy))
    return {
        "first_claim_equal_within_noise": compare(quiet["first_claim_ms_range"], busy["first_claim_ms_range"]),
        "wall_equal_within_noise": compare(quiet["wall_s_range"], busy["wall_s_range"]),
        "idle_at_most_3_per_lane": "met" if idle <= IDLE_LANES_GOAL else "NOT MET",
    }


def format_table(r: dict[str, Any]) -> str:
    quiet, busy, goals = r["no_backlog"], r["backlog"], r["goals"]

    def spread(s: dict[str, Any], key: str) -> str:
        rng = s[f"{key}_range"]
        return f"{_fmt(s[f'{key}_median'])} ({_fmt(rng[0])}-{_fmt(rng[1])})" if rng else "-"

    receives = "sqs:ReceiveMessage"
    rows = [
        (
            "submit -> first claim, ms",
            spread(quiet, "first_claim_ms"),
            spread(busy, "first_claim_ms"),
            f"equal within noise: {goals['first_claim_equal_within_noise']}",
        ),
        (
            f"wall time, {r['own_tasks']} tasks, s",
            spread(quiet, "wall_s"),
            spread(busy, "wall_s"),
            f"equal within noise: {goals['wall_equal_within_noise']}",
        ),
        (
            "own tasks completed, each run",
            "/".join(map(str, quiet["completed"])),
            "/".join(map(str, busy["completed"])),
            f"{r['own_tasks']} each",
        ),
        (
            "idle requests / runner / minute",
            _fmt(quiet["idle"]["requests_per_runner_minute"]),
            _fmt(busy["idle"]["requests_per_runner_minute"]),
            "",
        ),
        (
            "... per lane polled",
            _fmt(quiet["idle"]["per_lane_polled"]),
            _fmt(busy["idle"]["per_lane_polled"]),
            f"<= {IDLE_LANES_GOAL:g}: {goals['idle_at_most_3_per_lane']}",
        ),
        (
            "... of which receives",
            _fmt(quiet["idle"]["by_action_per_minute"].get(receives, 0)),
            _fmt(busy["idle"]["by_action_per_minute"].get(receives, 0)),
            "",
        ),
        ("lanes polled by the runner", str(quiet["lanes_polled"]), str(busy["lanes_polled"]), ""),
    ]
    header = ("figure", "no backlog", f"behind {r['foreign_tickets']:,} foreign", "goal")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(3)]
    lines = [f"{header[0]:<{widths[0]}}  {header[1]:>{widths[1]}}  {header[2]:>{widths[2]}}  {header[3]}"]
    lines.append("-" * (sum(widths) + 6 + 40))
    for name, a, b, goal in rows:
        lines.append(f"{name:<{widths[0]}}  {a:>{widths[1]}}  {b:>{widths[2]}}  {goal}")
    lines.append("")
    lines.append(
        f"medians of {r['repeats']} runs each (min-max), alternating; idle windows of {r['idle_seconds']:g} s; "
        f"idle requests by action per minute: {quiet['idle']['by_action_per_minute']} / "
        f"{busy['idle']['by_action_per_minute']}"
    )
    lines.append(
        f"foreign lane: {r['foreign_lane_before']} before, {r['foreign_lane_after']} after; receive counts of "
        f"a sample (1 = never received before): {r['foreign_receive_counts']}; foreign job {r['foreign_job_state']}"
    )
    lines.append(f"moto {r['moto']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
