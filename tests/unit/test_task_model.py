"""The SDK's Task model: dataclass inputs, JSON serialization, identifiers, subtask submission rules."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from taskfleet import DuplicateTaskError, ExecutionContext, Task, TaskValidationError
from taskfleet.task import CurrentTask, JobRef, deserialize_input, serialize_input, task_identifier


class NoFields(Task):
    def execute(self, context: ExecutionContext) -> None:
        pass


class OneField(Task):
    value: int

    def execute(self, context: ExecutionContext) -> None:
        pass


@dataclass
class Box:
    w: int
    h: int


class Several(Task):
    name: str
    boxes: list[Box]
    note: str = "none"

    def execute(self, context: ExecutionContext) -> None:
        pass


def context() -> ExecutionContext:
    return ExecutionContext(CurrentTask("t", JobRef("j", "job"), ("X", "v0.0"), 0, 1, None, "default"))


def test_inputs_serialize_like_the_reference_and_round_trip():
    assert serialize_input(NoFields()) is None
    assert serialize_input(OneField(3)) == 3
    payload = serialize_input(Several("a", [Box(1, 2)]))
    assert payload == {"name": "a", "boxes": [{"w": 1, "h": 2}], "note": "none"}
    assert deserialize_input(Several, payload) == Several("a", [Box(1, 2)])
    assert deserialize_input(OneField, 3) == OneField(3)
    assert deserialize_input(NoFields, None) == NoFields()


def test_unserializable_field_is_named_in_the_error():
    with pytest.raises(TaskValidationError, match=r"OneField\.value: value of type set"):
        serialize_input(OneField({1}))  # type: ignore[arg-type]


def test_oversized_input_is_rejected_before_sending():
    with pytest.raises(TaskValidationError, match="limit is 65536 bytes"):
        serialize_input(OneField("x" * 70_000))  # type: ignore[arg-type]


def test_identifier_defaults_and_validation():
    assert task_identifier(OneField) == ("OneField", "v0.0")

    class BadVersion(Task):
        @staticmethod
        def identifier() -> tuple[str, str]:
            return "x", "1.0"

    class BadName(Task):
        @staticmethod
        def identifier() -> tuple[str, str]:
            return "", "v1.0"

    with pytest.raises(TaskValidationError, match=r"v1\.2"):
        task_identifier(BadVersion)
    with pytest.raises(TaskValidationError, match="task name"):
        task_identifier(BadName)


def test_depends_on_accepts_only_earlier_futures_of_the_same_execution():
    ctx, other = context(), context()
    a = ctx.submit_subtask(OneField(1))
    b = ctx.submit_subtask(OneField(2), depends_on=a)
    ctx.submit_subtasks([OneField(3), OneField(4)], depends_on=[a, b])
    assert [s.depends_on for s in ctx.submitted_subtasks] == [[], [0], [0, 1], [0, 1]]
    foreign = other.submit_subtask(OneField(9))
    with pytest.raises(ValueError, match="earlier in this same execution"):
        ctx.submit_subtask(OneField(5), depends_on=[foreign])


def test_registering_two_classes_with_one_identifier_is_an_error():
    from taskfleet_runner.runner import TaskRunner

    class A(Task):
        @staticmethod
        def identifier() -> tuple[str, str]:
            return "Same", "v1.0"

        def execute(self, context: ExecutionContext) -> None:
            pass

    class B(A):
        pass

    runner = TaskRunner.__new__(TaskRunner)
    runner._registry = {}
    runner.register(A)
    with pytest.raises(DuplicateTaskError, match="Same"):
        runner.register(B)
    with pytest.raises(TypeError, match="no execute"):
        runner.register(NoExecute)


class NoExecute(Task):
    x: int
