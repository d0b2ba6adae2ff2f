"""SDK-side validation: every mistake below is raised by the SDK before any request is sent, with a
message that says what to fix."""

from __future__ import annotations

import pytest
from taskfleet import Client, ExecutionContext, Task, TaskValidationError
from taskfleet.task import CurrentTask, JobRef


class Item(Task):
    value: object

    def execute(self, context: ExecutionContext) -> None:
        pass


class BadVersion(Task):
    @staticmethod
    def identifier() -> tuple[str, str]:
        return "Bad", "2.0"

    def execute(self, context: ExecutionContext) -> None:
        pass


class NoSend:
    def request(self, *args: object, **kwargs: object) -> object:
        raise AssertionError(f"a request was sent: {args}")


@pytest.fixture
def jobs():
    client = Client("http://127.0.0.1:9")
    client.transport = NoSend()  # type: ignore[assignment]
    return client.jobs()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda j: j.submit("x", []), "at least one task"),
        (lambda j: j.submit("", Item(1)), "job name must be 1-256 characters"),
        (lambda j: j.submit("x" * 257, Item(1)), "job name must be 1-256 characters"),
        (lambda j: j.submit("x", [{"name": "T"}]), "expected a Task instance, got dict"),
        (lambda j: j.submit("x", Item(1), max_retries=-1), "max_retries must be an int 0-100"),
        (lambda j: j.submit("x", Item(1), max_retries=101), "max_retries must be an int 0-100"),
        (lambda j: j.submit("x", Item(1), max_retries="3"), "max_retries must be an int 0-100"),
        (lambda j: j.submit("x", Item({1, 2})), r"Item\.value: value of type set is not JSON-serializable"),
        (lambda j: j.submit("x", Item(float("nan"))), "Item.value: value of type float is not JSON-serializable"),
        (lambda j: j.submit("x", Item("x" * 70_000)), "the limit is 65536 bytes"),
        (lambda j: j.submit("x", Item("\ud800")), "not valid Unicode"),
        (lambda j: j.submit("x", BadVersion()), r"must look like 'v1\.2'"),
        (lambda j: j.submit("x", Item(1), cluster="Not A Slug"), "lowercase letters, digits or single '-'"),
        (lambda j: j.submit("x", Item(1), client_token="t" * 129), "client_token must be a string of 1-128"),
        (lambda j: j.submit("x", Item(1), client_token=""), "client_token must be a string of 1-128"),
    ],
)
def test_submit_mistakes_are_raised_before_sending_with_what_to_fix(jobs, call, message):
    with pytest.raises(TaskValidationError, match=message):
        call(jobs)


def test_subtask_mistakes_are_raised_in_the_task_with_what_to_fix():
    context = ExecutionContext(CurrentTask("t", JobRef("j", "job"), ("X", "v0.0"), 0, 1, None, "default"))
    with pytest.raises(TaskValidationError, match="not JSON-serializable"):
        context.submit_subtask(Item(object()))
    with pytest.raises(TaskValidationError, match="lowercase letters"):
        context.submit_subtask(Item(1), cluster="UPPER")
    with pytest.raises(ValueError, match="earlier in this same execution"):
        context.submit_subtask(Item(1), depends_on=["not a future"])  # type: ignore[list-item]
    context.MAX_SUBTASKS = 2  # type: ignore[misc]
    context.submit_subtasks([Item(1), Item(2)])
    with pytest.raises(TaskValidationError, match="at most 2 subtasks"):
        context.submit_subtask(Item(3))
    assert len(context.submitted_subtasks) == 2
