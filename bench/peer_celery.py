"""Peer benchmark (issue 5): Celery 5.7 on the AWS substrate taskfleet uses, emulated by moto.

Broker: kombu's SQS transport on one FIFO queue, one message group per task (the group id is the task
id, set by bench/peer_tasks.py through Celery's before_task_publish signal). Result backend: Celery's
DynamoDB backend. Both point at taskfleet's Emulator (moto's server in a child process), which counts every
AWS request by service and action.

Workers are real subprocesses: by default one ``celery worker --pool prefork --concurrency 2`` (one
consumer process that polls SQS plus two child processes that run tasks); ``--pool solo`` starts two
separate ``celery worker --pool solo`` processes instead (two consumers, each running its own tasks).

Workloads, measured the way taskfleet is measured:
- fan-out: the client submits one task that submits N no-op subtasks (a Celery group) and returns their
  ids; the client then waits for all N results (ResultSet.join_native: it polls DynamoDB GetItem for
  the pending ids). Wall time is from the submission to the last result read by the client.
- chain: a Celery chain of C dependent tasks; each hop records its start time (execution log), the
  per-hop latency is the difference between consecutive start times.

AWS requests are counted at the emulator (everyone) and, in this process, per botocore HTTP attempt
(the waiting client); Celery's own requests (workers: broker + backend) are the difference.

Usage (from the repository root):
    python -m bench.peer_celery [--fanout N] [--chain N] [--json out.json] [--pool prefork|solo]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}

WORKER_READY_TIMEOUT_S = 60.0
WORKER_STOP_TIMEOUT_S = 15.0


class PeerBenchmarkError(RuntimeError):
    pass


# --------------------------------------------------------------------------- client-side request counts


class ClientRequestCounter:
    """Counts this process's botocore HTTP attempts to one endpoint, as "service:Action".

    Wraps botocore's per-attempt send (Endpoint._do_get_response), so retries count like the emulator
    counts them, and every client in the process (kombu's, Celery's backend's) is covered.
    """

    def __init__(self, endpoint_url: str) -> None:
        self._endpoint = endpoint_url.rstrip("/")
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self._original: Any = None

    def __enter__(self) -> ClientRequestCounter:
        from botocore.endpoint import Endpoint

        original = Endpoint._do_get_response
        counter = self

        def counting(endpoint: Any, request: Any, operation_model: Any, context: Any) -> Any:
            if str(getattr(request, "url", "")).startswith(counter._endpoint):
                key = f"{operation_model.service_model.endpoint_prefix}:{operation_model.name}"
                with counter._lock:
                    counter.counts[key] += 1
            return original(endpoint, request, operation_model, context)

        self._original = original
        Endpoint._do_get_response = counting
        return self

    def __exit__(self, *exc: object) -> None:
        from botocore.endpoint import Endpoint

        if self._original is not None:
            Endpoint._do_get_response = self._original
            self._original = None

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()


# --------------------------------------------------------------------------- workers


@contextlib.contextmanager
def _workers(
    pool: str,
    env: dict[str, str],
    queue: str,
    log_dir: Path,
    ready_dir: Path,
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start the Celery workers as subprocesses (each in its own process group) and always stop them."""
    if pool == "prefork":
        specs = [("peer1", ["--pool", "prefork", "--concurrency", "2"])]
    elif pool == "solo":
        specs = [("peer1", ["--pool", "solo"]), ("peer2", ["--pool", "solo"])]
    else:
        raise ValueError(f"pool must be 'prefork' or 'solo', not {pool!r}")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name, pool_args in specs:
            cmd = [
                sys.executable, "-m", "celery", "-A", "peer_tasks", "worker",
                *pool_args,
                "-n", f"{name}@bench",
                "-Q", queue,
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--loglevel", "WARNING",
                "--logfile", str(log_dir / f"{name}.log"),
            ]  # fmt: skip
            out = open(log_dir / f"{name}.out", "wb")  # noqa: SIM115 - closed with the process below
            try:
                procs.append(
                    subprocess.Popen(
                        cmd, cwd=BENCH_DIR, env=env, stdin=subprocess.DEVNULL,
                        stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                    )
                )  # fmt: skip
            finally:
                out.close()
        _wait_ready(procs, [f"{name}@bench" for name, _ in specs], ready_dir, log_dir)
        yield procs
    finally:
        _stop_workers(procs)


def _wait_ready(procs: list[subprocess.Popen[bytes]], names: list[str], ready_dir: Path, log_dir: Path) -> None:
    deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
    while True:
        if all((ready_dir / f"{n}.ready").exists() for n in names):
            return
        for p in procs:
            if p.poll() is not None:
                raise PeerBenchmarkError(f"celery worker exited with {p.returncode}\n{_log_tail(log_dir)}")
        if time.monotonic() > deadline:
            raise PeerBenchmarkError(f"celery workers not ready after {WORKER_READY_TIMEOUT_S}s\n{_log_tail(log_dir)}")
        time.sleep(0.05)  # polls a condition (ready files), bounded by the deadline


def _stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each worker's process group (the worker and its pool children), SIGKILL what is left."""
    for p in procs:
        _signal_group(p, signal.SIGTERM)
    deadline = time.monotonic() + WORKER_STOP_TIMEOUT_S
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
    for p in procs:
        # The group may still hold pool children even after the main process exited.
        _signal_group(p, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=5)


def _signal_group(p: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(p.pid, sig)  # the group id is the worker's pid (start_new_session)


def _log_tail(log_dir: Path, chars: int = 3000) -> str:
    parts = []
    for f in sorted(log_dir.glob("*")):
        if f.is_file():
            text = f.read_text(errors="replace")
            if text.strip():
                parts.append(f"--- {f.name}\n{text[-chars:]}")
    return "\n".join(parts)


# --------------------------------------------------------------------------- measurements


def _read_exec_log(path: Path) -> list[tuple[str, str, float, float]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        kind, task_id, start, end = line.split()
        rows.append((kind, task_id, float(start), float(end)))
    return rows


def _percentile(values: list[float], q: float) -> float:
    """Linear-interpolation percentile (q in 0..100)."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def _subtract(total: dict[str, int], part: dict[str, int]) -> dict[str, int]:
    keys = set(total) | set(part)
    return {k: total.get(k, 0) - part.get(k, 0) for k in sorted(keys) if total.get(k, 0) - part.get(k, 0)}


def _per_task(counts: dict[str, int], tasks: int) -> dict[str, float]:
    return {k: round(v / tasks, 3) for k, v in sorted(counts.items())}


def _deadline_guard(deadline: float, what: str) -> Any:
    def check() -> None:
        if time.monotonic() > deadline:
            raise PeerBenchmarkError(f"timed out waiting for {what}")

    return check


def _join(app: Any, ids: list[str], timeout: float, interval: float, what: str) -> list[Any]:
    from celery.result import AsyncResult, ResultSet

    rs = ResultSet([AsyncResult(i, app=app) for i in ids], app=app)
    deadline = time.monotonic() + timeout
    # join_native polls GetItem for every pending id each round, then sleeps `interval`. Its own timeout
    # counts only the sleeps, so a wall-clock guard runs between rounds as well.
    return rs.join_native(timeout=timeout, interval=interval, on_interval=_deadline_guard(deadline, what))


def _run_fanout(app: Any, n: int, timeout: float, interval: float) -> tuple[float, list[str]]:
    t0 = time.perf_counter()
    parent = app.send_task("peer.fanout", args=(n,))
    ids = _join(app, [parent.id], timeout, interval, "the fan-out parent")[0]
    remaining = timeout - (time.perf_counter() - t0)
    if remaining <= 0:
        raise PeerBenchmarkError(f"timed out before the {n} fan-out subtasks were submitted")
    results = _join(app, ids, remaining, interval, f"{n} fan-out results") if n else []
    wall = time.perf_counter() - t0
    if results != list(range(n)):
        missing = sum(1 for i, r in enumerate(results) if r != i) + max(0, n - len(results))
        raise PeerBenchmarkError(f"fan-out: {missing} of {n} results missing or wrong")
    return wall, [parent.id, *ids]


def _run_chain(app: Any, length: int, timeout: float, interval: float) -> tuple[float, list[str]]:
    from celery import chain

    sigs = [app.signature("peer.hop", args=(0,))] + [app.signature("peer.hop") for _ in range(length - 1)]
    t0 = time.perf_counter()
    last = chain(*sigs, app=app).apply_async()
    ids = []
    node = last
    while node is not None:
        ids.append(node.id)
        node = node.parent
    ids.reverse()
    result = _join(app, [last.id], timeout, interval, f"a chain of {length}")[0]
    wall = time.perf_counter() - t0
    if result != length:
        raise PeerBenchmarkError(f"chain: result {result!r}, expected {length}")
    return wall, ids


def run_peer(  # noqa: PLR0915 - one linear script: set up, warm up, measure, tear down, then the figures
    fanout: int = 500,
    chain: int = 30,
    *,
    pool: str = "prefork",
    group_mode: str = "task",
    polling_interval: float = 0.1,
    wait_time_seconds: int = 10,
    prefetch_multiplier: int = 4,
    client_interval: float = 0.5,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Run the Celery peer benchmark and return its figures (see module docstring).

    Starts and stops everything itself: emulator, queue, table, workers; subprocesses are stopped
    even on errors. Every wait is bounded (``timeout_s`` per workload; by default it scales with size).
    """
    if fanout < 1 or chain < 2:
        raise ValueError("need fanout >= 1 and chain >= 2")
    import boto3
    import celery
    import kombu
    from taskfleet_local.emulator import Emulator

    from bench.peer_tasks import make_app

    fanout_timeout = timeout_s or 120.0 + 0.5 * fanout
    chain_timeout = timeout_s or 60.0 + 2.0 * chain
    suffix = uuid.uuid4().hex[:8]
    queue = f"peer-{suffix}.fifo"
    table = f"peer-results-{suffix}"

    emulator = Emulator().start()
    try:
        url = emulator.url
        aws = dict(region_name="us-east-1", endpoint_url=url,
                   aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
        boto3.client("sqs", **aws).create_queue(
            QueueName=queue, Attributes={"FifoQueue": "true", "VisibilityTimeout": "1800"}
        )
        boto3.client("dynamodb", **aws).create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        with tempfile.TemporaryDirectory(prefix="peer-celery-") as tmp:
            tmpdir = Path(tmp)
            exec_log = tmpdir / "executions.log"
            ready_dir = tmpdir / "ready"
            ready_dir.mkdir()
            env = {
                **os.environ,
                **FAKE_AWS_ENV,
                "PYTHONPATH": os.pathsep.join([str(BENCH_DIR), str(ROOT / "sdk")]),
                "PEER_ENDPOINT": url,
                "PEER_QUEUE": queue,
                "PEER_TABLE": table,
                "PEER_EXEC_LOG": str(exec_log),
                "PEER_READY_DIR": str(ready_dir),
                "PEER_POLLING_INTERVAL": str(polling_interval),
                "PEER_WAIT_TIME_SECONDS": str(wait_time_seconds),
                "PEER_PREFETCH_MULTIPLIER": str(prefetch_multiplier),
                "PEER_GROUP_MODE": group_mode,
            }
            app = make_app(
                url, queue, table,
                polling_interval=polling_interval, wait_time_seconds=wait_time_seconds,
                prefetch_multiplier=prefetch_multiplier, group_mode=group_mode,
            )  # fmt: skip
            try:
                with ClientRequestCounter(url) as client_counter, _workers(pool, env, queue, tmpdir, ready_dir):
                    try:
                        # Warm-up: worker children connect to SQS and DynamoDB on first use.
                        _run_fanout(app, 4, fanout_timeout, client_interval)
                        _run_chain(app, 3, chain_timeout, client_interval)

                        emulator.reset_counts()
                        client_counter.reset()
                        fanout_wall, fanout_ids = _run_fanout(app, fanout, fanout_timeout, client_interval)
                        fanout_total = emulator.request_counts()
                        fanout_client = client_counter.snapshot()

                        emulator.reset_counts()
                        client_counter.reset()
                        chain_wall, chain_ids = _run_chain(app, chain, chain_timeout, client_interval)
                        chain_total = emulator.request_counts()
                        chain_client = client_counter.snapshot()
                    except Exception as e:
                        # With the workers' logs, read before the temporary directory goes away.
                        raise PeerBenchmarkError(f"{type(e).__name__}: {e}\n{_log_tail(tmpdir)}") from e
            finally:
                with contextlib.suppress(Exception):
                    app.close()
            executions = _read_exec_log(exec_log)
        patches = emulator.patch_report()
    finally:
        emulator.stop()

    per_id = Counter(task_id for _, task_id, _, _ in executions)
    duplicates = sum(c - 1 for c in per_id.values() if c > 1)
    first: dict[str, tuple[float, float]] = {}
    for _, task_id, start, end in executions:
        first.setdefault(task_id, (start, end))
    missing = [i for i in fanout_ids + chain_ids if i not in first]
    if missing:
        raise PeerBenchmarkError(f"{len(missing)} tasks have a result but no execution record")

    hop_starts = [first[i][0] for i in chain_ids]
    hops_ms = [(b - a) * 1000.0 for a, b in itertools.pairwise(hop_starts)]
    noop_spans = [first[i] for i in fanout_ids[1:]]
    parent_span = first[fanout_ids[0]]

    fanout_tasks = fanout + 1  # the parent and its N subtasks
    fanout_celery = _subtract(fanout_total, fanout_client)
    chain_celery = _subtract(chain_total, chain_client)

    def total(c: dict[str, int]) -> int:
        return sum(c.values())

    return {
        "peer": "celery",
        "versions": {"celery": celery.__version__, "kombu": kombu.__version__},
        "emulator": patches,
        "config": {
            "pool": pool,
            "worker_processes": "1 worker, prefork concurrency 2" if pool == "prefork" else "2 workers, pool solo",
            "message_groups": "one per task" if group_mode == "task" else "one for all tasks (kombu default)",
            "polling_interval_s": polling_interval,
            "wait_time_seconds": wait_time_seconds,
            "prefetch_multiplier": prefetch_multiplier,
            "client_poll_interval_s": client_interval,
        },
        "fanout": fanout,
        "chain": chain,
        "fanout_wall_s": round(fanout_wall, 3),
        "throughput_tasks_per_s": round(fanout / fanout_wall, 2),
        # From the tasks' own timestamps: the parent's submission loop, and first subtask start to last end.
        "fanout_parent_submit_s": round(parent_span[1] - parent_span[0], 3),
        "fanout_execution_span_s": round(max(e for _, e in noop_spans) - min(s for s, _ in noop_spans), 3),
        "chain_wall_s": round(chain_wall, 3),
        "chain_hop_ms_median": round(statistics.median(hops_ms), 2),
        "chain_hop_ms_p90": round(_percentile(hops_ms, 90), 2),
        "chain_hop_ms_max": round(max(hops_ms), 2),
        # Fan-out job, per task (parent + N subtasks): everyone, Celery itself (workers), waiting client.
        "tasks_in_fanout": fanout_tasks,
        "requests_per_task": round(total(fanout_total) / fanout_tasks, 3),
        "requests_per_task_celery": round(total(fanout_celery) / fanout_tasks, 3),
        "requests_per_task_client": round(total(fanout_client) / fanout_tasks, 3),
        "requests_by_action": _per_task(fanout_total, fanout_tasks),
        "requests_by_action_celery": _per_task(fanout_celery, fanout_tasks),
        "requests_by_action_client": _per_task(fanout_client, fanout_tasks),
        "chain_requests_per_task": round(total(chain_total) / chain, 3),
        "chain_requests_per_task_celery": round(total(chain_celery) / chain, 3),
        "chain_requests_per_task_client": round(total(chain_client) / chain, 3),
        "chain_requests_by_action_celery": _per_task(chain_celery, chain),
        "chain_requests_by_action_client": _per_task(chain_client, chain),
        "raw_request_counts": {
            "fanout_total": fanout_total,
            "fanout_client": fanout_client,
            "chain_total": chain_total,
            "chain_client": chain_client,
        },
        "executions": len(executions),
        "duplicate_executions": duplicates,
    }


def format_table(r: dict[str, Any]) -> str:
    c = r["config"]
    lines = [
        f"Celery {r['versions']['celery']} / kombu {r['versions']['kombu']} on moto "
        f"({c['worker_processes']}; message groups: {c['message_groups']}; "
        f"polling_interval {c['polling_interval_s']} s)",
        f"{'fan-out tasks':<34}{r['fanout']:>12}",
        f"{'fan-out wall (s)':<34}{r['fanout_wall_s']:>12.2f}",
        f"{'throughput (tasks/s)':<34}{r['throughput_tasks_per_s']:>12.1f}",
        f"{'  parent submit loop (s)':<34}{r['fanout_parent_submit_s']:>12.2f}",
        f"{'chain hops':<34}{r['chain']:>12}",
        f"{'chain hop p50 (ms)':<34}{r['chain_hop_ms_median']:>12.1f}",
        f"{'chain hop p90 (ms)':<34}{r['chain_hop_ms_p90']:>12.1f}",
        f"{'requests/task, fan-out (all)':<34}{r['requests_per_task']:>12.2f}",
        f"{'  by Celery (workers)':<34}{r['requests_per_task_celery']:>12.2f}",
        f"{'  by the waiting client':<34}{r['requests_per_task_client']:>12.2f}",
        f"{'requests/task, chain (all)':<34}{r['chain_requests_per_task']:>12.2f}",
        f"{'  by Celery (workers)':<34}{r['chain_requests_per_task_celery']:>12.2f}",
        f"{'  by the waiting client':<34}{r['chain_requests_per_task_client']:>12.2f}",
        f"{'duplicate executions':<34}{r['duplicate_executions']:>12}",
        "fan-out requests per task by action (Celery | client):",
    ]
    actions = sorted(set(r["requests_by_action_celery"]) | set(r["requests_by_action_client"]))
    for a in actions:
        lines.append(
            f"  {a:<32}{r['requests_by_action_celery'].get(a, 0):>10.3f} | "
            f"{r['requests_by_action_client'].get(a, 0):>7.3f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fanout", type=int, default=500, help="subtasks in the fan-out (default 500)")
    ap.add_argument("--chain", type=int, default=30, help="tasks in the chain (default 30)")
    ap.add_argument("--json", type=Path, help="write the figures as JSON to this file")
    ap.add_argument("--pool", choices=["prefork", "solo"], default="prefork",
                    help="prefork: 1 worker, concurrency 2 (default); solo: 2 worker processes")  # fmt: skip
    ap.add_argument("--group-mode", choices=["task", "single"], default="task",
                    help="FIFO message groups: one per task (default) or one for all (Celery's default)")  # fmt: skip
    ap.add_argument("--polling-interval", type=float, default=0.1, help="kombu SQS polling_interval (s)")
    ap.add_argument("--prefetch-multiplier", type=int, default=4)
    ap.add_argument("--client-interval", type=float, default=0.5,
                    help="result polling interval of the waiting client (s; Celery's default 0.5)")  # fmt: skip
    ap.add_argument("--timeout", type=float, default=None, help="per-workload timeout (s)")
    args = ap.parse_args(argv)

    def on_term(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)  # so the finally blocks stop the workers and the emulator

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        result = run_peer(
            args.fanout, args.chain, pool=args.pool, group_mode=args.group_mode,
            polling_interval=args.polling_interval, prefetch_multiplier=args.prefetch_multiplier,
            client_interval=args.client_interval, timeout_s=args.timeout,
        )  # fmt: skip
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(format_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
