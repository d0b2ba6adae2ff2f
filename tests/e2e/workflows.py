"""Task classes the end-to-end tests run in real runner subprocesses.

Tasks record every execution in $TASKFLEET_TEST_DIR/executions.log (one JSON line, appended atomically)
and can wait for gate files the test creates, so tests synchronize on events, never on sleeps.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from taskfleet import ExecutionContext, Task
from taskfleet.automations import CronTask, StorageEventTask

GATE_TIMEOUT = 60.0


def test_dir() -> Path:
    return Path(os.environ["TASKFLEET_TEST_DIR"])


def record(context: ExecutionContext, **extra: object) -> None:
    line = json.dumps(
        {
            "task": context.current_task.id,
            "name": context.current_task.identifier[0],
            "version": context.current_task.identifier[1],
            "attempt": context.current_task.attempt,
            "retry": context.current_task.retry_count,
            "pid": os.getpid(),
            "t": time.time(),
            **extra,
        }
    )
    fd = os.open(test_dir() / "executions.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def wait_for_gate(name: str) -> None:
    """Block until the test creates the gate file (a bounded wait: a test that forgets fails loudly)."""
    gate = test_dir() / f"gate-{name}"
    deadline = time.monotonic() + GATE_TIMEOUT
    while not gate.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {name} never opened")
        time.sleep(0.02)


def mark(name: str) -> None:
    (test_dir() / f"mark-{name}").write_text(str(os.getpid()))


class Noop(Task):
    label: str

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label)


class Sleepy(Task):
    label: str
    seconds: float

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label, phase="start")
        time.sleep(self.seconds)
        record(context, label=self.label, phase="end")


class OtherNoop(Task):
    label: str

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label)


class VersionedOld(Task):
    label: str

    @staticmethod
    def identifier() -> tuple[str, str]:
        return "Versioned", "v1.3"

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label, runner_version="v1.3")


class VersionedNew(Task):
    label: str

    @staticmethod
    def identifier() -> tuple[str, str]:
        return "Versioned", "v1.5"

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label, runner_version="v1.5")


class Gated(Task):
    """Marks that it started, waits for its gate, then optionally submits subtasks."""

    label: str
    subtasks: int = 0

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label, phase="start")
        mark(f"started-{self.label}-{context.current_task.attempt}")
        wait_for_gate(self.label)
        context.submit_subtasks([Noop(f"{self.label}.child{i}") for i in range(self.subtasks)])
        record(context, label=self.label, phase="end")


class Fail(Task):
    label: str

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label)
        raise RuntimeError(f"boom in {self.label}")


class FlakyUntilFixed(Task):
    """Fails while the file `broken-<label>` exists; first submits subtasks tagged with its attempt."""

    label: str
    subtasks: int = 0

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label)
        context.submit_subtasks(
            [Noop(f"{self.label}.attempt{context.current_task.attempt}.child{i}") for i in range(self.subtasks)]
        )
        if (test_dir() / f"broken-{self.label}").exists():
            raise ValueError(f"{self.label} is broken")


class FailTimes(Task):
    """Fails the first `failures` executions, then succeeds (counts executions in a file)."""

    label: str
    failures: int

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label)
        counter = test_dir() / f"count-{self.label}"
        n = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(n + 1))
        if n < self.failures:
            raise ConnectionError(f"flaky failure {n + 1} of {self.label}")


class FanOut(Task):
    """Submits `n` Noop subtasks; optionally a fan-in task after them, optionally on another cluster."""

    label: str
    n: int
    fan_in_cluster: str | None = None

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label)
        children = context.submit_subtasks([Noop(f"{self.label}.{i}") for i in range(self.n)])
        if self.fan_in_cluster is not None:
            context.submit_subtask(
                OtherNoop(f"{self.label}.fanin"), depends_on=children, cluster=self.fan_in_cluster or None
            )


class Tree(Task):
    """A parent with nested subtasks and a dependency on a whole subtree:
    A -> (A1, A2); B depends on A (so on A1 and A2 as well); C on another cluster depends on B."""

    other_cluster: str

    def execute(self, context: ExecutionContext) -> None:
        record(context, label="root")
        a = context.submit_subtask(Parent("A", 2))
        b = context.submit_subtask(Sleepy("B", 0.0), depends_on=[a])
        context.submit_subtask(OtherNoop("C"), depends_on=[b], cluster=self.other_cluster)


class Parent(Task):
    label: str
    children: int

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label)
        context.submit_subtasks([Sleepy(f"{self.label}{i + 1}", 0.2) for i in range(self.children)])


ALL = [Noop, Sleepy, Gated, Fail, FlakyUntilFixed, FailTimes, FanOut, Tree, Parent]


class Download(Task):
    """The reference's distributed example: one runner downloads, another processes."""

    label: str

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label)


class Process(Task):
    label: str

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label)


class Pipeline(Task):
    """Download, then Process (which depends on it): registered by both runners of the example."""

    label: str

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label)
        download = context.submit_subtask(Download(f"{self.label}.download"))
        context.submit_subtask(Process(f"{self.label}.process"), depends_on=[download])


class UpgradeOld(Task):
    label: str

    @staticmethod
    def identifier() -> tuple[str, str]:
        return "Upgrade", "v1.2"

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label, runner_version="v1.2")


class UpgradeNew(Task):
    label: str

    @staticmethod
    def identifier() -> tuple[str, str]:
        return "Upgrade", "v1.3"

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label, runner_version="v1.3")


# --- optional tasks and progress (the parity issue) ------------------------------------------------------


class WithOptional(Task):
    """Submits an optional FailTimes (with retries) and a Noop that depends on it."""

    label: str
    failures: int
    retries: int

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label)
        flaky = context.submit_subtask(
            FailTimes(f"{self.label}.opt", self.failures), optional=True, max_retries=self.retries
        )
        context.submit_subtask(Noop(f"{self.label}.after"), depends_on=flaky)


class OptionalBranch(Task):
    """Inside an optional subtree: a failing task, two queued tasks behind it (skipped when it fails), and a
    gated task that, once let through, submits two more subtasks (skipped when claimed)."""

    label: str

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label)
        context.submit_subtask(GatedSubmitter(f"{self.label}.gated"))
        fail = context.submit_subtask(FailAfterGate(f"{self.label}.fail", f"{self.label}.gated-started"))
        behind = context.submit_subtask(Noop(f"{self.label}.behind1"), depends_on=fail)
        context.submit_subtask(Noop(f"{self.label}.behind2"), depends_on=behind)


class FailAfterGate(Task):
    """Fails once the mark `after` exists (so a sibling is surely running when it fails)."""

    label: str
    after: str

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label)
        deadline = time.monotonic() + GATE_TIMEOUT
        while not (test_dir() / f"mark-{self.after}").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        raise RuntimeError(f"boom in {self.label}")


class GatedSubmitter(Task):
    """Waits for its gate, then submits two Noop subtasks."""

    label: str

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label)
        mark(f"{self.label}-started")
        wait_for_gate(self.label)
        context.submit_subtasks([Noop(f"{self.label}.child{i}") for i in range(2)])


class WithOptionalBranch(Task):
    """A required Noop, an optional OptionalBranch, and a Noop depending on both."""

    label: str

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label)
        required = context.submit_subtask(Noop(f"{self.label}.required"))
        branch = context.submit_subtask(OptionalBranch(f"{self.label}.branch"), optional=True)
        context.submit_subtask(Noop(f"{self.label}.final"), depends_on=[required, branch])


class Counted(Task):
    """Reports progress: `items` work under its label (and one unit on the unnamed indicator). Fails after
    counting 3 done while the file `broken-<label>` exists, or for its first `failures` executions."""

    label: str
    items: int
    failures: int = 0

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label)
        counter = test_dir() / f"count-{self.label}"
        n = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(n + 1))
        progress = context.progress("items")
        progress.add(self.items)
        context.progress().add(1)
        progress.done(min(3, self.items))
        if n < self.failures or (test_dir() / f"broken-{self.label}").exists():
            raise RuntimeError(f"{self.label} failed after 3 items")
        progress.done(self.items - min(3, self.items))
        context.progress().done(1)


class CountedFanOut(Task):
    """Submits `n` Counted subtasks of `items` each, the first one failing `failures` times (with retries)."""

    n: int
    items: int
    failures: int = 0

    def execute(self, context: ExecutionContext) -> None:
        record(context, label="fanout")
        context.progress("items").add(0)
        for i in range(self.n):
            failures = self.failures if i == 0 else 0
            context.submit_subtask(Counted(f"c{i}", self.items, failures), max_retries=failures)


# --- the web console's browser tests ---------------------------------------------------------------------


class Steps(Task):
    """Submits `n` GatedStep subtasks (announcing `n` steps of progress), a Noop after them, and a fan-out
    of `leaves` Noops."""

    label: str
    n: int
    leaves: int = 0

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label)
        context.progress("steps").add(self.n)
        steps = context.submit_subtasks([GatedStep(f"{self.label}.{i}") for i in range(self.n)])
        context.submit_subtasks([Noop(f"{self.label}.leaf{i}") for i in range(self.leaves)])
        context.submit_subtask(Noop(f"{self.label}.after"), depends_on=steps)
        context.current_task.display = f"{self.n} steps"


class GatedStep(Task):
    """Waits for its gate, then counts one step done."""

    label: str

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label)
        wait_for_gate(self.label)
        context.progress("steps").done(1)
        context.current_task.display = f"step {self.label}"


class Hostile(Task):
    """A task whose display name is markup (and fails while `broken-<label>` exists)."""

    label: str
    display: str

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label)
        context.current_task.display = self.display
        if (test_dir() / f"broken-{self.label}").exists():
            raise RuntimeError(f"{self.display} failed")


# --- automations -----------------------------------------------------------------------------------------


class Nightly(CronTask):
    """Records the time its schedule fired."""

    region: str

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.region, trigger=self.trigger.time.isoformat())


class OnUpload(StorageEventTask):
    """Records the object that started it."""

    prefix: str

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.prefix, bucket=self.trigger.storage, key=self.trigger.location)


class OuterOptional(Task):
    """An optional task's subtree holding an optional task of its own (InnerOptional) and a task after it."""

    label: str

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label)
        inner = context.submit_subtask(InnerOptional(f"{self.label}.inner"), optional=True)
        context.submit_subtask(Noop(f"{self.label}.after-inner"), depends_on=inner)


class InnerOptional(Task):
    """A failing task and one queued behind it (skipped when it fails)."""

    label: str

    def execute(self, context: ExecutionContext) -> None:
        record(context, label=self.label)
        fail = context.submit_subtask(Fail(f"{self.label}.fail"))
        context.submit_subtask(Noop(f"{self.label}.behind"), depends_on=fail)


class WithOuterOptional(Task):
    def execute(self, context: ExecutionContext) -> None:
        record(context, label="root")
        context.submit_subtask(OuterOptional("outer"), optional=True)


class ManyLabels(Task):
    """Reports `n` progress indicators with long labels."""

    n: int

    def execute(self, context: ExecutionContext) -> None:
        for i in range(self.n):
            progress = context.progress(f"{i:03d}-" + "x" * 96)
            progress.add(2)
            progress.done(1)
