"""The runner's ticket prefetch: the policy, and the loop against an in-memory lane and orchestrator."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any, cast

import pytest
from taskfleet import ExecutionContext, Task
from taskfleet_runner.lanes import Lanes, Receipt
from taskfleet_runner.runner import PREFETCH_MAX, TaskRunner, prefetch_count


@pytest.mark.parametrize(
    ("window", "average", "buffered", "expected"),
    [
        (1.0, None, 0, 1),  # no measurement yet: one ticket
        (1.0, 0.1, 0, 10),  # 100 ms tasks: 10 fit in the window
        (1.0, 0.3, 0, 3),
        (1.0, 0.5, 0, 2),
        (1.0, 0.999, 0, 1),
        (1.0, 1.0, 0, 1),  # tasks as long as the window: nothing waits locally
        (1.0, 30.0, 0, 1),
        (1.0, 0.001, 0, PREFETCH_MAX),  # clamped to what one ReceiveMessage returns
        (1.0, 0.0, 0, PREFETCH_MAX),
        (2.0, 0.5, 0, 4),  # the window scales it
        (0.0, 0.001, 0, 1),  # window 0: prefetch disabled
        (-1.0, 0.001, 0, 1),
        (1.0, 0.1, 3, 7),  # what is already buffered counts
        (1.0, 0.1, 10, 0),
        (1.0, 0.5, 5, 0),
    ],
)
def test_prefetch_count(window: float, average: float | None, buffered: int, expected: int) -> None:
    assert prefetch_count(window, average, buffered) == expected


# --- the loop, with in-memory fakes ----------------------------------------------------------------------


LANE = "https://sqs.local/123456789012/prefix-c--0123456789ab.fifo"  # the one lane of these runners


class FakeQueue:
    """Just enough of SQS for one lane: visible/in-flight messages, visibility changes, deletes, call log."""

    def __init__(self, bodies: list[dict[str, Any]]) -> None:
        self.messages = {f"r{i}": json.dumps(b) for i, b in enumerate(bodies)}
        self.visible = list(self.messages)
        self.receives: list[int] = []  # MaxNumberOfMessages of each receive
        self.handed_back: list[str] = []  # receipts made visible again by the runner
        self.batch_sizes: list[int] = []
        self.changed = threading.Event()
        self._lock = threading.Lock()  # receives come from the lanes' threads

    def receive_message(self, *, QueueUrl: str, MaxNumberOfMessages: int, **_: Any) -> dict[str, Any]:
        assert QueueUrl == LANE
        with self._lock:
            self.receives.append(MaxNumberOfMessages)
            taken, self.visible = self.visible[:MaxNumberOfMessages], self.visible[MaxNumberOfMessages:]
        return {"Messages": [{"ReceiptHandle": r, "Body": self.messages[r]} for r in taken]}

    def get_queue_attributes(self, *, QueueUrl: str, **_: Any) -> dict[str, Any]:
        assert QueueUrl == LANE
        with self._lock:
            visible = len(self.visible)
        return {"Attributes": {"ApproximateNumberOfMessages": str(visible), "ApproximateNumberOfMessagesDelayed": "0"}}

    def change_message_visibility_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]], **_: Any) -> None:
        assert QueueUrl == LANE
        self.batch_sizes.append(len(Entries))
        with self._lock:
            for entry in Entries:
                if entry["VisibilityTimeout"] == 0:
                    self.handed_back.append(entry["ReceiptHandle"])
                    self.visible.append(entry["ReceiptHandle"])
        self.changed.set()

    def change_message_visibility(self, **_: Any) -> None:
        pass

    def delete_message_batch(self, **_: Any) -> None:
        pass

    def delete_message(self, **_: Any) -> None:
        pass


class FakeOrchestrator:
    """The runner routes of cluster "c": every report is accepted, every claim runs (once per task id unless
    given back, else discard), and its answer repeats the claim's lease token, as the orchestrator's does."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.claimed: list[str] = []
        self.given_back: list[str] = []
        self.leases: dict[str, str] = {}  # task id -> the lease token its claim carried

    def request(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        assert method == "POST"
        if path == "/runner/c/extend":
            return {}
        if path == "/runner/c/lanes":
            return {"cluster": "c", "lanes": [{"name": "Quick", "version": "v0.0", "url": LANE}]}
        assert path == "/runner/c/next", path
        self.calls.append(body)
        response: dict[str, Any] = {}
        if "reports" in body:
            response["reports"] = [self._report(r) for r in body["reports"]]
        if "claims" in body:
            response["claims"] = [self._claim(c) for c in body["claims"]]
        return response

    def _report(self, report: dict[str, Any]) -> dict[str, Any]:
        if report["outcome"] == "released":  # QUEUED again: it may be claimed anew
            self.given_back.append(report["task_id"])
            return {"status": "requeued"}
        return {"status": "ok"}

    def _claim(self, claim: dict[str, Any]) -> dict[str, Any]:
        task_id = claim["task_id"]
        if self.claimed.count(task_id) > self.given_back.count(task_id):  # held by a claim already
            return {"status": "discard"}
        self.claimed.append(task_id)
        self.leases[task_id] = claim["lease"]
        name, label = task_id.split(":")
        return {
            "status": "run",
            "task": {
                "id": task_id,
                "job_id": claim["job_id"],
                "name": name,
                "version": "v0.0",
                "attempt": 1,
                "cluster": "c",
                "input": json.dumps({"label": label}),
                "lease": claim["lease"],
            },
        }

    def reports(self) -> list[dict[str, Any]]:
        return [r for c in self.calls for r in c.get("reports", ())]

    def claims(self) -> list[dict[str, Any]]:
        return [r for c in self.calls for r in c.get("claims", ())]


HOOK: dict[str, Any] = {}  # what the tasks below call back into


class Quick(Task):
    label: str

    def execute(self, context: ExecutionContext) -> None:
        pass


class Blocker(Task):
    """Calls HOOK["during"] while it runs (the test's probe), and records what it returned."""

    label: str

    def execute(self, context: ExecutionContext) -> None:
        HOOK["result"] = HOOK["during"]()


def ticket(name: str, label: str, **extra: Any) -> dict[str, Any]:
    return {"job": "j", "task": f"{name}:{label}", "name": name, "version": "v0.0", "attempt": 1, **extra}


def make_runner(queue: FakeQueue, **options: Any) -> tuple[TaskRunner, FakeOrchestrator]:
    api = FakeOrchestrator()
    runner = TaskRunner(
        cast(Any, None),  # no client: the fake orchestrator and queue below stand in for it
        "c",
        [Quick, Blocker],
        install_signal_handlers=False,
        shutdown_grace=5,
        **options,
    )
    # _connect() sees a connected runner that registered its lanes just now; the fake answers the API's
    # requests in place of a Transport
    runner._sqs, runner._api = queue, cast(Any, api)
    runner._lanes, runner._lanes_checked = Lanes(queue, [LANE]), time.monotonic()
    runner.lease_seconds = 60
    return runner, api


def test_short_tasks_are_received_ten_at_a_time_and_claimed_and_reported_in_batches() -> None:
    queue = FakeQueue([ticket("Quick", str(i)) for i in range(25)])
    runner, api = make_runner(queue, prefetch_window=1.0)
    runner.run_all()
    assert api.claimed == [f"Quick:{i}" for i in range(25)]  # each once, in queue order
    # one ticket before any measurement, then as many as fit in the window (no-op tasks: the maximum)
    assert queue.receives[:4] == [1, 10, 10, 10]
    assert len(queue.receives) <= 6  # then empty receives only: at the end, and to leave run_all
    # the tickets of one receive are claimed in one call, which also reports the tasks run before them
    assert [len(c.get("claims", ())) for c in api.calls] == [1, 10, 10, 4, 0]
    assert [len(c.get("reports", ())) for c in api.calls] == [0, 1, 10, 10, 4]
    assert queue.handed_back == []
    # and each report presented the lease token of its own task's claim
    reports = api.reports()
    assert [r["task_id"] for r in reports] == [f"Quick:{i}" for i in range(25)]
    assert all(r["lease"] == api.leases[r["task_id"]] for r in reports)


def test_a_window_of_zero_receives_one_ticket_at_a_time() -> None:
    queue = FakeQueue([ticket("Quick", str(i)) for i in range(5)])
    runner, api = make_runner(queue, prefetch_window=0)
    runner.run_all()
    assert api.claimed == [f"Quick:{i}" for i in range(5)]
    assert set(queue.receives) == {1}


def test_the_window_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKFLEET_PREFETCH_WINDOW", "0")
    assert make_runner(FakeQueue([]))[0].prefetch_window == 0
    monkeypatch.delenv("TASKFLEET_PREFETCH_WINDOW")
    assert make_runner(FakeQueue([]))[0].prefetch_window == 1.0
    assert make_runner(FakeQueue([]), prefetch_window=2.5)[0].prefetch_window == 2.5


def test_the_claim_carries_the_tickets_ref_only_when_it_has_one() -> None:
    queue = FakeQueue([ticket("Quick", "a", ref=["x", 1]), ticket("Quick", "b")])
    runner, api = make_runner(queue)
    runner.run_all()
    claims = api.claims()
    leases = [c.pop("lease") for c in claims]
    assert claims == [{"job_id": "j", "task_id": "Quick:a", "ref": ["x", 1]}, {"job_id": "j", "task_id": "Quick:b"}]
    # each claim carries a fresh secret lease token of the accepted shape (32-128 url-safe characters)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32,128}", lease) for lease in leases)
    assert len(set(leases)) == 2


def blocked_until_handed_back(queue: FakeQueue, then: Any = None) -> Any:
    """A probe for Blocker: waits (bounded) until the runner hands tickets back while the task runs."""

    def during() -> bool:
        if then:
            then()
        return queue.changed.wait(timeout=10)

    return during


def test_a_stopping_runner_gives_back_the_tasks_claimed_with_its_task_while_that_still_runs() -> None:
    # Given a runner that measured a quick task, then received a blocking task and 8 more tickets at once,
    # and claimed all 9 in one call
    queue = FakeQueue([ticket("Quick", "first"), ticket("Blocker", "b")] + [ticket("Quick", str(i)) for i in range(8)])
    runner, api = make_runner(queue, prefetch_window=30.0)  # the running task never outlasts the window here
    # When it is told to stop while the blocking task runs
    HOOK["during"] = blocked_until_handed_back(queue, then=runner.stop)
    safety = threading.Timer(20, runner.stop)  # should this test fail, run_forever must still end
    safety.start()
    runner.run_forever()
    safety.cancel()
    # Then the 8 tasks claimed with it were given back (released, not run) and their tickets went back to
    # the queue at once, before that task ended
    assert HOOK.pop("result") is True
    assert sorted(queue.handed_back) == sorted(f"r{i}" for i in range(2, 10))
    released = [r["task_id"] for r in api.reports() if r["outcome"] == "released"]
    assert sorted(released) == sorted(f"Quick:{i}" for i in range(8))
    computed = [r["task_id"] for r in api.reports() if r["outcome"] == "computed"]
    assert computed == ["Quick:first", "Blocker:b"]  # none of them ran


def test_a_task_that_outlasts_the_window_makes_the_runner_give_back_what_waits_behind_it() -> None:
    queue = FakeQueue([ticket("Quick", "first"), ticket("Blocker", "b")] + [ticket("Quick", str(i)) for i in range(3)])
    runner, api = make_runner(queue, prefetch_window=0.2)
    HOOK["during"] = blocked_until_handed_back(queue)
    runner.run_all()
    assert HOOK.pop("result") is True  # handed back while the task ran
    assert sorted(queue.handed_back) == ["r2", "r3", "r4"]
    assert sorted(r["task_id"] for r in api.reports() if r["outcome"] == "released") == [
        "Quick:0",
        "Quick:1",
        "Quick:2",
    ]
    # the runner took them again afterwards (its average is now long) and ran each once
    computed = sorted(r["task_id"] for r in api.reports() if r["outcome"] == "computed")
    assert computed == sorted(["Quick:first", "Blocker:b", "Quick:0", "Quick:1", "Quick:2"])


class Slowish(Task):
    label: str

    def execute(self, context: ExecutionContext) -> None:
        time.sleep(0.6)


def test_when_a_task_turns_out_slower_what_no_longer_fits_in_the_window_is_given_back() -> None:
    # Given a runner that measured a quick task, then claimed a slower one and 8 more in one call
    queue = FakeQueue([ticket("Quick", "first"), ticket("Slowish", "s")] + [ticket("Quick", str(i)) for i in range(8)])
    runner, api = make_runner(queue, prefetch_window=1.0)
    runner.register(Slowish)
    runner.run_all()
    # Then after the 0.6 s task the moving average is at least 0.3 * 0.6 = 0.18 s, so at most 5 tasks fit in
    # the 1 s window (that task and 4 waiting): at least 4 of the 8 claimed behind it went back unstarted, the
    # last ones claimed, at once
    released = [r for r in api.reports() if r["outcome"] == "released"]
    assert 4 <= len(released) <= 8 and all(r["unstarted"] for r in released)
    n = len(released)
    assert sorted(queue.handed_back[:n]) == sorted(f"r{i}" for i in range(10 - n, 10))
    # and every task still ran once
    computed = sorted(r["task_id"] for r in api.reports() if r["outcome"] == "computed")
    assert computed == sorted(["Quick:first", "Slowish:s", *(f"Quick:{i}" for i in range(8))])


def buffered(runner: TaskRunner, queue: FakeQueue, count: int, age: float) -> None:
    queue.visible = []
    for i in range(count):
        runner._buffer.append(
            {
                "ReceiptHandle": f"r{i}",
                "receipt": Receipt(LANE, f"r{i}"),
                "ticket": ticket("Quick", str(i)),
                "received_at": time.monotonic() - age,
            }
        )


def test_tickets_buffered_longer_than_a_third_of_the_lease_are_handed_back_not_claimed() -> None:
    queue = FakeQueue([])
    runner, _ = make_runner(queue)
    runner._average_seconds = 0.01
    buffered(runner, queue, 12, age=runner.lease_seconds / 3 + 1)
    assert runner._next_buffered() is None
    assert queue.handed_back == [f"r{i}" for i in range(12)]
    assert queue.batch_sizes == [10, 2]  # ChangeMessageVisibilityBatch takes 10 at most


def test_fresh_buffered_tickets_are_claimed_in_order() -> None:
    queue = FakeQueue([])
    runner, _ = make_runner(queue)
    runner._average_seconds = 0.01
    buffered(runner, queue, 3, age=runner.lease_seconds / 3 - 5)
    taken = [runner._next_buffered() for _ in range(3)]
    assert [m["ReceiptHandle"] if m else None for m in taken] == ["r0", "r1", "r2"]
    assert runner._next_buffered() is None
    assert queue.handed_back == []


def test_when_tasks_got_slower_the_buffer_keeps_only_what_fits_in_the_window() -> None:
    queue = FakeQueue([])
    runner, _ = make_runner(queue, prefetch_window=1.0)
    buffered(runner, queue, 9, age=0)
    runner._average_seconds = 0.3  # 3 tickets fit in the window: the one claimed now and 2 waiting
    candidate = runner._next_buffered()
    assert candidate is not None and candidate["ReceiptHandle"] == "r0"
    assert [m["ReceiptHandle"] for m in runner._buffer] == ["r1", "r2"]
    assert sorted(queue.handed_back) == [f"r{i}" for i in range(3, 9)]


def test_after_a_receive_came_back_short_the_next_report_goes_out_without_a_receive_first() -> None:
    # A chain's next ticket is sent by the report itself: a receive before the report would only delay it.
    queue = FakeQueue([ticket("Quick", str(i)) for i in range(3)])
    runner, api = make_runner(queue, prefetch_window=1.0)
    runner.run_all()
    assert api.claimed == ["Quick:0", "Quick:1", "Quick:2"]
    # receive 1 (got 1), receive 10 (got 2: short); after Quick:2 no receive before its report; the
    # final receive finds the queue empty and ends run_all
    assert queue.receives == [1, 10, 10]
    assert api.calls[-1] == {"runner_id": runner.runner_id, "reports": api.calls[-1]["reports"]}
