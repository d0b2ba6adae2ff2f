"""Property-based fuzzing of every API route (hypothesis), calling the real Lambda handlers in process with
API Gateway v2 events (as the local API server builds them).

Properties, for every generated request:
- the answer is never a 5xx; it is JSON; a 4xx carries {"error": {"code", "message"}};
- a rejected request (4xx) changes nothing: it makes no successful write to DynamoDB or SQS (every
  AWS call of the fuzzed handlers is observed through a botocore after-call hook).

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

from tests.support.strategies import IDS, NUMBERS, RAW, STRINGS, body_strategy, task_spec

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

        path = path.replace("<job>", self.job_id).replace("<task>", self.task_id)
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
    return value if value in ("<job>", "<task>") else quote(value, safe="") or "x"


class Fuzzer:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.counts: Counter[str] = Counter()
        self.violations: list[str] = []

    def check(self, route: str, method: str, path: str, body: str = "", query: dict[str, str] | None = None) -> None:
        self.counts[route] += 1
        before = self.target.fingerprint()
        status, payload = self.target.call(method, path, body, query)
        problem = None
        if status >= 500:
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
    report = st.fixed_dictionaries(
        {"runner_id": st.text(min_size=1, max_size=20)},
        optional={
            "claim": st.fixed_dictionaries({"job_id": IDS, "task_id": IDS}),
            "report": st.fixed_dictionaries(
                {
                    "job_id": IDS,
                    "task_id": IDS,
                    "attempt": NUMBERS,
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
    extend = st.fixed_dictionaries({"runner_id": st.text(min_size=1, max_size=20), "task_id": IDS, "attempt": NUMBERS})
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
    @given(body_strategy(report))
    def runner_next(body: str) -> None:
        fuzzer.check("POST /runner/next", "POST", "/runner/next", body)

    @config
    @given(body_strategy(extend))
    def runner_extend(body: str) -> None:
        fuzzer.check("POST /runner/extend", "POST", "/runner/extend", body)

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
            runner_next,
            runner_extend,
            unknown_routes,
        ):
            test()
    return fuzzer.counts, fuzzer.violations
