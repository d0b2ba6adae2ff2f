"""Task classes of the reliability scenarios (tests/support/scenarios.py), run by runner subprocesses as
`tests.support.fault_tasks:<Class>`.

Every execution appends a `start` line and, however it ends, an `end` line (JSON, one O_APPEND write
each, so concurrent runners never interleave) to $TASKFLEET_FAULTS_DIR/executions.log, and holds a
`busy-<pid>` file while it runs, so the harness kills runners mid-task, not between tasks.

The workload, `Pipeline(splits, width, seconds)`: one root that fans out `splits` Split tasks and a
Merge depending on all of them; each Split submits `width` Work tasks (every third submits two Leaf
subtasks), a Flaky task that fails its first attempt (max_retries=2), and a Combine that depends on all
of them. Tasks: 2 + splits * (width + 2 * ceil(width / 3) + 3).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from taskfleet import ExecutionContext, Task


def workdir() -> Path:
    return Path(os.environ["TASKFLEET_FAULTS_DIR"])


def _append(line: dict[str, object]) -> None:
    fd = os.open(workdir() / "executions.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)


@contextmanager
def recorded(context: ExecutionContext, label: str) -> Iterator[None]:
    current = context.current_task
    base = {
        "task": current.id,
        "attempt": current.attempt,
        "pid": os.getpid(),
        "label": label,
        "name": current.identifier[0],
    }
    busy = workdir() / f"busy-{os.getpid()}"
    busy.write_text(current.id)
    _append({**base, "phase": "start", "t": time.time()})
    try:
        yield
    finally:
        _append({**base, "phase": "end", "t": time.time()})
        busy.unlink(missing_ok=True)


def expected_tasks(splits: int, width: int) -> int:
    return 2 + splits * (width + 2 * ((width + 2) // 3) + 3)


class Pipeline(Task):
    splits: int
    width: int
    seconds: float

    def execute(self, context: ExecutionContext) -> None:
        with recorded(context, "pipeline"):
            parts = context.submit_subtasks([Split(f"s{i}", self.width, self.seconds) for i in range(self.splits)])
            context.submit_subtask(Work("merge", self.seconds, 0), depends_on=parts)


class Split(Task):
    label: str
    width: int
    seconds: float

    def execute(self, context: ExecutionContext) -> None:
        with recorded(context, self.label):
            works = context.submit_subtasks(
                [Work(f"{self.label}.w{i}", self.seconds, 2 if i % 3 == 0 else 0) for i in range(self.width)]
            )
            flaky = context.submit_subtask(Flaky(f"{self.label}.flaky"), max_retries=2)
            context.submit_subtask(Work(f"{self.label}.combine", self.seconds, 0), depends_on=[*works, flaky])


class Work(Task):
    label: str
    seconds: float
    leaves: int

    def execute(self, context: ExecutionContext) -> None:
        with recorded(context, self.label):
            time.sleep(self.seconds)
            context.submit_subtasks([Leaf(f"{self.label}.l{i}") for i in range(self.leaves)])


class Leaf(Task):
    label: str

    def execute(self, context: ExecutionContext) -> None:
        with recorded(context, self.label):
            pass


class Flaky(Task):
    """Fails its first try (retry_count 0), succeeds on the retry: exercises failure with retries left."""

    label: str

    def execute(self, context: ExecutionContext) -> None:
        with recorded(context, self.label):
            if context.current_task.retry_count == 0:
                raise RuntimeError(f"{self.label}: first try fails")


class Broken(Task):
    """Fails while the file `broken-<label>` exists in the work dir (a failure without retries, fixed
    later, then the job is retried)."""

    label: str
    children: int = 0

    def execute(self, context: ExecutionContext) -> None:
        with recorded(context, self.label):
            context.submit_subtasks([Leaf(f"{self.label}.c{i}") for i in range(self.children)])
            if (workdir() / f"broken-{self.label}").exists():
                raise RuntimeError(f"{self.label} is broken")


ALL = ["Pipeline", "Split", "Work", "Leaf", "Flaky", "Broken"]
