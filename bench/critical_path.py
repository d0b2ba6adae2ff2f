"""Sequential AWS requests on the critical path, counted where the orchestrator makes them, and the hop
latency they would have on AWS (docs/architecture.md, "What a task costs").

    python -m bench.critical_path            # prints a table, writes bench/critical-path-results.json

A figure that does not depend on the emulator's speed: the orchestrator runs in this process against the
local stack's moto, every AWS request it makes is timed (botocore's before-call and after-call events), and
the steps are the longest run of requests one after the other (requests beside them, overlapping in time,
are listed with the step). Traced:
- a chain hop: the report of hop i, up to the SendMessage of hop i+1's ticket (what follows in that call,
  the parent's latch, is off the path), then the long-poll receive that returns the ticket (one step,
  already waiting), then hop i+1's claim;
- a fan-out task, steady state: the runner's combined call (report of one subtask, claim of the next).

The modelled latency multiplies the steps by published per-request figures (us-east-1, in-region, warm):
- DynamoDB: 5 ms a request. AWS: "For most atomic operations, such as GetItem and PutItem, an average
  latency is in single-digit milliseconds" (re:Post, "How can I troubleshoot high latency on an Amazon
  DynamoDB table?", https://repost.aws/knowledge-center/dynamodb-high-latency); 5 ms is the middle of that.
- SQS: 20 ms a request. AWS: "if the latency from an Amazon EC2-based client to Amazon SQS in the same region
  averages 20 ms, ..." (SQS Developer Guide, "Increasing throughput using horizontal scaling and action
  batching"). The long-poll receive that returns a new message is modelled as one such request.
- Lambda through a function URL: 10 ms added per runner call (warm). No AWS figure is published; a
  third-party X-Ray measurement gives about 8 ms of invoke overhead (github.com/codetalkio/
  patterns-serverless-rust-minimal, benchmark/response-times.md), plus the network round trip.
These are averages of other people's measurements, not an SLA: the model ranks designs, it does not
promise a latency.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODEL_MS = {"dynamodb": 5.0, "sqs": 20.0, "lambda": 10.0}
SOURCES = {
    "dynamodb": "https://repost.aws/knowledge-center/dynamodb-high-latency (average single-digit ms)",
    "sqs": "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/"
    "sqs-throughput-horizontal-scaling-and-batching.html (20 ms example)",
    "lambda": "github.com/codetalkio/patterns-serverless-rust-minimal benchmark/response-times.md (~8 ms) + network",
}


@dataclass
class Trace:
    """AWS requests made while `recording`: (start, end, service, operation), from any thread."""

    requests: list[tuple[float, float, str, str]] = field(default_factory=list)
    recording: bool = False
    _open: dict[int, tuple[float, str, str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, client: Any, service: str) -> None:
        def before(model: Any, **_: Any) -> None:
            if self.recording:
                with self._lock:
                    self._open[threading.get_ident()] = (time.perf_counter(), service, model.name)

        def after(**_: Any) -> None:
            with self._lock:
                started = self._open.pop(threading.get_ident(), None)
                if started is not None:
                    self.requests.append((started[0], time.perf_counter(), started[1], started[2]))

        client.meta.events.register("before-call", before)
        client.meta.events.register("after-call", after)

    def take(self) -> list[tuple[float, float, str, str]]:
        with self._lock:
            taken, self.requests = sorted(self.requests), []
        return taken


def steps(requests: list[tuple[float, float, str, str]]) -> list[list[str]]:
    """The longest run of requests that happened one after the other (none overlapping the next: the most
    that can be on a dependency chain), each step listed with the requests that overlapped it."""
    chosen: list[tuple[float, float, str, str]] = []
    for r in sorted(requests, key=lambda r: r[1]):  # earliest end first: the most intervals that do not overlap
        if not chosen or r[0] >= chosen[-1][1]:
            chosen.append(r)
    out = [[f"{c[2]}:{c[3]}"] for c in chosen]
    for r in requests:
        if r in chosen:
            continue
        for i, c in enumerate(chosen):
            if r[0] < c[1] and c[0] < r[1]:
                out[i].append(f"{r[2]}:{r[3]}")
                break
    return out


def modelled_ms(path: list[list[str]], runner_calls: int) -> float:
    """The steps' latency on AWS: each step costs its slowest request; plus each runner call's Lambda hop."""
    total = runner_calls * MODEL_MS["lambda"]
    for step in path:
        total += max(MODEL_MS[r.split(":")[0]] for r in step)
    return total


def until_send(requests: list[tuple[float, float, str, str]]) -> list[tuple[float, float, str, str]]:
    """The requests up to the first SendMessage(Batch): the rest of the call is off the hop's path."""
    out = []
    for r in requests:
        out.append(r)
        if r[3].startswith("SendMessage"):
            break
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", default=str(ROOT / "bench" / "critical-path-results.json"))
    args = parser.parse_args(argv)
    results = measure()
    Path(args.json).write_text(json.dumps(results, indent=2))
    print(format_table(results))
    return 0


def measure() -> dict[str, Any]:  # noqa: PLR0915 - one linear script: set up, trace a hop, trace a fan-out
    """Trace a chain hop and 100 fan-out runner calls on a fresh local stack; the figures."""
    from taskfleet_functions.orchestrator import Claim, Outcome, Report, TaskSpec
    from taskfleet_local import LocalStack

    with LocalStack(lease_seconds=60, sweep_interval=3600.0) as stack:
        engine = stack.orchestrator
        assert engine is not None
        trace = Trace()
        trace.attach(engine.db.client, "dynamodb")
        trace.attach(engine.queues.client, "sqs")
        cluster = "default"
        leases: dict[str, str] = {}

        def claim(job_id: str, task_id: str, ref: Any = None) -> Claim:
            leases[task_id] = secrets.token_urlsafe(32)
            return Claim(job_id=job_id, task_id=task_id, cluster=cluster, lease=leases[task_id], ref=ref)

        def report(job_id: str, task_id: str, subtasks: tuple[Any, ...] = ()) -> Report:
            return Report(
                task_id=task_id,
                job_id=job_id,
                attempt=1,
                outcome=Outcome.COMPUTED,
                cluster=cluster,
                lease=leases[task_id],
                subtasks=subtasks,
            )

        def traced(call: Any) -> tuple[Any, list[tuple[float, float, str, str]]]:
            trace.take()
            trace.recording = True
            try:
                result = call()
            finally:
                trace.recording = False
            return result, trace.take()

        # --- a chain hop ------------------------------------------------------------------------------
        job = engine.submit_job("chain", [TaskSpec(name="Chain", version="v0.0")], cluster=cluster)
        job_id = job["job_id"]
        root = next(iter(engine.walk(job)))["task_id"]
        assert engine.claim(claim(job_id, root), "r").status == "run"
        hops = tuple(TaskSpec(name="Hop", version="v0.0", depends_on=(i - 1,) if i else ()) for i in range(4))
        assert engine.report(report(job_id, root, hops)).status == "ok"
        ids = [t["task_id"] for t in engine.walk(engine.get_job(job_id)) if t.get("parent_id") == root]
        assert engine.claim(claim(job_id, ids[0]), "r").status == "run"
        (reported, _), report_requests = traced(lambda: engine.next(report(job_id, ids[0]), None, "r"))
        assert reported is not None and reported.status == "ok"
        claimed, claim_requests = traced(lambda: engine.claim(claim(job_id, ids[1]), "r2"))
        assert claimed.status == "run", claimed
        report_path = steps(until_send(report_requests))
        claim_path = steps(claim_requests)
        hop_path = [*report_path, ["sqs:ReceiveMessage"], *claim_path]

        # --- a fan-out task, steady state ------------------------------------------------------------
        fan = engine.submit_job("fan-out", [TaskSpec(name="FanOut", version="v0.0")], cluster=cluster)
        fan_id = fan["job_id"]
        parent = next(iter(engine.walk(fan)))["task_id"]
        assert engine.claim(claim(fan_id, parent), "r").status == "run"
        leaves = tuple(TaskSpec(name="NoOp", version="v0.0", input={"i": i}) for i in range(250))
        assert engine.report(report(fan_id, parent, leaves)).status == "ok"
        from taskfleet import rules

        child = [rules.child_task_id(parent, 1, i) for i in range(len(leaves))]
        assert engine.claim(claim(fan_id, child[0], ref=(parent, 1, 0)), "r").status == "run"
        combined = []
        for i in range(1, 101):  # a whole bucket, so the bucket-full signal is in the sample once
            (rep, cl), requests = traced(
                lambda i=i: engine.next(report(fan_id, child[i - 1]), claim(fan_id, child[i], ref=(parent, 1, i)), "r")
            )
            assert rep is not None and rep.status == "ok" and cl is not None and cl.status == "run", (rep, cl)
            combined.append(requests)
    fan_steps = [len(steps(r)) for r in combined]
    fan_requests = [len(r) for r in combined]
    typical = steps(combined[len(combined) // 2])

    return {
        "chain_hop_sequential_requests": len(hop_path),
        "chain_hop_sequential_requests_issued": len(hop_path) - 1,
        "chain_hop_path": hop_path,
        "chain_hop_modelled_aws_ms": round(modelled_ms(hop_path, runner_calls=2), 1),
        "fanout_task_sequential_requests": round(sum(fan_steps) / len(fan_steps), 2),
        "fanout_task_requests_orchestrator": round(sum(fan_requests) / len(fan_requests), 2),
        "fanout_task_path_typical": typical,
        "fanout_task_modelled_aws_ms": round(
            sum(modelled_ms(steps(r), runner_calls=1) for r in combined) / len(combined), 1
        ),
        "model_ms_per_request": MODEL_MS,
        "model_sources": SOURCES,
    }


def format_table(r: dict[str, Any]) -> str:
    lines = [
        f"{'figure':<58}{'taskfleet':>10}  goal",
        "-" * 76,
        f"{'chain hop: sequential AWS requests (incl. the receive)':<58}{r['chain_hop_sequential_requests']:>10}",
        f"{'chain hop: sequential requests issued after the task':<58}"
        f"{r['chain_hop_sequential_requests_issued']:>10}  <= 4",
        f"{'chain hop: modelled AWS latency (ms)':<58}{r['chain_hop_modelled_aws_ms']:>10}",
        f"{'fan-out task: sequential requests per runner call':<58}{r['fanout_task_sequential_requests']:>10}",
        f"{'fan-out task: orchestrator requests per runner call':<58}{r['fanout_task_requests_orchestrator']:>10}",
        f"{'fan-out task: modelled AWS latency of its call (ms)':<58}{r['fanout_task_modelled_aws_ms']:>10}",
        "",
        "chain hop path: " + " -> ".join("+".join(s) for s in r["chain_hop_path"]),
        "fan-out call path: " + " -> ".join("+".join(s) for s in r["fanout_task_path_typical"]),
        "model (ms per request): " + ", ".join(f"{k} {v}" for k, v in r["model_ms_per_request"].items()),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
