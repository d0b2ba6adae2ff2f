"""The reliability scenarios: runner crashes, AWS errors, handler crashes, duplicate and late delivery,
races and API fuzzing, each followed by the invariant checks of tests/support/invariants.py.

tests/reliability/test_harness.py runs them at size `small` against the session's local stack;
`python -m bench.faults --size large` runs them bigger on a stack of its own and reports the figures.
Synchronization is on observable state (job state, files the tasks write), with bounded waits; nothing
sleeps in place of a condition.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.fleet import Fleet
from tests.support.invariants import check_executions, check_job
from tests.support.observe import executions
from tests.support.waits import TERMINAL, job_state, terminal, wait_for


@dataclass(frozen=True)
class Size:
    splits: int  # Pipeline workload (tests/support/fault_tasks.py)
    width: int
    seconds: float  # duration of each Work task
    runners: int
    kills: int  # runners SIGKILLed mid-task
    kill_interval: float  # seconds between kills
    fault_rate: float  # share of AWS calls failed in the AWS-errors scenario
    claimers: int  # racing claimers per task
    race_tasks: int
    fuzz_examples: int  # per route
    crash_modes: tuple[str, ...]  # handler crashes: "once" (client retries), "dead" (client gives up)
    timeout: float = 600.0


SIZES = {
    "small": Size(
        splits=2,
        width=6,
        seconds=0.05,
        runners=3,
        kills=3,
        kill_interval=1.0,
        fault_rate=0.10,
        claimers=6,
        race_tasks=12,
        fuzz_examples=40,
        crash_modes=("once",),
    ),
    "large": Size(
        splits=12,
        width=24,
        seconds=0.1,
        runners=4,
        kills=25,
        kill_interval=1.0,
        fault_rate=0.10,
        claimers=12,
        race_tasks=60,
        fuzz_examples=400,
        crash_modes=("once", "dead"),
    ),
}


@dataclass
class Result:
    scenario: str
    figures: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def merge(self, other: Result) -> None:
        self.violations.extend(other.violations)
        for key, value in other.figures.items():
            if isinstance(value, int | float) and isinstance(self.figures.get(key, 0), int | float):
                self.figures[key] = self.figures.get(key, 0) + value
            elif isinstance(value, dict):
                merged = Counter(self.figures.get(key) or {})
                merged.update(value)
                self.figures[key] = dict(sorted(merged.items()))
            else:
                self.figures[key] = value


def new_cluster(stack: Any, name: str) -> str:
    return str(stack.orchestrator.create_cluster(name)["slug"])


def submit(stack: Any, name: str, tasks: list[Any], cluster: str, **kwargs: Any) -> str:
    return stack.client().jobs().submit(name, tasks, cluster=cluster, **kwargs).id


def pipeline_result(
    stack: Any, scenario: str, job_id: str, workdir: Path, fleet: Fleet, *, expected: int, started: float
) -> Result:
    result = Result(scenario)
    state = job_state(stack, job_id)
    if state != "COMPLETED":
        result.violations.append(f"job ended {state}, not COMPLETED")
    result.violations.extend(check_job(stack.orchestrator, job_id))
    violations, figures = check_executions(executions(workdir), stack.orchestrator, [job_id], fleet.kills)
    result.violations.extend(violations)
    result.figures.update(figures)
    result.figures.update(
        {
            "jobs": 1,
            "expected_tasks": expected,
            "runners_killed": len(fleet.kills),
            "tasks_lost": expected - figures["tasks_completed"],
            "seconds": round(time.time() - started, 1),
        }
    )
    return result


# --- scenario 1: runner crashes ------------------------------------------------------------------------


def run_runner_crashes(stack: Any, size: Size, workdir: Path, seed: int = 1) -> Result:
    """SIGKILL random runners mid-task during a job with dependencies and subtasks; restart them."""
    from tests.support.fault_tasks import Pipeline, expected_tasks

    rng = random.Random(seed)
    cluster = new_cluster(stack, "crashes")
    fleet = Fleet(stack, cluster, workdir)
    started = time.time()
    fleet.start(size.runners)
    try:
        job_id = submit(stack, "runner-crashes", [Pipeline(size.splits, size.width, size.seconds)], cluster)
        next_kill = time.monotonic() + size.kill_interval
        deadline = time.monotonic() + size.timeout
        while job_state(stack, job_id) not in TERMINAL:
            if time.monotonic() > deadline:
                raise TimeoutError("runner-crash job did not finish")
            if len(fleet.kills) < size.kills and time.monotonic() >= next_kill and fleet.kill_busy(rng):
                next_kill = time.monotonic() + size.kill_interval * rng.uniform(0.5, 1.5)
            time.sleep(0.05)
    finally:
        fleet.stop()
    return pipeline_result(
        stack,
        "runner_crashes",
        job_id,
        workdir,
        fleet,
        expected=expected_tasks(size.splits, size.width),
        started=started,
    )


# --- scenario 2: AWS errors ----------------------------------------------------------------------------


def run_aws_faults(stack: Any, size: Size, workdir: Path, seed: int = 2) -> Result:
    """Fail a share of every DynamoDB and SQS call of handlers, sweeper and runners."""
    from taskfleet_runner.aws_faults import FaultInjector

    from tests.support.fault_tasks import Pipeline, expected_tasks

    cluster = new_cluster(stack, "aws-faults")
    log = workdir / "runner-faults.log"
    fleet = Fleet(
        stack, cluster, workdir, env={"TASKFLEET_FAULT_RATE": str(size.fault_rate), "TASKFLEET_FAULT_LOG": str(log)}
    )
    engine = stack.orchestrator
    injector = FaultInjector(size.fault_rate, seed=seed)
    started = time.time()
    fleet.start(size.runners)
    injector.install(engine.db.client)
    injector.install(engine.queues.client)
    try:
        job_id = wait_for(
            lambda: submit(
                stack,
                "aws-faults",
                [Pipeline(size.splits, size.width, size.seconds)],
                cluster,
                client_token=f"aws-faults-{seed}-{started}",
            ),
            60,
            "a submit through injected faults",
        )
        wait_for(terminal(stack, job_id), size.timeout, "the job under AWS faults")
    finally:
        injector.uninstall(engine.db.client)
        injector.uninstall(engine.queues.client)
        fleet.stop()
    result = pipeline_result(
        stack, "aws_faults", job_id, workdir, fleet, expected=expected_tasks(size.splits, size.width), started=started
    )
    by_kind: Counter[str] = Counter()
    for key, n in injector.injected().items():
        by_kind[f"handlers {key}"] += n
    if log.exists():
        for line in log.read_text().splitlines():
            _, service, _, kind = line.split()
            by_kind[f"runners {service}:{kind}"] += 1
    result.figures["faults_injected"] = dict(sorted(by_kind.items()))
    result.figures["aws_calls_seen_by_injector_in_handlers"] = injector.calls
    return result


# --- scenario 3: handler crashes -----------------------------------------------------------------------

# Every crash point, and the workload that passes through it: "pipeline" (subtasks, dependencies,
# propagation to parents and the job) or "broken" (a failure without retries, then a job retry).
CRASH_POINTS: dict[str, str] = {
    "submit.after_tasks": "pipeline",
    "submit.after_write": "pipeline",
    "submit.before_clear_outbox": "pipeline",
    "claim.before_job_running": "pipeline",
    "complete.before_commit": "pipeline",
    "complete.after_commit": "pipeline",
    "propagate.before_parent_completed": "pipeline",
    "propagate.after_parent_completed": "pipeline",
    "propagate.after_dependency_signal": "pipeline",
    "propagate.before_dispatch": "pipeline",
    "propagate.before_job_completed": "pipeline",
    "propagate.before_stats": "pipeline",
    "fail.before_job_update": "broken",
    "retry.after_job_update": "broken",
    "resume.after_requeue": "broken",
    "resume.before_dispatch": "broken",
    "resume.before_clear_outbox": "broken",
}


def run_handler_crash(stack: Any, point: str, mode: str, workdir: Path) -> Result:  # noqa: PLR0912, PLR0915 - one scenario told in order; its branches are the two workloads and two modes
    """Kill the handler at `point`. mode "once": the point fires once and the client's retry (runner,
    SDK) or the ticket/sweeper repairs it. mode "dead": it fires on every pass until the client gave up;
    then every runner is SIGKILLed too, the point disarmed, and fresh runners started."""
    from taskfleet import Client, ConflictError, ServerError
    from taskfleet.http import Transport
    from taskfleet_functions import faults

    from tests.support.fault_tasks import Broken, Leaf, Pipeline, expected_tasks

    workload = CRASH_POINTS[point]
    case_dir = workdir / f"{point}-{mode}"
    case_dir.mkdir(parents=True, exist_ok=True)
    cluster = new_cluster(stack, f"crash-{point.replace('.', '-')}"[:28])
    fleet = Fleet(stack, cluster, case_dir)
    started = time.time()
    faults.disarm_all()
    fleet.start(2)
    token = f"crash-{point}-{mode}-{started}"
    sdk = Client(stack.url)
    if mode == "dead":  # an SDK that gives up quickly, so the scenario does not wait out its backoff
        sdk.transport = Transport(stack.url, retries=1)
    try:
        if workload == "pipeline":
            tasks: list[Any] = [Pipeline(1, 3, 0.0)]
            expected = expected_tasks(1, 3)
        else:
            (case_dir / "broken-b").write_text("yes")
            tasks = [Broken("b", 2), Leaf("sibling")]
            expected = 2 + 2
        faults.arm(point, times=1 if mode == "once" else 1_000_000)
        hits = 0

        def crashed_then_recover() -> None:
            """mode "dead": once the point fired, the client gave up; kill the runners too, bring the
            handler back (disarm), start fresh runners."""
            nonlocal hits
            hits = wait_for(lambda: faults.hits(point), 60, f"the crash at {point}")
            fleet.kill_all()
            faults.disarm_all()
            fleet.start(2)

        job_id: str | None = None
        try:
            with contextlib.ExitStack() as patch:
                if mode == "dead":  # the SDK waits out a crashed submit's token lock; this client gives up
                    import taskfleet.client

                    patch.callback(
                        setattr, taskfleet.client, "SUBMIT_IN_PROGRESS_WAIT", taskfleet.client.SUBMIT_IN_PROGRESS_WAIT
                    )
                    taskfleet.client.SUBMIT_IN_PROGRESS_WAIT = 1.0
                job_id = sdk.jobs().submit(f"crash-{point}", tasks, cluster=cluster, client_token=token).id
        except (ServerError, ConflictError) as err:
            if not (point.startswith("submit.") and mode == "dead"):
                raise
            if isinstance(err, ConflictError) and err.code != "SubmitInProgress":
                raise
        if workload == "pipeline":
            if mode == "dead":
                crashed_then_recover()
                if job_id is None:  # the submit never answered: its client submits again, same token
                    job_id = (
                        stack.client().jobs().submit(f"crash-{point}", tasks, cluster=cluster, client_token=token).id
                    )
        else:
            assert job_id is not None
            if point == "fail.before_job_update" and mode == "dead":
                crashed_then_recover()  # the job's failure is recorded when the task's ticket comes back
            wait_for(lambda: job_state(stack, job_id) == "FAILED", 60, "the job to fail")
            (case_dir / "broken-b").unlink()
            try:
                sdk.jobs().retry(job_id)
            except ServerError:
                if mode != "dead":
                    raise
            if mode == "dead" and point != "fail.before_job_update":
                hits = wait_for(lambda: faults.hits(point), 60, f"the crash at {point}")
                faults.disarm_all()  # the sweeper finds the retry's outbox overdue and finishes it
        assert job_id is not None
        wait_for(terminal(stack, job_id), 90, f"the job after a crash at {point}")
        hits = hits or faults.hits(point)
    finally:
        faults.disarm_all()
        fleet.stop()
    result = pipeline_result(stack, "handler_crashes", job_id, case_dir, fleet, expected=expected, started=started)
    if hits == 0:
        result.violations.append(f"{point} ({mode}) never fired")
    result.figures.pop("seconds", None)
    result.figures["crashes_injected"] = {point: hits}
    result.figures["crash_cases"] = 1
    result.violations = [f"{point} ({mode}): {v}" for v in result.violations]
    return result


def run_handler_crashes(stack: Any, size: Size, workdir: Path) -> Result:
    total = Result("handler_crashes")
    started = time.time()
    for mode in size.crash_modes:
        for point in CRASH_POINTS:
            total.merge(run_handler_crash(stack, point, mode, workdir))
    total.figures["seconds"] = round(time.time() - started, 1)
    return total


# --- scenario 4: duplicate and late delivery -----------------------------------------------------------


class Api:
    """Drives /runner/<cluster>/* directly, as a runner (or a replayed network message) would.

    A runner makes a secret lease token for each claim and shows it in that attempt's reports and
    heartbeats. Here a runner keeps one token per task (unless a claim is given another): a repeated claim
    is that runner's request sent again (a retry after a lost response), which the orchestrator recognises
    as the holder's own."""

    def __init__(self, stack: Any, cluster: str) -> None:
        self.transport = stack.client().transport
        self.cluster = cluster
        self._tokens: dict[tuple[str, str], str] = {}

    def token(self, runner: str, task_id: str) -> str:
        """The lease token `runner` claims `task_id` with (and reports and extends it with)."""
        return self._tokens.setdefault((runner, task_id), secrets.token_urlsafe(32))

    def claim(
        self, runner: str, job_id: str, task_id: str, ref: Any = None, *, lease: str | None = None
    ) -> dict[str, Any]:
        """`ref`: a deferred subtask's ticket carries it, and runners pass it on with the claim. `lease`: another
        token than this runner's for this task (a fresh claim of a ticket received again)."""
        claim: dict[str, Any] = {"job_id": job_id, "task_id": task_id, "lease": lease or self.token(runner, task_id)}
        if ref:
            claim["ref"] = list(ref)
        body = {"runner_id": runner, "claim": claim}
        return dict(self.transport.request("POST", f"/runner/{self.cluster}/next", body)["claim"])

    def holder(self, task_id: str, stored_hash: str) -> str | None:
        """The runner whose token for `task_id` a task item's `lease_hash` is (None: no runner of this Api)."""
        from taskfleet_functions.orchestrator.contracts import lease_hash

        return next(
            (r for (r, t), token in self._tokens.items() if t == task_id and lease_hash(token) == stored_hash), None
        )

    def report(
        self, runner: str, job_id: str, task_id: str, attempt: int, outcome: str = "computed", **extra: Any
    ) -> str:
        """A report with the token `runner` claimed `task_id` with (`lease=` to show another one)."""
        report = {"job_id": job_id, "task_id": task_id, "attempt": attempt, "outcome": outcome}
        report["lease"] = extra.pop("lease", None) or self.token(runner, task_id)
        body = {"runner_id": runner, "report": {**report, **extra}}
        return str(self.transport.request("POST", f"/runner/{self.cluster}/next", body)["report"]["status"])

    def extend(self, runner: str, job_id: str, task_id: str, attempt: int) -> Any:
        body = {
            "runner_id": runner,
            "job_id": job_id,
            "task_id": task_id,
            "attempt": attempt,
            "lease": self.token(runner, task_id),
        }
        return self.transport.request("POST", f"/runner/{self.cluster}/extend", body)


def _leaf(label: str) -> dict[str, Any]:
    return {"name": "Leaf", "version": "v0.0", "input": label}


def run_delivery(stack: Any, size: Size, workdir: Path) -> Result:  # noqa: PLR0915 - a linear script of delivery games, each followed by its check
    """Duplicate tickets, tickets after the task finished, duplicate and out-of-order reports, late
    reports of an expired lease, reports and heartbeats without the lease's token, tickets delivered to
    another cluster's runner or naming another job: each must leave the state the first valid event made."""
    from taskfleet import ConflictError, ForbiddenError

    from tests.support.fault_tasks import Leaf

    result = Result("delivery")
    cluster = new_cluster(stack, "delivery")
    api = Api(stack, cluster)
    engine = stack.orchestrator
    checks = Counter[str]()

    def expect(ok: bool, what: str) -> None:
        checks["checks"] += 1
        if not ok:
            result.violations.append(what)

    def refused(call: Callable[[], Any], error: type[Exception], code: str, what: str) -> None:
        try:
            call()
        except error as err:
            expect(getattr(err, "code", None) == code, f"{what}: refused with {err}, not {code}")
        else:
            expect(False, f"{what} was accepted")

    def task(task_id: str) -> dict[str, Any]:
        return dict(engine.db.get(f"TASK#{task_id}", "META") or {})

    job_id = submit(stack, "delivery", [Leaf("a"), Leaf("b"), Leaf("c")], cluster)
    a, b, c = (t["task_id"] for t in engine.walk(engine.get_job(job_id)))
    # the same ticket delivered to two runners, and twice to one: one attempt, one runner
    first, second = api.claim("r1", job_id, a), api.claim("r2", job_id, a)
    expect(first["status"] == "run" and second["status"] == "busy", f"duplicate ticket: {first} / {second}")
    expect(first.get("task", {}).get("lease") == api.token("r1", a), f"the claim's answer repeats its token: {first}")
    again = api.claim("r1", job_id, a)  # its request sent again, with the same token
    expect(again["status"] == "run" and again["task"]["attempt"] == 1, f"own claim replayed: {again}")
    anew = api.claim("r1", job_id, a, lease=secrets.token_urlsafe(32))  # received again: a claim of its own
    expect(anew["status"] == "busy", f"a new claim of a running task by its own runner: {anew}")
    # completion with subtasks, twice: the same two children, once
    sub = [_leaf("a.0"), _leaf("a.1")]
    expect(api.report("r1", job_id, a, 1, subtasks=sub) == "ok", "first completion")
    expect(api.report("r1", job_id, a, 1, subtasks=sub) == "ok", "replayed completion is acknowledged")
    tree = {t["task_id"]: t for t in engine.walk(engine.get_job(job_id))}
    children = [t for t in tree.values() if t.get("parent_id") == a]
    expect(len(children) == 2 and tree[a]["children"] == 2, f"children after a replayed completion: {children}")
    # a failure report for the computed attempt, by its own runner and by another one (another token), and
    # the ticket delivered after the task finished
    expect(
        api.report("r1", job_id, a, 1, "failed", failure={"message": "late"}) == "lease_lost",
        "a failure after the success is rejected",
    )
    expect(
        api.report("r2", job_id, a, 1, "failed", failure={"message": "late"}) == "lease_lost",
        "a failure after the success, by a runner without the lease, is rejected",
    )
    late = api.claim("r3", job_id, a)
    expect(late["status"] == "discard", f"ticket after finish: {late}")
    task_a = task(a)
    expect((task_a.get("state"), task_a.get("attempt")) == ("COMPUTED", 1), f"a after late events: {task_a}")
    # late report of an expired lease: r1 claims b, its lease runs out, r2 takes over (attempt 2)
    expect(api.claim("r1", job_id, b)["status"] == "run", "claim b")

    def take_over() -> dict[str, Any] | None:
        out = api.claim("r2", job_id, b)
        return out if out["status"] == "run" else None

    takeover = wait_for(take_over, engine.settings.lease_seconds + 30, "the lease on b to expire", poll=0.25)
    expect(takeover["task"]["attempt"] == 2, f"takeover attempt: {takeover}")
    expect(api.report("r1", job_id, b, 1, display="stale") == "lease_lost", "late success of attempt 1")
    refused(lambda: api.extend("r1", job_id, b, 1), ConflictError, "LeaseLost", "a heartbeat of the lost lease")
    refused(
        lambda: api.extend("r1", job_id, b, 2),
        ConflictError,
        "LeaseLost",
        "a heartbeat of the current attempt without its token",
    )
    try:
        expect(int(api.extend("r2", job_id, b, 2)["lease_expires"]) > 0, "the holder's heartbeat is answered")
    except ConflictError as err:
        expect(False, f"the holder's heartbeat was refused: {err}")
    expect(
        api.report("r1", job_id, b, 2, display="stale") == "lease_lost",
        "a success of the current attempt without its token",
    )
    expect(api.report("r2", job_id, b, 2, display="fresh") == "ok", "success of attempt 2")
    expect(
        api.report("r1", job_id, b, 1, "failed", failure={"message": "stale"}) == "lease_lost",
        "late failure of attempt 1 after attempt 2 finished",
    )
    task_b = task(b)
    expect(
        (task_b.get("state"), task_b.get("attempt"), task_b.get("display")) == ("COMPUTED", 2, "fresh"),
        f"b keeps attempt 2's result: {task_b}",
    )
    # a ticket delivered to a runner of another cluster, or naming another job: refused, nothing changes
    other_cluster = Api(stack, new_cluster(stack, "delivery-other"))
    refused(
        lambda: other_cluster.claim("x1", job_id, c), ForbiddenError, "WrongCluster", "a claim from another cluster"
    )
    other_job = submit(stack, "delivery-other-job", [Leaf("z")], cluster)
    refused(lambda: api.claim("x2", other_job, c), ConflictError, "WrongJob", "a claim naming another job")
    task_c = task(c)
    expect((task_c.get("state"), task_c.get("attempt", 0)) == ("QUEUED", 0), f"c after refused claims: {task_c}")
    # out of order: a release (give-back) after a completion, a report for an attempt never claimed, a
    # report by a runner that does not hold the lease
    expect(api.claim("r1", job_id, c)["status"] == "run", "claim c")
    expect(api.report("r1", job_id, c, 5) == "lease_lost", "report of an attempt that never existed")
    expect(api.report("r9", job_id, c, 1) == "lease_lost", "report of another runner (another token)")
    refused(
        lambda: other_cluster.report("r1", job_id, c, 1, lease=api.token("r1", c)),
        ForbiddenError,
        "WrongCluster",
        "a report, with the token, through another cluster's route",
    )
    refused(lambda: api.report("r1", other_job, c, 1), ConflictError, "WrongJob", "a report naming another job")
    expect(task(c).get("state") == "RUNNING", f"c after reports without the lease: {task(c)}")
    expect(api.report("r1", job_id, c, 1) == "ok", "c computed")
    expect(api.report("r1", job_id, c, 1, "released") == "lease_lost", "a give-back after completion")
    # the children of a: run them, twice each
    for child in children:
        claim = api.claim("r4", job_id, child["task_id"], child.get("ref"))
        expect(claim["status"] == "run", f"claim child {claim}")
        for _ in range(2):
            expect(api.report("r4", job_id, child["task_id"], 1) == "ok", "child computed (and replayed)")
    expect(job_state(stack, job_id) == "COMPLETED", f"job after delivery games: {job_state(stack, job_id)}")
    result.violations.extend(check_job(engine, job_id))
    stack.client().jobs().cancel(other_job)
    result.figures.update({"jobs": 1, "delivery_checks": checks["checks"], "tasks_lost": 0})
    return result


# --- scenario 5: races ---------------------------------------------------------------------------------


def _cancel(stack: Any, job_id: str) -> Any:
    return stack.client().jobs().cancel(job_id)


def _retry(stack: Any, job_id: str) -> Any:
    return stack.client().jobs().retry(job_id)


def run_races(stack: Any, size: Size, workdir: Path, seed: int = 5) -> Result:  # noqa: PLR0912, PLR0915 - two race scenarios told in order, each with its checks
    """Many claimers per task; then cancel, retry and completions racing on one job."""
    from taskfleet import ApiError

    from tests.support.fault_tasks import Leaf

    rng = random.Random(seed)
    result = Result("races")
    engine = stack.orchestrator
    cluster = new_cluster(stack, "races")
    api = Api(stack, cluster)
    # 1. claim storm
    job_id = submit(stack, "claim-storm", [Leaf(f"t{i}") for i in range(size.race_tasks)], cluster)
    task_ids = [t["task_id"] for t in engine.walk(engine.get_job(job_id))]
    attempts = [(t, r) for t in task_ids for r in range(size.claimers)]
    rng.shuffle(attempts)
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(lambda tr: (tr[0], tr[1], api.claim(f"c{tr[1]}", job_id, tr[0])), attempts))
    # each attempt goes to exactly one claimer; a second attempt exists only if the first one's lease
    # ran out during the storm (a takeover: the loaded machine made the storm outlast the lease)
    winners = Counter((t, out["task"]["attempt"]) for t, _, out in outcomes if out["status"] == "run")
    if any(n != 1 for n in winners.values()) or {t for t, _ in winners} != set(task_ids):
        result.violations.append(f"claim storm: winners per attempt {dict(Counter(winners.values()))}")
    latest: dict[str, tuple[int, int]] = {}
    for t, r, out in outcomes:
        if out["status"] == "run" and out["task"]["attempt"] >= latest.get(t, (0, -1))[0]:
            latest[t] = (out["task"]["attempt"], r)
    owner = {t: r for t, (_, r) in latest.items()}
    takeovers = sum(winners.values()) - len(task_ids)
    # winners report while the losers claim again: every late claim is told busy or discard
    work = [("report", t, owner[t]) for t in task_ids] + [("claim", t, r) for t, r in attempts[: len(task_ids) * 2]]
    rng.shuffle(work)

    def act(item: tuple[str, str, int]) -> str:
        kind, t, r = item
        if kind == "report":
            return api.report(f"c{r}", job_id, t, latest[t][0])
        out = api.claim(f"c{r}", job_id, t)
        stolen = out["status"] == "run" and r != owner[t] and out["task"]["attempt"] <= latest[t][0]
        return "claim-" + ("STOLEN" if stolen else out["status"])

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        statuses = Counter(pool.map(act, work))
    if statuses.get("claim-STOLEN"):
        result.violations.append(f"claim storm: {statuses['claim-STOLEN']} claims succeeded for a running task")
    # a claim that raced ahead of its report ran again as its owner's own retry, or took over a lease that
    # ran out meanwhile: its holder (the claimer whose token the task's lease is) finishes it too
    for t in task_ids:
        task = engine.db.get(f"TASK#{t}", "META") or {}
        if task.get("state") == "RUNNING":
            holder = api.holder(t, str(task.get("lease_hash")))
            if holder is None:
                result.violations.append(f"claim storm: task {t} is RUNNING under a lease no claimer holds")
            else:
                api.report(holder, job_id, t, int(task["attempt"]))
    if job_state(stack, job_id) != "COMPLETED":
        result.violations.append(f"claim storm job is {job_state(stack, job_id)}")
    result.violations.extend(check_job(engine, job_id))
    claims = len(outcomes) + sum(n for k, n in statuses.items() if k.startswith("claim-"))

    # 2. cancel, retry and completions racing on one job
    rounds = max(1, size.race_tasks // 10)
    storm_violations: list[str] = []
    final_states: Counter[str] = Counter()
    for round_ in range(rounds):
        n = 10
        job_id = submit(stack, f"storm-{round_}", [Leaf(f"s{i}") for i in range(n)], cluster)
        ids = [t["task_id"] for t in engine.walk(engine.get_job(job_id))]
        for t in ids:
            api.claim("w", job_id, t)
        actions: list[Callable[[], Any]] = []
        for i, t in enumerate(ids):
            if i % 3 == 0:
                actions.append(functools.partial(api.report, "w", job_id, t, 1, "failed", failure={"message": "x"}))
            else:
                actions.append(functools.partial(api.report, "w", job_id, t, 1))
        for _ in range(3):
            actions.append(functools.partial(_cancel, stack, job_id))
            actions.append(functools.partial(_retry, stack, job_id))
        rng.shuffle(actions)

        def run(action: Callable[[], Any]) -> None:
            with contextlib.suppress(ApiError):  # e.g. 409 cancel of a job that just failed: an allowed answer
                action()

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(run, actions))
        # quiescent now (every claimed attempt reported): the job's state must fit its tasks
        storm_violations.extend(f"storm {round_}: {v}" for v in check_job(engine, job_id))
        # and whatever it is, a final retry (if needed) and runners bring it to COMPLETED
        final_states[job_state(stack, job_id)] += 1
        if job_state(stack, job_id) in ("FAILED", "CANCELED"):
            stack.client().jobs().retry(job_id)
        for t in ids:  # play runner for the re-dispatched tasks
            claim = api.claim("w2", job_id, t)
            if claim["status"] == "run":
                api.report("w2", job_id, t, int(claim["task"]["attempt"]))
        if job_state(stack, job_id) != "COMPLETED":
            storm_violations.append(f"storm {round_}: job is {job_state(stack, job_id)} after the final retry")
        storm_violations.extend(f"storm {round_} final: {v}" for v in check_job(engine, job_id))
    result.violations.extend(storm_violations)
    result.figures.update(
        {
            "jobs": 1 + rounds,
            "racing_claims": claims,
            "claim_winners": sum(winners.values()),
            "lease_takeovers_during_storm": takeovers,
            "storm_rounds": rounds,
            "storm_states_before_final_retry": dict(final_states),
            "tasks_lost": 0,
        }
    )
    return result


# --- scenario 6: API fuzzing ---------------------------------------------------------------------------


def run_fuzz(stack: Any, size: Size, workdir: Path) -> Result:
    from tests.support.fuzz_api import fuzz_all_routes

    started = time.time()
    counts, violations = fuzz_all_routes(stack, size.fuzz_examples)
    result = Result("fuzz", violations=violations)
    result.figures.update(
        {
            "fuzz_cases": dict(sorted(counts.items())),
            "fuzz_cases_total": sum(counts.values()),
            "seconds": round(time.time() - started, 1),
        }
    )
    return result


SCENARIOS: dict[str, Callable[[Any, Size, Path], Result]] = {
    "runner_crashes": run_runner_crashes,
    "aws_faults": run_aws_faults,
    "handler_crashes": run_handler_crashes,
    "delivery": run_delivery,
    "races": run_races,
    "fuzz": run_fuzz,
}
