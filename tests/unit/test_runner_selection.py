"""Which registered class a runner picks for a submitted (name, version)."""

from __future__ import annotations

from taskfleet import ExecutionContext, Task
from taskfleet_runner.runner import TaskRunner


def make(version: str) -> type[Task]:
    class V(Task):
        @staticmethod
        def identifier() -> tuple[str, str]:
            return "V", version

        def execute(self, context: ExecutionContext) -> None:
            pass

    V.__qualname__ = f"V{version}"
    return V


def test_runner_prefers_the_newest_compatible_registration():
    runner = TaskRunner.__new__(TaskRunner)
    runner._registry = {}
    v12, v15, v20 = make("v1.2"), make("v1.5"), make("v2.0")
    for cls in (v12, v15, v20):
        runner.register(cls)
    assert runner.task_class_for("V", "v1.0") is v15
    assert runner.task_class_for("V", "v1.3") is v15
    assert runner.task_class_for("V", "v1.6") is None
    assert runner.task_class_for("V", "v2.0") is v20
    assert runner.task_class_for("W", "v1.0") is None
