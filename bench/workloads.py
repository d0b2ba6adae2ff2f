"""Task classes the benchmark runs (importable by runner subprocesses as `bench.workloads`)."""

from __future__ import annotations

import time

from taskfleet import ExecutionContext, Task


class NoOp(Task):
    i: int

    def execute(self, context: ExecutionContext) -> None:
        pass


class Sleep(Task):
    i: int
    seconds: float

    def execute(self, context: ExecutionContext) -> None:
        time.sleep(self.seconds)


class FanOut(Task):
    n: int

    def execute(self, context: ExecutionContext) -> None:
        context.submit_subtasks([NoOp(i) for i in range(self.n)])


class Counted(Task):
    """A no-op task that reports one unit of progress on each of `labels` indicators."""

    i: int
    labels: int = 1

    def execute(self, context: ExecutionContext) -> None:
        for k in range(self.labels):
            progress = context.progress(f"label-{k}")
            progress.add(1)
            progress.done(1)


class CountedFanOut(Task):
    n: int
    labels: int = 1

    def execute(self, context: ExecutionContext) -> None:
        context.progress("label-0").add(0)
        context.submit_subtasks([Counted(i, self.labels) for i in range(self.n)])


class SleepFanOut(Task):
    n: int
    seconds: float

    def execute(self, context: ExecutionContext) -> None:
        context.submit_subtasks([Sleep(i, self.seconds) for i in range(self.n)])


class Chain(Task):
    """n tasks, each depending on the previous one; each records when it started."""

    n: int

    def execute(self, context: ExecutionContext) -> None:
        previous = None
        for i in range(self.n):
            previous = context.submit_subtask(Hop(i), depends_on=[previous] if previous else None)


class Hop(Task):
    i: int

    def execute(self, context: ExecutionContext) -> None:
        context.current_task.display = f"{time.time():.6f}"


class Mixed(Task):
    """A DAG: fan-out of n, a fan-in over all of them on a second cluster, then a final task."""

    n: int
    other_cluster: str

    def execute(self, context: ExecutionContext) -> None:
        fan = context.submit_subtasks([NoOp(i) for i in range(self.n)])
        gather = context.submit_subtask(Gather(self.n), depends_on=fan, cluster=self.other_cluster)
        context.submit_subtask(NoOp(-1), depends_on=[gather])


class Gather(Task):
    n: int

    def execute(self, context: ExecutionContext) -> None:
        pass


ALL = ["NoOp", "Sleep", "FanOut", "SleepFanOut", "Chain", "Hop", "Mixed", "Counted", "CountedFanOut"]
