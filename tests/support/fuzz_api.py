"""Property-based fuzzing of every API route (hypothesis), calling the real Lambda handlers in process with
API Gateway v2 events (as the local API server builds them).

Properties, for every generated request:
- the answer is never a 5xx; it is JSON; a 4xx carries {"error": {"code", "message"}};
- a rejected request (4xx) changes nothing: it makes no successful write to DynamoDB or SQS (every
  AWS call of the fuzzed handlers is observed through a botocore after-call hook);
- the runner routes of older runners (without the cluster in the path) answer 410 RunnerTooOld, whatever
  their body.

Ids "<job>" and "<task>" in a path or body stand for the target's seeded job and one of its tasks (cluster
"default"), "<other-job>" and "<other-task>" for a second job and its task, "<other-cluster>" for a second
cluster. Besides hostile input, well-formed runner requests aim at these real tasks with a few lease tokens
(so that claims run and later reports and heartbeats hold the lease, or not): from either cluster's route
or one that does not exist, naming the task's job or another one.

The handlers run against an orchestrator of their own (a fresh table and queue prefix in the same
emulator), swapped into the handlers' wiring for the duration, so that only the fuzzed requests' calls
are observed and no other test's data is touched. `fuzz_all_routes` returns the cases tried per route.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import secrets
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.strategies import IDS, JSON, NUMBERS, RAW, STRINGS, body_strategy, task_spec

TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

MUTATIONS = {
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "SendMessage",
    "SendMessageBatch",
    "DeleteMessage",
    "DeleteMessageBatch",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
    "CreateQueue",
    "DeleteQueue",
    "SetQueueAttributes",
    "PurgeQueue",
}


class Target:
    """A fresh orchestrator (own table, own queues) in the stack's emulator, swapped into the wiring."""

    def __init__(self, stack: Any) -> None:
        from taskfleet_functions.dal.dynamo import Dynamo
        from taskfleet_functions.dal.queues import Queues
        from taskfleet_functions.dal.table import table_spec
        from taskfleet_functions.orchestrator import Orchestrator, TaskSpec
        from taskfleet_functions.settings import Settings
        from taskfleet_functions.wiring import aws_config

        self.stack = stack
        name = f"fuzz-{secrets.token_hex(3)}"
        dynamodb = stack.boto_client("dynamodb", aws_config())
        self.sqs = stack.boto_client("sqs", aws_config())
        dynamodb.create_table(**table_spec(name))
        # every successful state-changing call of this orchestrator is recorded: a rejected request must
        # make none (a conditional write that fails its condition changes nothing, and is not recorded)
        self.writes: list[str] = []
        for client in (dynamodb, self.sqs):
            client.meta.events.register("after-call", self._record)
        settings = Settings(table_name=name, queue_prefix=name, lease_seconds=stack.lease_seconds, local=True)
        self.engine = Orchestrator(
            Dynamo(dynamodb, name), Queues(self.sqs, visibility_seconds=stack.lease_seconds), settings
        )
        self.engine.cluster("default")
        job = self.engine.submit_job(
            "seed", [TaskSpec(name="Leaf", version="v0.0", input="x"), TaskSpec(name="Leaf", version="v0.0", input="y")]
        )
        self.job_id = str(job["job_id"])
        self.task_id = next(iter(self.engine.walk(job)))["task_id"]
        other = self.engine.submit_job("other", [TaskSpec(name="T", version="v0.0")])
        self.other_job_id = str(other["job_id"])
        self.other_task_id = next(iter(self.engine.walk(other)))["task_id"]
        self.other_cluster = str(self.engine.create_cluster("other")["slug"])
        self.handlers = {
            "jobs": importlib.import_module("taskfleet_functions.handlers.jobs").lambda_handler,
            "clusters": importlib.import_module("taskfleet_functions.handlers.clusters").lambda_handler,
            "runner": importlib.import_module("taskfleet_functions.handlers.runner").lambda_handler,
        }

    @contextlib.contextmanager
    def wired(self) -> Iterator[Target]:
        from taskfleet_functions import wiring

        previous = wiring.orchestrator()
        wiring.configure(self.engine)
        try:
            yield self
        finally:
            wiring.configure(previous)

    def _placed(self, text: str) -> str:
        """`text` with the placeholders of the target's jobs, tasks and clusters replaced by their ids."""
        for placeholder, value in (
            ("<job>", self.job_id),
            ("<task>", self.task_id),
            ("<other-job>", self.other_job_id),
            ("<other-task>", self.other_task_id),
            ("<other-cluster>", self.other_cluster),
        ):
            text = text.replace(placeholder, value)
        return text

    def _record(self, http_response: Any = None, model: Any = None, **_: Any) -> None:
        if (
            model is not None
            and model.name in MUTATIONS
            and http_response is not None
            and http_response.status_code < 300
        ):
            self.writes.append(model.name)

    def fingerprint(self) -> int:
        """How many state-changing AWS calls (successful writes, sends, queue changes) were made so far."""
        return len(self.writes)

    def call(self, method: str, path: str, body: str = "", query: dict[str, str] | None = None) -> tuple[int, Any]:
        from taskfleet_local.api_server import FakeLambdaContext, build_event

        path, body = (self._placed(text) for text in (path, body))
        raw_path = path + ("?" + urlencode(query) if query else "")
        module = (
            "runner"
            if path.startswith("/runner/")
            else "clusters"
            if path.startswith(("/clusters", "/config"))
            else "jobs"
        )
        event = build_event(method, raw_path, {"content-type": "application/json"}, body)
        result = self.handlers[module](event, FakeLambdaContext(module))
        status = int(result["statusCode"])
        try:
            payload = json.loads(result.get("body") or "")
        except ValueError:
            payload = None
        return status, payload


def _segment(value: str) -> str:
    return value if value in ("<job>", "<task>", "<other-cluster>") else quote(value, safe="") or "x"


class Fuzzer:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.counts: Counter[str] = Counter()
        self.violations: list[str] = []

    def check(
        self,
        route: str,
        method: str,
        path: str,
        body: str = "",
        query: dict[str, str] | None = None,
        *,
        expect: tuple[int, str] | None = None,
    ) -> None:
        """One request; `expect`: the (status, error code) it must get, whatever its body."""
        self.counts[route] += 1
        before = self.target.fingerprint()
        status, payload = self.target.call(method, path, body, query)
        problem = None
        got = (
            (status, ((payload or {}).get("error") or {}).get("code")) if isinstance(payload, dict) else (status, None)
        )
        if expect is not None and got != expect:
            problem = f"{got}, not {expect}"
        elif status >= 500:
            problem = f"{status}"
        elif payload is None:
            problem = "a body that is not JSON"
        elif status >= 400:
            error = payload.get("error") if isinstance(payload, dict) else None
            if not (isinstance(error, dict) and isinstance(error.get("code"), str) and error.get("message")):
                problem = f"{status} without an error code and message: {payload!r:.200}"
            elif self.target.fingerprint() != before:
                problem = f"{status} {error['code']} but it wrote: {self.target.writes[before:]}"
        if problem:
            self.violations.append(
                f"{route}: {problem} for {method} {path[:120]!r} body {body[:200]!r} query {query!r:.120}"
            )


# --- the runner routes' bodies --------------------------------------------------------------------------

# the cluster in a runner route's path: the target's own, another, one that does not exist
REAL_SLUGS = st.sampled_from(["default", "<other-cluster>", "nope"])
# the cluster in a runner route's path, with hostile ones
RUNNER_SLUGS = st.one_of(REAL_SLUGS, st.sampled_from(["a--b", "Default", "-x"]), STRINGS)


def runner_strategies() -> dict[str, st.SearchStrategy[dict[str, Any]]]:
    """Bodies of the runner routes: "next", "extend" and "lanes" (hostile: any ids, tokens, identifiers), and
    "aimed next", "aimed extend", "aimed lanes" (well-formed, aimed at the target's real tasks, with a few
    tokens, so that claims run and later reports and heartbeats hold the lease, or not)."""
    ids = st.one_of(IDS, st.just("<other-job>"))  # in runner requests
    # lease tokens: well-formed ones (32-128 url-safe characters) that hold no lease, and anything else
    lease = st.one_of(st.text(alphabet=TOKEN_ALPHABET, min_size=32, max_size=128), STRINGS)
    report = st.fixed_dictionaries(
        {"runner_id": st.text(min_size=1, max_size=20)},
        optional={
            "claim": st.fixed_dictionaries(
                {"job_id": ids, "task_id": ids, "lease": lease},
                optional={"ref": st.one_of(st.tuples(ids, NUMBERS, NUMBERS), JSON)},
            ),
            "report": st.fixed_dictionaries(
                {
                    "job_id": ids,
                    "task_id": ids,
                    "attempt": NUMBERS,
                    "lease": lease,
                    "outcome": st.sampled_from(["computed", "failed", "released", "x"]),
                },
                optional={
                    "subtasks": st.lists(task_spec(), max_size=2),
                    "display": STRINGS,
                    "failure": st.fixed_dictionaries({"message": STRINGS}),
                },
            ),
        },
    )
    extend = st.fixed_dictionaries(
        {
            "runner_id": st.text(min_size=1, max_size=20),
            "task_id": ids,
            "job_id": ids,
            "attempt": NUMBERS,
            "lease": lease,
        }
    )
    # a runner's registration: task identifiers, valid ones (each creates its lane once) and hostile ones
    valid_identifier = st.tuples(st.sampled_from(["Leaf", "T"]), st.sampled_from(["v0.0", "v1.2"]))
    identifier = st.one_of(
        valid_identifier,
        st.tuples(st.sampled_from(["Leaf", "a" * 257, ""]), st.sampled_from(["v0.0", "1.0", "v1", "v1.2.3"])),
        st.tuples(STRINGS, STRINGS),
        st.lists(STRINGS, max_size=3),
    )
    lanes = st.fixed_dictionaries(
        {"runner_id": st.text(min_size=1, max_size=20), "tasks": st.lists(identifier, max_size=3)}
    )
    # well-formed runner requests aimed at the target's real tasks, one operation each, with a few tokens
    # (job, task): a task of its own job (the other job is never canceled by the fuzzing of job routes), or of
    # another one
    pairs = st.sampled_from(
        [("<other-job>", "<other-task>"), ("<job>", "<task>"), ("<job>", "<other-task>"), ("<other-job>", "<task>")]
    )
    tokens = st.sampled_from(["A" * 32, "b-_" * 15, "0123456789" * 4])
    claim = st.builds(lambda p, lease: {"job_id": p[0], "task_id": p[1], "lease": lease}, pairs, tokens)
    done = st.fixed_dictionaries(
        {"attempt": st.integers(1, 3), "lease": tokens, "outcome": st.sampled_from(["computed", "failed", "released"])},
        optional={
            "subtasks": st.lists(task_spec(), max_size=2),
            "failure": st.fixed_dictionaries({"message": st.text(max_size=20)}),
        },
    )
    aimed_next = st.one_of(
        st.fixed_dictionaries({"runner_id": st.just("r"), "claim": claim}),
        st.builds(lambda p, d: {"runner_id": "r", "report": {"job_id": p[0], "task_id": p[1], **d}}, pairs, done),
    )
    aimed_extend = st.builds(
        lambda p, attempt, lease: {
            "runner_id": "r",
            "job_id": p[0],
            "task_id": p[1],
            "attempt": attempt,
            "lease": lease,
        },
        pairs,
        st.integers(1, 3),
        tokens,
    )
    aimed_lanes = st.fixed_dictionaries(
        {"runner_id": st.just("r"), "tasks": st.lists(valid_identifier, min_size=1, max_size=3)}
    )
    return {
        "next": report,
        "extend": extend,
        "lanes": lanes,
        "aimed next": aimed_next,
        "aimed extend": aimed_extend,
        "aimed lanes": aimed_lanes,
    }


def fuzz_all_routes(stack: Any, examples: int) -> tuple[Counter[str], list[str]]:
    """Fuzz every route with `examples` generated requests each. Returns (cases per route, violations)."""
    target = Target(stack)
    fuzzer = Fuzzer(target)
    config = settings(
        max_examples=examples, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    submit = st.fixed_dictionaries(
        {"name": st.text(min_size=1, max_size=30), "tasks": st.lists(task_spec(), min_size=1, max_size=3)},
        optional={
            "max_retries": st.integers(0, 3),
            "client_token": STRINGS,
            "cluster": st.sampled_from(["default", "nope"]),
        },
    )
    runner = runner_strategies()
    cluster = st.fixed_dictionaries({"name": STRINGS})

    @config
    @given(body_strategy(submit))
    def post_jobs(body: str) -> None:
        fuzzer.check("POST /jobs", "POST", "/jobs", body)

    @config
    @given(st.fixed_dictionaries({}, optional={"state": STRINGS, "name": STRINGS, "limit": STRINGS, "cursor": STRINGS}))
    def get_jobs(query: dict[str, str]) -> None:
        fuzzer.check("GET /jobs", "GET", "/jobs", query=query)

    @config
    @given(IDS, st.sampled_from(["", "/tasks"]))
    def get_job(job_id: str, suffix: str) -> None:
        fuzzer.check(f"GET /jobs/{{id}}{suffix}", "GET", f"/jobs/{_segment(job_id)}{suffix}")

    @config
    @given(IDS, st.sampled_from(["cancel", "retry"]), st.one_of(st.just(""), RAW))
    def post_job_action(job_id: str, action: str, body: str) -> None:
        fuzzer.check(f"POST /jobs/{{id}}/{action}", "POST", f"/jobs/{_segment(job_id)}/{action}", body)

    @config
    @given(body_strategy(cluster))
    def post_clusters(body: str) -> None:
        fuzzer.check("POST /clusters", "POST", "/clusters", body)

    @config
    @given(STRINGS, st.sampled_from(["GET", "DELETE"]))
    def cluster_slug(slug: str, method: str) -> None:
        if method == "DELETE" and slug == "default":
            slug = "default-x"
        fuzzer.check(f"{method} /clusters/{{slug}}", method, f"/clusters/{_segment(slug)}")

    @config
    @given(STRINGS, st.one_of(st.just(""), RAW))
    def patch_cluster(slug: str, body: str) -> None:
        if slug == "default":  # a well-formed update of a real cluster would change it: not hostile input
            slug = "default-x"
        fuzzer.check("PATCH /clusters/{slug}", "PATCH", f"/clusters/{_segment(slug)}", body)

    @config
    @given(RUNNER_SLUGS, body_strategy(runner["next"]))
    def runner_next(slug: str, body: str) -> None:
        fuzzer.check("POST /runner/{slug}/next", "POST", f"/runner/{_segment(slug)}/next", body)

    @config
    @given(RUNNER_SLUGS, body_strategy(runner["extend"]))
    def runner_extend(slug: str, body: str) -> None:
        fuzzer.check("POST /runner/{slug}/extend", "POST", f"/runner/{_segment(slug)}/extend", body)

    @config
    @given(RUNNER_SLUGS, body_strategy(runner["lanes"]))
    def runner_lanes(slug: str, body: str) -> None:
        fuzzer.check("POST /runner/{slug}/lanes", "POST", f"/runner/{_segment(slug)}/lanes", body)

    @config
    @given(REAL_SLUGS, st.sampled_from(["next", "extend", "lanes"]), st.data())
    def runner_aimed(slug: str, route: str, data: st.DataObject) -> None:
        body = data.draw(runner[f"aimed {route}"])
        fuzzer.check(
            f"POST /runner/{{slug}}/{route} (well-formed)", "POST", f"/runner/{slug}/{route}", json.dumps(body)
        )

    @config
    @given(
        st.sampled_from(["next", "extend"]), st.one_of(body_strategy(runner["next"]), body_strategy(runner["extend"]))
    )
    def runner_old_routes(route: str, body: str) -> None:
        fuzzer.check(
            "POST /runner/{next,extend} (older runners)",
            "POST",
            f"/runner/{route}",
            body,
            expect=(410, "RunnerTooOld"),
        )

    @config
    @given(st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH"]), STRINGS)
    def unknown_routes(method: str, path: str) -> None:
        fuzzer.check("unknown routes", method, f"/{_segment(path)}/{_segment(path)}")

    with target.wired():
        fuzzer.check("GET /config", "GET", "/config")
        fuzzer.check("GET /clusters", "GET", "/clusters")
        for test in (
            post_jobs,
            get_jobs,
            get_job,
            post_job_action,
            post_clusters,
            cluster_slug,
            patch_cluster,
            runner_next,
            runner_extend,
            runner_lanes,
            runner_aimed,
            runner_old_routes,
            unknown_routes,
        ):
            test()
    return fuzzer.counts, fuzzer.violations
