"""taskfleet twins of tilebox_workflows.py's tasks: the same identifiers and inputs, written with taskfleet's
SDK (runs in .venv, never imports tilebox).

- MixedFleet and MixedFleetPing: executed by a taskfleet runner (`python -m taskfleet_runner ...
  fleet_tasks:MixedFleet fleet_tasks:MixedFleetPing`) in the mixed job, where the Tilebox runner serves the rest;
  MixedFleet submits MixedTileboxLeaf back for the Tilebox runner.
- Leaf, Slow, Gated, MixedTileboxLeaf: submitted with taskfleet's SDK, executed by a Tilebox runner (their
  `execute` here is never meant to run).

Executions are appended to $TILEBOX_TEST_DIR/executions.log in tilebox_workflows.record's format, with
runtime "taskfleet".
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from taskfleet import ExecutionContext, Task


def test_dir() -> Path:
    return Path(os.environ.get("TILEBOX_TEST_DIR") or ".")


def record(context: ExecutionContext, label: str, **extra: Any) -> None:
    task = context.current_task
    line = json.dumps(
        {
            "label": label,
            "name": task.identifier[0],
            "version": task.identifier[1],
            "task_id": task.id,
            "job_id": task.job.id,
            "parent_id": task.parent_id,
            "retry_count": task.retry_count,
            "display": task.display,
            "runtime": "taskfleet",
            "runner": "taskfleet",
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


class _TileboxOnly(Task):
    def execute(self, context: ExecutionContext) -> None:
        raise RuntimeError(f"{type(self).__name__} runs on a Tilebox runner only")


# --- executed here ------------------------------------------------------------------------------------------


class MixedFleet(Task):
    index: int

    @staticmethod
    def identifier() -> tuple[str, str]:
        return "conformance/MixedFleet", "v1.0"

    def execute(self, context: ExecutionContext) -> None:
        context.current_task.display = f"Fleet({self.index})"
        record(context, f"fleet-{self.index}", index=self.index)
        context.progress("mixed").done(1)
        context.submit_subtask(MixedTileboxLeaf(f"leaf-{self.index}", self.index))


class MixedFleetPing(Task):
    """No fields: the Tilebox SDK submits it with an empty input."""

    @staticmethod
    def identifier() -> tuple[str, str]:
        return "conformance/MixedFleetPing", "v1.0"

    def execute(self, context: ExecutionContext) -> None:
        record(context, "fleet-ping")


# --- submitted here, executed by a Tilebox runner -----------------------------------------------------------


class MixedTileboxLeaf(_TileboxOnly):
    label: str
    index: int

    @staticmethod
    def identifier() -> tuple[str, str]:
        return "conformance/MixedTileboxLeaf", "v1.0"


class Leaf(_TileboxOnly):
    label: str


class Slow(_TileboxOnly):
    label: str
    seconds: float


class Gated(_TileboxOnly):
    label: str
