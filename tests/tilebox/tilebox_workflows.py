"""Tilebox task classes for the conformance tests, modelled on the reference docs' examples (tilebox/docs,
workflows/concepts/tasks.mdx, jobs.mdx, clusters.mdx, run-and-inspect/progress.mdx).

Runs ONLY under build/tilebox-venv (`make tilebox`): it imports the unmodified `tilebox.workflows` 0.66.0.
scenario.py imports it, and so does the lease renewer process the SDK spawns. Tasks append one JSON line per
execution to $TILEBOX_TEST_DIR/executions.log (fleet_tasks.py, their taskfleet twins, write the same file), so
a test sees what ran where, in which order, with which display. No sleeps but where a scenario needs a task
that runs a while (Slow, Gated).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from tilebox.workflows import ExecutionContext, Task

GATE_TIMEOUT = 60.0
# Which runner of a scenario executes (scenario.py sets it before each run_all: its runners take turns in one
# process), so a record says where a task ran.
CURRENT_RUNNER = "tilebox"


def test_dir() -> Path:
    return Path(os.environ.get("TILEBOX_TEST_DIR") or ".")


def record(context: ExecutionContext, label: str, **extra: Any) -> None:
    """One line in executions.log, appended atomically (O_APPEND, one write)."""
    task: Any = context.current_task  # the SDK's data.Task: id, identifier, retry_count, job, display
    line = json.dumps(
        {
            "label": label,
            "name": task.identifier.name,
            "version": task.identifier.version,
            "task_id": str(task.id),
            "job_id": str(task.job.id) if task.job is not None else None,
            "parent_id": str(task.parent_id) if task.parent_id else None,
            "retry_count": task.retry_count,
            "display": task.display,
            "runtime": "tilebox",
            "runner": CURRENT_RUNNER,
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


def executions() -> list[dict[str, Any]]:
    path = test_dir() / "executions.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def count_file(name: str) -> int:
    """Increments the counter file `name` in the test directory; returns the count before."""
    counter = test_dir() / f"count-{name}"
    n = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(n + 1))
    return n


# --- basics -----------------------------------------------------------------------------------------------


class Leaf(Task):
    label: str

    def execute(self, context: ExecutionContext) -> None:
        record(context, self.label)


# --- dependencies (tasks.mdx "Dependencies": RootTask with PrintTask, and NewsWorkflow's fan-in) ----------


class PrintTask(Task):
    """Records its message; with `children`, also submits that many PrintTasks (so a task depending on it
    waits for them too: a dependency is on the whole subtree)."""

    message: str
    children: int = 0

    def execute(self, context: ExecutionContext) -> None:
        record(context, self.message)
        for i in range(self.children):
            context.submit_subtask(PrintTask(f"{self.message}.{i}"))


class DependenciesRoot(Task):
    """first (with 2 children) -> second and third (both depend on first) -> last (depends on both)."""

    def execute(self, context: ExecutionContext) -> None:
        record(context, "root")
        first = context.submit_subtask(PrintTask("first", children=2))
        second = context.submit_subtask(PrintTask("second"), depends_on=[first])
        third = context.submit_subtask(PrintTask("third"), depends_on=first)
        context.submit_subtask(PrintTask("last"), depends_on=[second, third])


# --- fan-out (tasks.mdx "Map-Reduce Pattern": SumOfSquares, Square, Sum) ------------------------------------


class SumOfSquares(Task):
    numbers: list[int]

    def execute(self, context: ExecutionContext) -> None:
        record(context, "sum-of-squares")
        square_tasks = context.submit_subtasks([Square(num) for num in self.numbers])
        context.submit_subtask(Sum(), depends_on=square_tasks)


class Square(Task):  # the map step
    num: int

    def execute(self, context: ExecutionContext) -> None:
        result = self.num**2
        context.job_cache.group("squares")[str(self.num)] = str(result).encode()
        context.current_task.display = f"Square({self.num})"
        record(context, f"square-{self.num}", result=result)


class Sum(Task):  # the reduce step: no fields, so its input is empty
    def execute(self, context: ExecutionContext) -> None:
        squares = context.job_cache.group("squares")
        result = sum(int(squares[key].decode()) for key in squares)
        context.current_task.display = f"Sum={result}"
        record(context, "sum", result=result)


# --- routing (clusters.mdx "Jobs Across Different Clusters": MultiCluster, DummyTask) ----------------------


class MultiCluster(Task):
    """a on this cluster -> b on `other_cluster` (depends on a) -> c on this cluster (depends on b)."""

    other_cluster: str

    def execute(self, context: ExecutionContext) -> None:
        record(context, "multi-cluster")
        same_cluster = context.submit_subtask(DummyTask("a"))
        other_cluster = context.submit_subtask(DummyTask("b"), cluster=self.other_cluster, depends_on=[same_cluster])
        context.submit_subtask(DummyTask("c"), depends_on=[other_cluster])


class DummyTask(Task):
    label: str

    def execute(self, context: ExecutionContext) -> None:
        record(context, self.label)


# --- versions (tasks.mdx "Task Identifiers", "Semantic Versioning") -----------------------------------------

VERSIONED = "tilebox.com/conformance/Versioned"


class _Versioned(Task):
    label: str

    def execute(self, context: ExecutionContext) -> None:
        record(context, self.label, registered=list(type(self).identifier()))


class VersionedV12(_Versioned):
    @staticmethod
    def identifier() -> tuple[str, str]:
        return VERSIONED, "v1.2"

    def execute(self, context: ExecutionContext) -> None:
        super().execute(context)


class VersionedV13(_Versioned):
    @staticmethod
    def identifier() -> tuple[str, str]:
        return VERSIONED, "v1.3"

    def execute(self, context: ExecutionContext) -> None:
        super().execute(context)


class VersionedV15(_Versioned):
    @staticmethod
    def identifier() -> tuple[str, str]:
        return VERSIONED, "v1.5"

    def execute(self, context: ExecutionContext) -> None:
        super().execute(context)


class VersionedV20(_Versioned):
    @staticmethod
    def identifier() -> tuple[str, str]:
        return VERSIONED, "v2.0"

    def execute(self, context: ExecutionContext) -> None:
        super().execute(context)


# --- failures and retries (tasks.mdx "Retry Handling", jobs.mdx "Retries") ---------------------------------


class FailTimes(Task):
    """Fails its first `failures` executions (counted in a file), then succeeds."""

    label: str
    failures: int

    def execute(self, context: ExecutionContext) -> None:
        n = count_file(self.label)
        record(context, self.label, execution=n)
        if n < self.failures:
            raise ConnectionError(f"flaky failure {n + 1} of {self.label}")


class FlakyRoot(Task):
    """The docs' RootTask: submits a flaky subtask with retries."""

    label: str
    failures: int
    retries: int

    def execute(self, context: ExecutionContext) -> None:
        record(context, self.label)
        context.submit_subtask(FailTimes(f"{self.label}.flaky", self.failures), max_retries=self.retries)


class FailWhileBroken(Task):
    """Fails while the file broken-<label> exists in the test directory (the test's way to fix it)."""

    label: str

    def execute(self, context: ExecutionContext) -> None:
        record(context, self.label)
        if (test_dir() / f"broken-{self.label}").exists():
            raise ValueError(f"{self.label} is broken")


class FailAlways(Task):
    label: str

    def execute(self, context: ExecutionContext) -> None:
        record(context, self.label)
        raise RuntimeError(f"boom in {self.label}")


# --- optional tasks (tasks.mdx "Optional Tasks", "Nested Optional Tasks") -----------------------------------


class OptionalRoot(Task):
    """required and optional (which fails) -> final (depends on both: runs although optional failed)."""

    def execute(self, context: ExecutionContext) -> None:
        record(context, "optional-root")
        required_step = context.submit_subtask(RequiredStep())
        optional_step = context.submit_subtask(FlakyStep(), optional=True)
        context.submit_subtask(FinalStep(), depends_on=[required_step, optional_step])


class RequiredStep(Task):
    def execute(self, context: ExecutionContext) -> None:
        record(context, "required")


class FlakyStep(Task):
    def execute(self, context: ExecutionContext) -> None:
        record(context, "flaky")
        raise ValueError("optional step failed")


class FinalStep(Task):
    def execute(self, context: ExecutionContext) -> None:
        record(context, "final")


class Pipeline(Task):
    """OptionalProcessing (optional: Step1 fails, so Step2 behind it is SKIPPED) and AlwaysRuns."""

    def execute(self, context: ExecutionContext) -> None:
        record(context, "pipeline")
        context.submit_subtask(OptionalProcessing(), optional=True)
        context.submit_subtask(AlwaysRuns())


class OptionalProcessing(Task):
    def execute(self, context: ExecutionContext) -> None:
        record(context, "optional-processing")
        first = context.submit_subtask(Step1())
        context.submit_subtask(Step2(), depends_on=[first])


class Step1(Task):
    def execute(self, context: ExecutionContext) -> None:
        record(context, "step1")
        raise ValueError("something went wrong")


class Step2(Task):
    def execute(self, context: ExecutionContext) -> None:
        record(context, "step2")  # never: skipped because Step1 failed


class AlwaysRuns(Task):
    def execute(self, context: ExecutionContext) -> None:
        record(context, "always-runs")


# --- progress and displays (run-and-inspect/progress.mdx; jobs.mdx "Customizing Task Display Names") --------


class ProgressRootTask(Task):
    n: int

    def execute(self, context: ExecutionContext) -> None:
        record(context, "progress-root")
        context.progress().add(self.n)  # the unlabelled indicator
        for _ in range(self.n):
            context.submit_subtask(ProgressSubTask())


class ProgressSubTask(Task):
    def execute(self, context: ExecutionContext) -> None:
        record(context, "progress-sub")
        context.progress().done(1)


class MultiProgressWorkflowRoot(Task):
    n: int

    def execute(self, context: ExecutionContext) -> None:
        record(context, "multi-progress-root")
        context.progress("finalize").add(1)
        process = context.submit_subtask(Process(self.n))
        context.submit_subtask(Finalize(), depends_on=[process])


class Process(Task):
    n: int

    def execute(self, context: ExecutionContext) -> None:
        record(context, "process")
        context.progress("step1").add(self.n)
        context.progress("step2").add(self.n)
        for _ in range(self.n):
            step1 = context.submit_subtask(ProgressStep1())
            context.submit_subtask(ProgressStep2(), depends_on=[step1])


class ProgressStep1(Task):
    def execute(self, context: ExecutionContext) -> None:
        record(context, "step1")
        context.progress("step1").done(1)


class ProgressStep2(Task):
    def execute(self, context: ExecutionContext) -> None:
        record(context, "step2")
        context.progress("step2").done(1)


class Finalize(Task):
    def execute(self, context: ExecutionContext) -> None:
        record(context, "finalize")
        context.progress("finalize").done(1)


class DisplayRoot(Task):
    num_subtasks: int

    def execute(self, context: ExecutionContext) -> None:
        context.current_task.display = f"Root({self.num_subtasks})"
        record(context, "display-root")
        for i in range(self.num_subtasks):
            context.submit_subtask(DisplaySubTask(i))


class DisplaySubTask(Task):
    index: int

    def execute(self, context: ExecutionContext) -> None:
        context.current_task.display = f"Leaf Nr. {self.index}"
        record(context, f"display-{self.index}")


# --- tasks that run a while (leases, SIGTERM) ---------------------------------------------------------------


class Slow(Task):
    """Runs `seconds` (longer than a lease, for the lease checks)."""

    label: str
    seconds: float

    def execute(self, context: ExecutionContext) -> None:
        record(context, self.label, phase="start")
        time.sleep(self.seconds)
        record(context, self.label, phase="end")


class Gated(Task):
    """Marks that it started (file started-<label>-<pid>), then waits for the file gate-<label>."""

    label: str

    def execute(self, context: ExecutionContext) -> None:
        record(context, self.label, phase="start")
        (test_dir() / f"started-{self.label}-{os.getpid()}").write_text("")
        gate = test_dir() / f"gate-{self.label}"
        deadline = time.monotonic() + GATE_TIMEOUT
        while not gate.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"gate {self.label} never opened")
            time.sleep(0.02)
        record(context, self.label, phase="end")


# --- one job, two SDKs: taskfleet's runner runs MixedFleet (fleet_tasks.py), Tilebox's runner the rest -------


class MixedRoot(Task):
    """n MixedFleet (taskfleet runs them; each submits a MixedTileboxLeaf back), one MixedFleetPing (no
    fields: an empty input) and MixedFinal, which depends on all of them."""

    n: int

    @staticmethod
    def identifier() -> tuple[str, str]:
        return "conformance/MixedRoot", "v1.0"

    def execute(self, context: ExecutionContext) -> None:
        record(context, "mixed-root")
        context.progress("mixed").add(self.n)
        fleet = context.submit_subtasks([MixedFleet(i) for i in range(self.n)])
        ping = context.submit_subtask(MixedFleetPing())
        context.submit_subtask(MixedFinal(self.n), depends_on=[*fleet, ping])


class MixedFleet(Task):
    """Submitted from here, executed by taskfleet's runner (fleet_tasks.MixedFleet); never registered here."""

    index: int

    @staticmethod
    def identifier() -> tuple[str, str]:
        return "conformance/MixedFleet", "v1.0"

    def execute(self, context: ExecutionContext) -> None:
        raise RuntimeError("MixedFleet runs on taskfleet's runner only")


class MixedFleetPing(Task):
    @staticmethod
    def identifier() -> tuple[str, str]:
        return "conformance/MixedFleetPing", "v1.0"

    def execute(self, context: ExecutionContext) -> None:
        raise RuntimeError("MixedFleetPing runs on taskfleet's runner only")


class MixedTileboxLeaf(Task):
    """Submitted by taskfleet's MixedFleet, executed here."""

    label: str
    index: int

    @staticmethod
    def identifier() -> tuple[str, str]:
        return "conformance/MixedTileboxLeaf", "v1.0"

    def execute(self, context: ExecutionContext) -> None:
        context.current_task.display = f"TileboxLeaf({self.index})"
        record(context, self.label, index=self.index)


class MixedFinal(Task):
    """Runs after the whole fan-out; fails unless both runtimes did their part."""

    count: int

    @staticmethod
    def identifier() -> tuple[str, str]:
        return "conformance/MixedFinal", "v1.0"

    def execute(self, context: ExecutionContext) -> None:
        seen = executions()
        fleet = [e for e in seen if e["runtime"] == "taskfleet" and e["name"] == "conformance/MixedFleet"]
        leaves = [e for e in seen if e["runtime"] == "tilebox" and e["name"] == "conformance/MixedTileboxLeaf"]
        record(context, "mixed-final", fleet=len(fleet), leaves=len(leaves))
        if len(fleet) < self.count or len(leaves) < self.count:
            raise RuntimeError(f"ran before its dependencies: {len(fleet)} fleet, {len(leaves)} leaves")


# What a runner registers when a scenario or the background runner does not say otherwise: everything but the
# version variants (each scenario picks its own) and what only taskfleet's runner executes.
DEFAULT_TASKS: list[type[Task]] = [
    Leaf,
    PrintTask,
    DependenciesRoot,
    SumOfSquares,
    Square,
    Sum,
    MultiCluster,
    DummyTask,
    FailTimes,
    FlakyRoot,
    FailWhileBroken,
    FailAlways,
    OptionalRoot,
    RequiredStep,
    FlakyStep,
    FinalStep,
    Pipeline,
    OptionalProcessing,
    Step1,
    Step2,
    AlwaysRuns,
    ProgressRootTask,
    ProgressSubTask,
    MultiProgressWorkflowRoot,
    Process,
    ProgressStep1,
    ProgressStep2,
    Finalize,
    DisplayRoot,
    DisplaySubTask,
    Slow,
    Gated,
    MixedRoot,
    MixedTileboxLeaf,
    MixedFinal,
]
TASKS_BY_NAME: dict[str, type[Task]] = {
    cls.__name__: cls
    for cls in [*DEFAULT_TASKS, VersionedV12, VersionedV13, VersionedV15, VersionedV20, MixedFleet, MixedFleetPing]
}
