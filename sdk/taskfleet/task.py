"""Tasks and the execution context, with the reference product's names and semantics.

A `Task` subclass is a dataclass: its annotated attributes are its inputs. Inputs travel as JSON:
no field -> null, one field -> the bare value, several -> an object. `identifier()` returns
`(name, "vMAJOR.MINOR")`, by default `(ClassName, "v0.0")`.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, dataclass_transform

from taskfleet import rules

from .cache import JobCache, NoCacheConfiguredError
from .errors import TaskValidationError


@dataclass_transform()
class Task:
    """Base class of user tasks. Subclasses become dataclasses automatically."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__dataclass_fields__" not in cls.__dict__:
            dataclass(cls)
        if "execute" in cls.__dict__:
            _check_execute(cls)

    @classmethod
    def identifier(cls) -> tuple[str, str]:
        return cls.__name__, "v0.0"

    def execute(self, context: ExecutionContext) -> None:  # pragma: no cover - overridden
        raise NotImplementedError(f"{type(self).__name__} does not implement execute(self, context)")


class _TaskLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes each line with the job and task it belongs to (and passes them on as `extra`)."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = dict(self.extra or {})
        kwargs["extra"] = {**extra, **kwargs.get("extra", {})}
        return f"[job {extra.get('job_id')} task {extra.get('task_id')}] {msg}", kwargs


def _check_execute(cls: type) -> None:
    """`execute` must take the execution context (a Tilebox-style `def execute(self)` would fail only when
    run): checked when the class is defined."""
    execute = inspect.getattr_static(cls, "execute")
    if isinstance(execute, staticmethod | classmethod):
        raise TaskValidationError(f"{cls.__name__}.execute must be a plain method: def execute(self, context)")
    try:
        everything = list(inspect.signature(execute).parameters.values())
    except (TypeError, ValueError):
        return
    parameters = everything[1:]  # after self
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    variadic = any(p.kind == p.VAR_POSITIONAL for p in parameters)
    required = [p for p in positional if p.default is p.empty]
    if (not positional and not variadic) or len(required) > 1:
        raise TaskValidationError(
            f"{cls.__name__}.execute({', '.join(str(p).split(':')[0] for p in everything)}) must take the"
            " execution context as its one argument: def execute(self, context: ExecutionContext) -> None"
        )


def task_identifier(task_or_class: Task | type[Task]) -> tuple[str, str]:
    """The validated (name, version) of a task class or instance."""
    cls = task_or_class if isinstance(task_or_class, type) else type(task_or_class)
    try:
        ident = cls.identifier()
        name, version = ident
    except (TypeError, ValueError):
        raise TaskValidationError(f"{cls.__name__}.identifier() must return (name, 'vMAJOR.MINOR')") from None
    try:
        rules.check_task_name(name)
        rules.parse_version(version)
    except rules.RuleViolation as err:
        raise TaskValidationError(f"{cls.__name__}.identifier(): {err}") from None
    return name, version


def _fields(cls: type) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if f.init]


def _to_json_value(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_json_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_json_value(v) for k, v in value.items()}
    return value


def serialize_input(task: Task, *, args_only: bool = False) -> Any:
    """The JSON value of a task's input; raises TaskValidationError naming the field that cannot go. A task
    that automations start (taskfleet.automations) goes as `{"args": ..., "trigger": ...}`, or as its
    arguments alone with `args_only` (what an automation keeps)."""
    cls = type(task)
    fields = _fields(cls)
    values = {f.name: _to_json_value(getattr(task, f.name)) for f in fields}
    for name, value in values.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise TaskValidationError(
                f"{cls.__name__}.{name}: value of type {type(getattr(task, name)).__name__} "
                f"is not JSON-serializable ({err})"
            ) from None
    if not fields:
        payload: Any = None
    elif len(fields) == 1:
        payload = values[fields[0].name]
    else:
        payload = values
    if getattr(cls, "TRIGGERED", False) and not args_only:
        trigger = task.__dict__.get("_trigger")
        if trigger is None:
            raise TaskValidationError(
                f"{cls.__name__} runs when its automation fires; to submit one by hand,"
                f" submit {cls.__name__}(...).once(...)"
            )
        payload = {"args": payload, "trigger": trigger.wire()}
    try:
        rules.encode_input(payload)
    except rules.RuleViolation as err:
        raise TaskValidationError(f"{cls.__name__}: {err}") from None
    return payload


def _from_json_value(tp: Any, value: Any) -> Any:
    if isinstance(tp, type) and dataclasses.is_dataclass(tp) and isinstance(value, dict):
        hints = typing.get_type_hints(tp)
        return tp(**{k: _from_json_value(hints.get(k), v) for k, v in value.items()})
    origin = typing.get_origin(tp)
    if origin in (list, Sequence) and isinstance(value, list):
        (inner,) = typing.get_args(tp) or (Any,)
        return [_from_json_value(inner, v) for v in value]
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    return value


def deserialize_input(cls: type[Task], payload: Any) -> Task:
    if getattr(cls, "TRIGGERED", False):  # an automation's task: its arguments and what fired it
        if not (isinstance(payload, dict) and "args" in payload and isinstance(payload.get("trigger"), dict)):
            raise TaskValidationError(f"{cls.__name__} expects an automation's input: {{'args': ..., 'trigger': ...}}")
        task = _deserialize_args(cls, payload["args"])
        task.__dict__["_trigger"] = cls._trigger_from_wire(payload["trigger"])  # type: ignore[attr-defined]
        return task
    return _deserialize_args(cls, payload)


def _deserialize_args(cls: type[Task], payload: Any) -> Task:
    fields = _fields(cls)
    hints = typing.get_type_hints(cls)
    if not fields:
        return cls()
    if len(fields) == 1:
        name = fields[0].name
        return cls(**{name: _from_json_value(hints.get(name), payload)})
    if not isinstance(payload, dict):
        raise TaskValidationError(f"{cls.__name__} expects an object input, got {type(payload).__name__}")
    return cls(**{f.name: _from_json_value(hints.get(f.name), payload[f.name]) for f in fields if f.name in payload})


def is_async(task: Task) -> bool:
    return inspect.iscoroutinefunction(type(task).execute)


# --- execution context ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobRef:
    id: str
    name: str


@dataclass
class CurrentTask:
    """What a running task knows about itself. `display` is writable and reported with the result."""

    id: str
    job: JobRef
    identifier: tuple[str, str]
    retry_count: int
    attempt: int
    parent_id: str | None
    cluster: str
    display: str | None = None


@dataclass(frozen=True)
class FutureTask:
    """A subtask submitted in this execution; pass it to `depends_on` of later submissions."""

    index: int
    identifier: tuple[str, str]
    _owner: int = field(repr=False, compare=False)


@dataclass
class SubtaskSpec:
    name: str
    version: str
    input: Any
    depends_on: list[int]
    cluster: str | None
    max_retries: int
    optional: bool = False

    def wire(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "input": self.input,
            "max_retries": self.max_retries,
        }
        if self.depends_on:
            data["depends_on"] = self.depends_on
        if self.cluster:
            data["cluster"] = self.cluster
        if self.optional:
            data["optional"] = True
        return data


def task_spec(
    task: Task,
    *,
    depends_on: list[int],
    cluster: str | None,
    max_retries: int,
    optional: bool = False,
    args_only: bool = False,
) -> SubtaskSpec:
    if not isinstance(task, Task):
        raise TaskValidationError(f"expected a Task instance, got {type(task).__name__}")
    if not isinstance(max_retries, int) or not (0 <= max_retries <= rules.MAX_RETRIES_LIMIT):
        raise TaskValidationError(f"max_retries must be an int 0-{rules.MAX_RETRIES_LIMIT}")
    if cluster is not None:
        try:
            rules.check_slug(cluster)
        except rules.RuleViolation as err:
            raise TaskValidationError(str(err)) from None
    if not isinstance(optional, bool):
        raise TaskValidationError(f"optional must be True or False, got {optional!r:.40}")
    name, version = task_identifier(task)
    return SubtaskSpec(
        name, version, serialize_input(task, args_only=args_only), depends_on, cluster, max_retries, optional
    )


class ProgressUpdate:
    """One progress indicator of a task: `add(n)` work to do, `done(n)` work done. Reported with the task's
    result; the job's indicators sum every task's, and a retried task counts once (its last attempt)."""

    def __init__(self, label: str | None) -> None:
        self.label = label
        self.total = 0
        self.completed = 0

    @staticmethod
    def _count(n: Any) -> int:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise TaskValidationError(f"a progress count must be a non-negative int, got {n!r:.40}")
        return n

    def add(self, n: int) -> None:
        """There is `n` more work to do."""
        self.total = min(self.total + self._count(n), rules.MAX_PROGRESS_COUNT)

    def done(self, n: int) -> None:
        """`n` more work is done."""
        self.completed = min(self.completed + self._count(n), rules.MAX_PROGRESS_COUNT)

    def __repr__(self) -> str:
        return f"ProgressUpdate(label={self.label!r}, total={self.total}, done={self.completed})"


class ExecutionContext:
    """Handed to `Task.execute`. Subtasks are collected here and become visible only when the
    execution returns successfully; a failed execution's subtasks are discarded."""

    MAX_SUBTASKS: ClassVar[int] = rules.MAX_SUBTASKS_PER_REPORT

    def __init__(self, current_task: CurrentTask, *, runner_context: Any = None, cache: JobCache | None = None) -> None:
        self.current_task = current_task
        self._subtasks: list[SubtaskSpec] = []
        # What the runner was given as `context=`: resources its tasks share (a model, a connection pool).
        self.runner_context = runner_context
        self._logger: logging.LoggerAdapter[logging.Logger] | None = None
        self._cache = cache  # the runner's `cache=`: its root; a task sees only its job's group of it
        self._job_cache: JobCache | None = None
        self._progress: dict[str, ProgressUpdate] = {}

    def progress(self, label: str | None = None) -> ProgressUpdate:
        """The task's progress indicator named `label` (None: the job's unnamed one), created on first use:
        `.add(n)` work to do, `.done(n)` work done. At most 1,000 labels per task, each up to 100 characters."""
        if label is not None and (not isinstance(label, str) or not label):
            raise TaskValidationError(f"a progress label must be a non-empty str or None, got {label!r:.40}")
        key = label or ""
        if key not in self._progress:
            if len(key) > rules.MAX_PROGRESS_LABEL_CHARS:
                raise TaskValidationError(
                    f"progress label {key[:40]!r}... is {len(key)} characters; at most {rules.MAX_PROGRESS_LABEL_CHARS}"
                )
            if len(self._progress) >= rules.MAX_PROGRESS_LABELS:
                raise TaskValidationError(f"a task may have at most {rules.MAX_PROGRESS_LABELS} progress labels")
            self._progress[key] = ProgressUpdate(label)
        return self._progress[key]

    @property
    def reported_progress(self) -> list[dict[str, Any]]:
        """The indicators as a report carries them."""
        return [{"label": p.label, "total": p.total, "done": p.completed} for p in self._progress.values()]

    @property
    def job_cache(self) -> JobCache:
        """This job's cache (`cache[key] = bytes`, `cache[key]`, `in`, iteration, `items()`, `group(name)`),
        shared by the job's tasks and seeing no other job's keys. NoCacheConfiguredError if the runner was
        given no `cache=`."""
        if self._job_cache is None:
            if self._cache is None:
                raise NoCacheConfiguredError()
            self._job_cache = self._cache.group(self.current_task.job.id)
        return self._job_cache

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger bound to this job and task (its lines name both), writing to the runner's log."""
        if self._logger is None:
            task = self.current_task
            self._logger = _TaskLogger(logging.getLogger("taskfleet.task"), {"job_id": task.job.id, "task_id": task.id})
        return self._logger

    def submit_subtask(
        self,
        task: Task,
        depends_on: FutureTask | Sequence[FutureTask] | None = None,
        cluster: str | None = None,
        max_retries: int = 0,
        optional: bool = False,
    ) -> FutureTask:
        """Submit a subtask; it runs once this execution returns successfully. `depends_on`: futures of
        siblings submitted earlier here; `cluster`: another cluster's slug; `optional=True`: its failure
        (after its retries) leaves it FAILED_OPTIONAL and the job goes on (its dependants still run)."""
        if len(self._subtasks) >= self.MAX_SUBTASKS:
            raise TaskValidationError(f"a task may submit at most {self.MAX_SUBTASKS} subtasks")
        deps = [depends_on] if isinstance(depends_on, FutureTask) else list(depends_on or [])
        indices = []
        for dep in deps:
            if not isinstance(dep, FutureTask) or dep._owner != id(self) or dep.index >= len(self._subtasks):
                raise TaskValidationError(
                    f"depends_on: {dep!r:.100} is not a future returned by submit_subtask earlier in this same"
                    " execution (a task may depend only on its siblings submitted before it)"
                )
            indices.append(dep.index)
        spec = task_spec(
            task, depends_on=sorted(set(indices)), cluster=cluster, max_retries=max_retries, optional=optional
        )
        self._subtasks.append(spec)
        return FutureTask(len(self._subtasks) - 1, (spec.name, spec.version), id(self))

    def submit_subtasks(
        self,
        tasks: Sequence[Task],
        depends_on: FutureTask | Sequence[FutureTask] | None = None,
        cluster: str | None = None,
        max_retries: int = 0,
        optional: bool = False,
    ) -> list[FutureTask]:
        return [self.submit_subtask(t, depends_on, cluster, max_retries, optional) for t in tasks]

    @property
    def submitted_subtasks(self) -> list[SubtaskSpec]:
        return list(self._subtasks)
