"""One conformance scenario with the unmodified Tilebox SDK against taskfleet; prints one JSON line.

Runs the scenario with tilebox-workflows 0.66.0 against a taskfleet API's Connect endpoint, and prints ONE
JSON line on stdout with what the SDK saw.

    build/tilebox-venv/bin/python tests/tilebox/scenario.py <name> --url U --token T [--cluster S] ...

Runs ONLY under build/tilebox-venv (`make tilebox`); tests/tilebox/conftest.py's `run_tilebox` starts it with
tests/tilebox on PYTHONPATH and TILEBOX_API_URL/TILEBOX_API_KEY removed. The JSON line is
{"scenario": name, "ok": true, ...}; on an exception it is {"ok": false, "error": <class name>, "message": ...,
plus what was seen before}, with exit status 1. The SDK's console log goes to stderr.

`runner` is no scenario: it serves the given cluster with run_forever() until SIGTERM (conftest's
`start_tilebox_runner`), then prints {"scenario": "runner", "ok": true, "stopped": "SIGTERM"}.

Every client uses transport="http1" (Connect over HTTP/1.1, binary protobuf). `--token` is the key for the
client calls (clusters, jobs: an admin key); `--runner-token` the key the runner on `--cluster` uses (a runner
key; default: --token), `--other-runner-token` the one of the runner on `--other-cluster`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

# Before anything else of the SDK: its console log goes to stderr, so that stdout holds the JSON line alone
# (this module is the lease renewer's __mp_main__ too, which configures logging again on its own).
from tilebox.workflows.observability.logging import configure_console_logging

configure_console_logging(stream=sys.stderr)

import tilebox_workflows as wf  # noqa: E402 - after the logging setup
from _tilebox.grpc.error import AuthenticationError, NotFoundError  # noqa: E402
from _tilebox.grpc.pagination import paginated_request  # noqa: E402
from tilebox.datasets.query.pagination import Pagination  # noqa: E402
from tilebox.datasets.query.time_interval import TimeInterval  # noqa: E402
from tilebox.workflows import Client, Task  # noqa: E402
from tilebox.workflows.cache import LocalFileSystemCache  # noqa: E402
from tilebox.workflows.data import Cluster, Job, JobState, QueryFilters  # noqa: E402

TERMINAL = {JobState.COMPLETED, JobState.FAILED, JobState.CANCELED}
SCENARIOS: dict[str, Callable[[argparse.Namespace, dict[str, Any]], None]] = {}


def scenario(fn: Callable[[argparse.Namespace, dict[str, Any]], None]) -> Callable[..., None]:
    SCENARIOS[fn.__name__] = fn
    return fn


# --- what the SDK saw, as JSON ------------------------------------------------------------------------------


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def job_view(job: Job) -> dict[str, Any]:
    stats = job.execution_stats
    return {
        "id": str(job.id),
        "name": job.name,
        "state": job.state.name,
        "trace_parent": job.trace_parent,
        "submitted_at": iso(job.submitted_at),
        "progress": [{"label": p.label, "total": p.total, "done": p.done} for p in job.progress],
        "execution_stats": {
            "first_task_started_at": iso(stats.first_task_started_at),
            "last_task_stopped_at": iso(stats.last_task_stopped_at),
            "compute_time": stats.compute_time.total_seconds(),
            "elapsed_time": stats.elapsed_time.total_seconds(),
            "parallelism": stats.parallelism,
            "total_tasks": stats.total_tasks,
            "tasks_by_state": {state.name: count for state, count in stats.tasks_by_state.items()},
        },
    }


def cluster_view(cluster: Cluster) -> dict[str, Any]:
    return {
        "slug": cluster.slug,
        "display_name": cluster.display_name,
        "description": cluster.description,
        "deletable": cluster.deletable,
    }


def error_name(call: Callable[[], Any]) -> str | None:
    """The class name of what `call` raises (None: nothing)."""
    try:
        call()
    except Exception as err:
        return type(err).__name__
    return None


# --- clients and runners ------------------------------------------------------------------------------------


def client(args: argparse.Namespace, token: str | None = None) -> Client:
    return Client(url=args.url, token=token or args.token, transport="http1")


def runner(
    args: argparse.Namespace, tasks: list[type[Task]], *, cluster: str | None = None, token: str | None = None
) -> Any:
    """A Tilebox runner on `cluster` (default --cluster), with a job cache on the test directory."""
    cache = LocalFileSystemCache(wf.test_dir() / "cache")
    return client(args, token or args.runner_token).runner(cluster=cluster or args.cluster, tasks=tasks, cache=cache)


def run_until_done(args: argparse.Namespace, job: Job, runners: list[tuple[str, Any]]) -> Job:
    """run_all() on each runner in turn (recording which ran a task), until the job is COMPLETED, FAILED or
    CANCELED. run_all returns at the first idle answer, which may come while another runner's work, a
    retry or the subtasks of a just computed task are on their way: so loop, bounded by --timeout."""
    jobs = client(args).jobs()
    deadline = time.monotonic() + args.timeout
    while True:
        for name, each in runners:
            wf.CURRENT_RUNNER = name
            each.run_all()
        current = jobs.find(job)
        if current.state in TERMINAL:
            return current
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job.id} still {current.state.name} after {args.timeout} s")
        time.sleep(0.1)


def executions(job: Job | None = None) -> list[dict[str, Any]]:
    seen = wf.executions()
    return [e for e in seen if job is None or e["job_id"] == str(job.id)]


def ids(found: list[Job]) -> list[str]:
    return [str(j.id) for j in found]


def tag() -> str:
    return f"conformance-{uuid.uuid4().hex[:8]}"


# --- scenarios ----------------------------------------------------------------------------------------------


@scenario
def clusters(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """create/find/all/update/delete; find("") is the default cluster; find("nope") raises NotFoundError."""
    api = client(args).clusters()
    suffix = uuid.uuid4().hex[:6]
    created = api.create(f"Tilebox conformance {suffix}", description="made by the Tilebox SDK")
    out["created"] = cluster_view(created)
    out["found"] = cluster_view(api.find(created.slug))
    out["default"] = cluster_view(api.find(""))
    explicit = api.create(f"explicit {suffix}", slug=f"tb-explicit-{suffix}")
    out["explicit"] = cluster_view(explicit)
    out["all"] = sorted(c.slug for c in api.all())
    out["updated_name"] = cluster_view(api.update(created.slug, name=f"renamed {suffix}"))
    out["updated_description"] = cluster_view(api.update(created, description="changed description"))
    out["after_update"] = cluster_view(api.find(created.slug))
    api.delete(explicit.slug)
    out["deleted"] = explicit.slug
    out["find_deleted_error"] = error_name(lambda: api.find(explicit.slug))
    out["find_nope_error"] = error_name(lambda: api.find("nope"))
    out["delete_default_error"] = error_name(lambda: api.delete(out["default"]["slug"]))
    out["all_after_delete"] = sorted(c.slug for c in api.all())


@scenario
def jobs(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """submit (two roots: default cluster and --cluster), find, query (name, time interval, states, more than
    one page), cancel, retry. No runner: the jobs stay queued until canceled."""
    api = client(args).jobs()
    name = tag()
    out["tag"] = name
    # the trace parent the SDK sends with SubmitJob (a W3C traceparent of its job span): Job.trace_parent echoes it
    sent: list[str] = []
    submit = api._service.submit

    def capturing(job_name: str, trace_parent: str, tasks: Any) -> Job:
        sent.append(trace_parent)
        return submit(job_name, trace_parent, tasks)

    api._service.submit = capturing
    two_roots = api.submit(f"{name}-two-roots", [wf.Leaf("root-a"), wf.Leaf("root-b")], cluster=["", args.cluster])
    api._service.submit = submit
    out["sent_trace_parent"] = sent[0]
    out["two_roots"] = job_view(two_roots)
    out["found"] = job_view(api.find(two_roots.id))
    out["found_by_str"] = job_view(api.find(str(two_roots.id)))
    batch = []
    for i in range(args.n):
        batch.append(api.submit(f"{name}-batch-{i}", wf.Leaf(f"batch-{i}"), cluster=args.cluster))
        time.sleep(0.005)  # distinct submission times, for the interval bounds below
    out["batch"] = [job_view(j) for j in batch]

    # name (fuzzy, case-insensitive), counting the pages the SDK's own pagination asked for
    pages = {"n": 0}
    query = api._service.query

    def counted(filters: QueryFilters, page: Pagination | None = None) -> Any:
        pages["n"] += 1
        return query(filters, page)

    api._service.query = counted
    out["by_name"] = ids(api.query(name=name.upper()))
    out["by_name_pages"] = pages["n"]
    api._service.query = query

    # time intervals: [first, last) leaves out the last; (first, last] the first; the two-roots job is earlier
    first, last = batch[0].submitted_at, batch[-1].submitted_at
    out["interval_half_open"] = ids(api.query((first, last), name=name))
    out["interval_start_exclusive"] = ids(
        api.query(TimeInterval(first, last, start_exclusive=True, end_inclusive=True), name=name)
    )
    out["interval_wide"] = ids(api.query((first - timedelta(hours=1), last + timedelta(hours=1)), name=name))

    # more than one page, whatever the server's default page size: the SDK's paging with a limit of 2
    filters = QueryFilters(
        time_interval=None, id_interval=None, automation_ids=[], job_states=[], name=name, task_states=[]
    )
    small_pages = list(
        paginated_request(
            lambda page: api._service.query(filters, Pagination(page.limit, page.starting_after)),
            Pagination(limit=2),
        )
    )
    out["small_pages"] = [ids(page.jobs) for page in small_pages]

    # cancel one, then filter by state
    api.cancel(batch[0])
    out["canceled"] = job_view(api.find(batch[0].id))
    out["by_state_canceled"] = ids(api.query(job_states=JobState.CANCELED, name=name))
    out["by_state_submitted"] = ids(api.query(job_states=[JobState.SUBMITTED], name=name))
    out["retry_canceled"] = api.retry(batch[0])
    out["after_retry"] = job_view(api.find(batch[0].id))

    # leave nothing queued behind
    for job in [two_roots, *batch]:
        api.cancel(job.id)
    out["final_states"] = {str(j.id): api.find(j.id).state.name for j in [two_roots, *batch]}
    out["find_unknown_error"] = error_name(lambda: api.find(uuid.uuid4()))


@scenario
def dependencies(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """first (2 children) -> second, third -> last: order as the dependencies say."""
    job = client(args).jobs().submit(tag(), wf.DependenciesRoot(), cluster=args.cluster)
    out["submitted"] = job_view(job)
    done = run_until_done(args, job, [("a", runner(args, [wf.DependenciesRoot, wf.PrintTask]))])
    out["job"] = job_view(done)
    out["executions"] = executions(done)


@scenario
def fanout(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """SumOfSquares(1..n): n Square tasks, then Sum after all of them (the job cache carries the squares)."""
    numbers = list(range(1, args.n + 1))
    job = client(args).jobs().submit(tag(), wf.SumOfSquares(numbers), cluster=args.cluster)
    done = run_until_done(args, job, [("a", runner(args, [wf.SumOfSquares, wf.Square, wf.Sum]))])
    out["job"] = job_view(done)
    out["expected_sum"] = sum(n * n for n in numbers)
    out["executions"] = executions(done)


@scenario
def routing(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """a (--cluster) -> b (--other-cluster, run by the second runner) -> c (--cluster)."""
    if not args.other_cluster:
        raise SystemExit("routing needs --other-cluster (and --other-runner-token)")
    job = client(args).jobs().submit(tag(), wf.MultiCluster(args.other_cluster), cluster=args.cluster)
    here = runner(args, [wf.MultiCluster, wf.DummyTask])
    there = runner(args, [wf.DummyTask], cluster=args.other_cluster, token=args.other_runner_token)
    done = run_until_done(args, job, [("a", here), ("b", there)])
    out["job"] = job_view(done)
    out["executions"] = executions(done)


@scenario
def versions(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """v1.3 submitted: runners of v2.0 and v1.2 get nothing, the v1.5 runner runs it (as v1.5)."""
    job = client(args).jobs().submit(tag(), wf.VersionedV13("versioned"), cluster=args.cluster)
    wf.CURRENT_RUNNER = "v2.0"
    runner(args, [wf.VersionedV20]).run_all()
    wf.CURRENT_RUNNER = "v1.2"
    runner(args, [wf.VersionedV12]).run_all()
    out["before_v15"] = job_view(client(args).jobs().find(job))
    out["executions_before_v15"] = executions(job)
    done = run_until_done(args, job, [("v1.5", runner(args, [wf.VersionedV15]))])
    out["job"] = job_view(done)
    out["executions"] = executions(done)


@scenario
def failure_and_retry(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """recovers: a subtask failing twice with max_retries=2 (3 runs, COMPLETED); exhausted: a root failing
    with max_retries=1 (2 runs, FAILED), then jobs().retry() and fixed (COMPLETED); always: FAILED for good."""
    api = client(args).jobs()
    name = tag()
    tasks = [wf.FlakyRoot, wf.FailTimes, wf.FailWhileBroken, wf.FailAlways]
    each = runner(args, tasks)

    recovers = api.submit(f"{name}-recovers", wf.FlakyRoot("recovers", failures=2, retries=2), cluster=args.cluster)
    done = run_until_done(args, recovers, [("a", each)])
    out["recovers"] = {"job": job_view(done), "executions": executions(done)}

    (wf.test_dir() / "broken-exhausted").write_text("")
    exhausted = api.submit(f"{name}-exhausted", wf.FailWhileBroken("exhausted"), cluster=args.cluster, max_retries=1)
    failed = run_until_done(args, exhausted, [("a", each)])
    out["exhausted"] = {"job": job_view(failed), "executions": executions(failed)}
    (wf.test_dir() / "broken-exhausted").unlink()
    out["retried"] = api.retry(exhausted)
    out["after_retry"] = job_view(api.find(exhausted))
    fixed = run_until_done(args, exhausted, [("a", each)])
    out["fixed"] = {"job": job_view(fixed), "executions": executions(fixed)}

    always = api.submit(f"{name}-always", wf.FailAlways("always"), cluster=args.cluster)
    failed_for_good = run_until_done(args, always, [("a", each)])
    out["always"] = {"job": job_view(failed_for_good), "executions": executions(failed_for_good)}


@scenario
def optional(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """OptionalRoot: the optional step fails, the final step (depending on it) runs, the job COMPLETES.
    Pipeline: inside the optional subtree Step1 fails, Step2 behind it is SKIPPED, AlwaysRuns runs."""
    api = client(args).jobs()
    name = tag()
    each = runner(
        args,
        [
            wf.OptionalRoot,
            wf.RequiredStep,
            wf.FlakyStep,
            wf.FinalStep,
            wf.Pipeline,
            wf.OptionalProcessing,
            wf.Step1,
            wf.Step2,
            wf.AlwaysRuns,
        ],
    )
    for key, root in (("optional", wf.OptionalRoot()), ("nested", wf.Pipeline())):
        job = api.submit(f"{name}-{key}", root, cluster=args.cluster)
        done = run_until_done(args, job, [("a", each)])
        out[key] = {"job": job_view(done), "executions": executions(done)}


@scenario
def progress(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """One job, three roots: ProgressRootTask(n) (the unlabelled indicator), MultiProgressWorkflowRoot(n)
    (finalize, step1, step2) and DisplayRoot(3) (displays set by the tasks)."""
    n = args.n
    roots = [wf.ProgressRootTask(n), wf.MultiProgressWorkflowRoot(n), wf.DisplayRoot(3)]
    job = client(args).jobs().submit(tag(), roots, cluster=args.cluster)
    out["submitted"] = job_view(job)
    tasks = [
        wf.ProgressRootTask,
        wf.ProgressSubTask,
        wf.MultiProgressWorkflowRoot,
        wf.Process,
        wf.ProgressStep1,
        wf.ProgressStep2,
        wf.Finalize,
        wf.DisplayRoot,
        wf.DisplaySubTask,
    ]
    done = run_until_done(args, job, [("a", runner(args, tasks))])
    out["job"] = job_view(done)
    out["executions"] = executions(done)


@scenario
def mixed(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """MixedRoot(n) on --cluster, where a taskfleet runner (started by the test) serves MixedFleet and
    MixedFleetPing; this runner serves MixedRoot, MixedTileboxLeaf and MixedFinal."""
    job = client(args).jobs().submit(tag(), wf.MixedRoot(args.n), cluster=args.cluster)
    done = run_until_done(args, job, [("a", runner(args, [wf.MixedRoot, wf.MixedTileboxLeaf, wf.MixedFinal]))])
    out["job"] = job_view(done)
    out["executions"] = executions(done)


@scenario
def bad_token(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """A made-up key, no key at all, a runner key submitting, a runner key reaching another cluster: each
    an AuthenticationError."""
    bogus = Client(url=args.url, token="tfk_0000000000000000_" + "x" * 43, transport="http1")
    out["bogus_clusters_all"] = error_name(lambda: bogus.clusters().all())
    out["bogus_submit"] = error_name(lambda: bogus.jobs().submit(tag(), wf.Leaf("x"), cluster=args.cluster))
    out["bogus_runner"] = error_name(lambda: bogus.runner(cluster=args.cluster, tasks=[wf.Leaf]))
    nobody = Client(url=args.url, token=None, transport="http1")
    out["no_token_clusters_all"] = error_name(lambda: nobody.clusters().all())
    if args.runner_token != args.token:
        runner_client = client(args, args.runner_token)
        out["runner_key_submit"] = error_name(
            lambda: runner_client.jobs().submit(tag(), wf.Leaf("x"), cluster=args.cluster)
        )
        out["runner_key_own_cluster"] = error_name(lambda: runner_client.clusters().find(args.cluster))
        if args.other_cluster:
            out["runner_key_other_cluster"] = error_name(
                lambda: runner_client.runner(cluster=args.other_cluster, tasks=[wf.Leaf])
            )
    out["expected"] = AuthenticationError.__name__
    out["not_found"] = NotFoundError.__name__


def serve(args: argparse.Namespace, out: dict[str, Any]) -> None:
    """run_forever() on --cluster until SIGTERM (the SDK's graceful shutdown ends in KeyboardInterrupt)."""
    names = [n for n in (args.tasks or "").split(",") if n]
    tasks = [wf.TASKS_BY_NAME[n] for n in names] if names else wf.DEFAULT_TASKS
    each = runner(args, tasks)
    print(json.dumps({"scenario": "runner", "ready": True}), file=sys.stderr, flush=True)
    try:
        each.run_forever()
    except KeyboardInterrupt:
        out["stopped"] = "SIGTERM"


# --- entry --------------------------------------------------------------------------------------------------


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("name", choices=[*SCENARIOS, "runner"], help="the scenario (or `runner`)")
    parser.add_argument("--url", required=True, help="the taskfleet API (its Connect endpoint), http://host:port")
    parser.add_argument("--token", required=True, help="API key for the client calls (admin)")
    parser.add_argument("--cluster", default=None, help="cluster slug of jobs and the runner (default: default)")
    parser.add_argument("--runner-token", default=None, help="API key of the runner on --cluster (default: --token)")
    parser.add_argument("--other-cluster", default=None, help="the second cluster (routing, bad_token)")
    parser.add_argument("--other-runner-token", default=None, help="API key of the runner on --other-cluster")
    parser.add_argument("--out", type=Path, default=None, help="where tasks write executions.log (default: cwd)")
    parser.add_argument("--n", type=int, default=5, help="size: batch jobs, fan-out width, progress steps")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds a scenario waits for its jobs")
    parser.add_argument("--tasks", default=None, help="runner: comma-separated task class names (default: all)")
    args = parser.parse_args(argv)
    args.runner_token = args.runner_token or args.token
    args.other_runner_token = args.other_runner_token or args.token
    return args


def _overtime(signum: int, frame: Any) -> None:
    raise TimeoutError("the scenario ran past --timeout (a runner that never went idle?)")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        os.environ["TILEBOX_TEST_DIR"] = str(args.out.resolve())
    out: dict[str, Any] = {"scenario": args.name}
    if args.name != "runner":
        # a hard stop past the waits' own deadline: a runner that never returns (a server handing out a task it
        # cannot run loops forever) still ends with the JSON line
        signal.signal(signal.SIGALRM, _overtime)
        signal.alarm(int(args.timeout) + 10)
    try:
        (serve if args.name == "runner" else SCENARIOS[args.name])(args, out)
    except Exception as err:
        traceback.print_exc()
        out.update(ok=False, error=type(err).__name__, message=str(err)[:2000])
        print(json.dumps(out, default=str), flush=True)
        return 1
    out["ok"] = True
    print(json.dumps(out, default=str), flush=True)
    return 0


if __name__ == "__main__":  # the SDK's lease renewer is a spawned process: it imports this module again
    sys.exit(main())
