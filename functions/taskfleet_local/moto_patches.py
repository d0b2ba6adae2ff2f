"""Every patch the emulator makes to moto's internals, each guarded against the installed moto.

moto's internals change between releases, so each patch is a named `Patch` in the registry `PATCHES`. Before
it is applied, its check confirms that the moto internals it replaces are still there with the expected
shape (the attribute exists, the function takes the same parameters, its source still does what the patch
assumes). When they are not:
- a speed-up is skipped with a `MotoPatchSkipped` warning naming it and the installed moto version; moto then
  runs as shipped, slower but right;
- a correctness patch raises `MotoPatchError` naming the moto version and the tested range: the emulator
  would otherwise serve wrong answers.
Applying is idempotent (an applied patch marks its replacement). `applied_patches()` and `moto_version()`
say what this process runs; `report()` gathers both (the emulator serves it to its parent).
Tested with moto `TESTED_MOTO` (moto 5.2.1 lacks the server's `MotoRequestHandler`, see emulator.py).

The patches:
- `module-list` (speed-up): moto's dispatcher lists its own package directory on disk
  (`moto.backends.list_of_moto_modules`) for every request; the patch lists it once (the installed package
  does not change while the server runs).
- `sqs-clock` (speed-up): moto's SQS reads the clock through datetime arithmetic
  (`moto.sqs.models.unix_time`, `unix_time_millis`) for every message it scans, several scans per request;
  the patch gives it the same epoch seconds from `time.time()`. Visibility, delays and retention all compare
  the same numbers as before.
- `sqs-retention` (speed-up): to check a message against its queue's retention period, moto builds all of
  the queue's attributes, for every message a receive returns
  (`SQSBackend.is_message_valid_based_on_retention_period`); the patch reads the retention period
  directly, the same comparison against the same (SQS) clock.
- `sqs-inflight-copy` (correctness): moto iterates a queue's in-flight set (`Queue.pending_message_groups`)
  while other request threads add to it and remove from it: "Set changed size during iteration", a 500
  that Celery's kombu consumer did not survive. The patch copies the set before iterating it.
- `dynamodb-json` (speed-up): moto serializes DynamoDB item responses through its generic, model-driven
  response serializer (`DynamoResult.execute_result`, inherited from `ActionResult`), which costs more CPU
  than the request's actual work. The patch writes the item operations' results (GetItem, PutItem,
  UpdateItem, DeleteItem, Query, Scan, BatchGetItem, TransactGetItems) with `json.dumps` when they hold
  only JSON-native values (`dynamodb_json_body`): the same JSON up to key order and members outside the
  model (which SDKs ignore), capacity units written as floats as moto's serializer does; anything else
  (binary, timestamps, sets...) goes through moto's serializer as before. Status and headers are unchanged.

The speed-ups apply to every system measured on the emulator, taskfleet and the benchmark's Celery peer
alike. `select()` picks the patches for the emulator's switches: the correctness patches always.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import json
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

TESTED_MOTO = ">=5.2.5,<5.3"  # the range the emulator's tests ran against (5.2.5)

_MARKER = "taskfleet_patch"  # set on every replacement, to the name of the patch that installed it


class MotoPatchError(RuntimeError):
    """A correctness patch does not fit the installed moto."""


class MotoPatchSkipped(UserWarning):
    """A speed-up does not fit the installed moto and was skipped."""


@dataclass(frozen=True)
class Patch:
    """One patch of moto's internals, in moto module `module`.

    check(module) returns None when the internals it replaces have the expected shape, else the reason;
    apply(module) installs the replacement; target(module) returns the object the patch replaces (its
    replacement, once applied: `ensure` marks it with the patch's name, so applying twice does nothing)."""

    name: str
    kind: Literal["speed-up", "correctness"]
    module: str
    check: Callable[[ModuleType], str | None]
    target: Callable[[ModuleType], Any]
    apply: Callable[[ModuleType], None]


def moto_version() -> str:
    try:
        return importlib.metadata.version("moto")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# --- checks ----------------------------------------------------------------------------------------------


def _parameters(owner: Any, attr: str, expected: tuple[str, ...]) -> str | None:
    """None when owner.attr is a function of exactly these parameters, else the reason."""
    function = getattr(owner, attr, None)
    label = f"{getattr(owner, '__name__', owner)}.{attr}"
    if not callable(function):
        return f"{label} is missing"
    try:
        found = tuple(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return f"{label} has no readable signature"
    return None if found == expected else f"{label} takes {found}, expected {expected}"


def _source_has(function: Any, label: str, *markers: str) -> str | None:
    """None when the function's source contains every marker, else the reason."""
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return f"the source of {label} is not available"
    missing = [m for m in markers if m not in source]
    return f"{label} no longer contains {missing}" if missing else None


def _first(*reasons: Callable[[], str | None]) -> str | None:
    """The first reason any of these checks gives (they run in order, and stop at the first)."""
    for reason in reasons:
        found = reason()
        if found is not None:
            return found
    return None


# --- module-list -----------------------------------------------------------------------------------------


def _check_module_list(backends: ModuleType) -> str | None:
    def called_through_the_module() -> str | None:
        # the dispatcher must look the function up on moto.backends at each call, or replacing it does nothing
        from moto.moto_server import werkzeug_app

        return _source_has(werkzeug_app, "moto.moto_server.werkzeug_app", "backends.list_of_moto_modules()")

    return _first(lambda: _parameters(backends, "list_of_moto_modules", ()), called_through_the_module)


def _apply_module_list(backends: ModuleType) -> None:
    modules = tuple(backends.list_of_moto_modules())

    def list_of_moto_modules() -> tuple[str, ...]:
        return modules

    backends.list_of_moto_modules = list_of_moto_modules  # type: ignore[attr-defined]


# --- sqs-clock -------------------------------------------------------------------------------------------


def _check_sqs_clock(sqs_models: ModuleType) -> str | None:
    return _first(
        lambda: _parameters(sqs_models, "unix_time", ("dt",)),
        lambda: _parameters(sqs_models, "unix_time_millis", ("dt",)),
    )


def _apply_sqs_clock(sqs_models: ModuleType) -> None:
    original = sqs_models.unix_time

    def unix_time(dt: Any = None) -> float:
        return time.time() if dt is None else float(original(dt))

    def unix_time_millis(dt: Any = None) -> float:
        return unix_time(dt) * 1000.0

    sqs_models.unix_time = unix_time  # type: ignore[attr-defined]
    sqs_models.unix_time_millis = unix_time_millis  # type: ignore[attr-defined]


# --- sqs-retention ---------------------------------------------------------------------------------------


def _check_sqs_retention(sqs_models: ModuleType) -> str | None:
    backend = getattr(sqs_models, "SQSBackend", None)
    method = "is_message_valid_based_on_retention_period"
    return _first(
        lambda: None if backend is not None else "moto.sqs.models.SQSBackend is missing",
        lambda: _parameters(backend, method, ("self", "queue_name", "message")),
        lambda: _parameters(backend, "get_queue", ("self", "queue_name")),
        lambda: _parameters(sqs_models, "unix_time", ("dt",)),
        lambda: _source_has(
            getattr(backend, method),
            f"SQSBackend.{method}",
            "MessageRetentionPeriod",
            "message.sent_timestamp / 1000",
            "unix_time()",
        ),
    )


def _apply_sqs_retention(sqs_models: ModuleType) -> None:
    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        # moto builds every attribute of the queue to read this one, for each message a receive returns
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > sqs_models.unix_time())

    sqs_models.SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period


# --- sqs-inflight-copy -----------------------------------------------------------------------------------


def _pending_message_groups(sqs_models: ModuleType) -> Any:
    return sqs_models.Queue.__dict__["pending_message_groups"].fget


def _check_sqs_inflight_copy(sqs_models: ModuleType) -> str | None:
    queue = getattr(sqs_models, "Queue", None)
    found = vars(queue).get("pending_message_groups") if isinstance(queue, type) else None
    if not isinstance(found, property) or found.fget is None:
        return "moto.sqs.models.Queue.pending_message_groups is not a property"
    return _source_has(found.fget, "Queue.pending_message_groups", "self._pending_messages", "group_id")


def _apply_sqs_inflight_copy(sqs_models: ModuleType) -> None:
    def pending_message_groups(self: Any) -> set[str]:
        # moto iterates the in-flight set while other request threads add to it and remove from it
        # ("Set changed size during iteration", a 500 that crashed the peer's kombu consumer): copy first
        return {m.group_id for m in list(self._pending_messages) if m.group_id is not None}

    sqs_models.Queue.pending_message_groups = property(pending_message_groups)


# --- dynamodb-json ---------------------------------------------------------------------------------------

# DynamoDB operations whose results are items (AttributeValue maps) plus counts and capacity: their output
# models hold strings, booleans, integers (Count, ScannedCount) and doubles (capacity, size estimates) only.
_FAST_DYNAMODB_OPERATIONS = frozenset(
    {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}
)


def _not_json_native(value: Any) -> Any:
    raise TypeError(type(value).__name__)


def _has_int(value: Any) -> bool:
    if type(value) is int:
        return True
    if isinstance(value, dict):
        return any(_has_int(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_int(v) for v in value)
    return False


def _ints_to_floats(value: Any) -> Any:
    if type(value) is int:
        return float(value)
    if isinstance(value, dict):
        return {k: _ints_to_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints_to_floats(v) for v in value]
    return value


def dynamodb_json_body(result: Any, context: Any) -> str | None:
    """The response body moto's serializer would write for this DynamoDB result, by `json.dumps`, or None
    when that shortcut does not apply (then moto's serializer must write it)."""
    from moto import settings

    if (
        type(result) is not dict
        or context.operation_model.name not in _FAST_DYNAMODB_OPERATIONS
        or context.service_model.protocol != "json"
        or getattr(context.response, "RESPONSE_KEY_PATH_TO_TRANSFORMER", None)
        or _has_int(result.get("ItemCollectionMetrics"))  # its sizes are doubles, its key AttributeValues
    ):
        return None
    if _has_int(result.get("ConsumedCapacity")):
        # Every number in ConsumedCapacity is a double in the model, and moto's serializer writes it as one;
        # moto's BatchGetItem counts capacity units in ints.
        result = {**result, "ConsumedCapacity": _ints_to_floats(result["ConsumedCapacity"])}
    try:
        # bytes, datetime, Decimal, sets, enums... raise TypeError; NaN and infinities ValueError.
        return json.dumps(
            result, default=_not_json_native, allow_nan=False, indent=4 if settings.PRETTIFY_RESPONSES else None
        )
    except (TypeError, ValueError):
        return None


def _check_dynamodb_json(responses: ModuleType) -> str | None:
    from moto import settings
    from moto.core import responses as core

    dynamo_result = getattr(responses, "DynamoResult", None)
    action_result = getattr(core, "ActionResult", None)
    context_fields = set(getattr(getattr(core, "ActionContext", None), "__dataclass_fields__", ()))
    return _first(
        lambda: None if isinstance(dynamo_result, type) else "moto.dynamodb.responses.DynamoResult is missing",
        lambda: _parameters(dynamo_result, "execute_result", ("self", "context")),
        # the shortcut stands in for the generic serializer, which DynamoResult must still inherit
        lambda: (
            None
            if getattr(dynamo_result, "execute_result", None) is getattr(action_result, "execute_result", 0)
            else "DynamoResult.execute_result is not moto.core.responses.ActionResult's"
        ),
        lambda: (
            None
            if isinstance(getattr(dynamo_result, "result", None), property)
            else "DynamoResult.result is not a property"
        ),
        lambda: (
            None
            if {"service_model", "operation_model", "response"} <= context_fields
            else "moto.core.responses.ActionContext lacks service_model, operation_model or response"
        ),
        lambda: None if hasattr(settings, "PRETTIFY_RESPONSES") else "moto.settings.PRETTIFY_RESPONSES is missing",
    )


def _apply_dynamodb_json(responses: ModuleType) -> None:
    original = responses.DynamoResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        body = dynamodb_json_body(self.result, context)
        if body is None:
            return original(self, context)
        # What moto's JSON serializer sets; call_action adds the request id and the CRC32 header after this.
        status = context.operation_model.http.get("responseCode", 200)
        version = context.service_model.metadata.get("jsonVersion", "1.0")
        return status, {"Content-Type": f"application/x-amz-json-{version}"}, body

    responses.DynamoResult.execute_result = execute_result


# --- the registry ----------------------------------------------------------------------------------------

PATCHES: dict[str, Patch] = {
    p.name: p
    for p in (
        Patch(
            "module-list",
            "speed-up",
            "moto.backends",
            _check_module_list,
            lambda m: m.list_of_moto_modules,
            _apply_module_list,
        ),
        Patch("sqs-clock", "speed-up", "moto.sqs.models", _check_sqs_clock, lambda m: m.unix_time, _apply_sqs_clock),
        Patch(
            "sqs-retention",
            "speed-up",
            "moto.sqs.models",
            _check_sqs_retention,
            lambda m: m.SQSBackend.is_message_valid_based_on_retention_period,
            _apply_sqs_retention,
        ),
        Patch(
            "sqs-inflight-copy",
            "correctness",
            "moto.sqs.models",
            _check_sqs_inflight_copy,
            _pending_message_groups,
            _apply_sqs_inflight_copy,
        ),
        Patch(
            "dynamodb-json",
            "speed-up",
            "moto.dynamodb.responses",
            _check_dynamodb_json,
            lambda m: m.DynamoResult.execute_result,
            _apply_dynamodb_json,
        ),
    )
}
CLOCK_SPEED_UPS = ("module-list", "sqs-clock", "sqs-retention")
DYNAMODB_SPEED_UPS = ("dynamodb-json",)

_lock = threading.Lock()
_applied: dict[str, None] = {}  # names, in the order applied
_skipped: dict[str, str] = {}  # name: why


def select(*, fast_clock: bool = True, fast_dynamodb: bool = True) -> list[str]:
    """The patches for the emulator's switches: every correctness patch, and the chosen speed-ups."""
    wanted = {name for name, p in PATCHES.items() if p.kind == "correctness"}
    wanted.update(CLOCK_SPEED_UPS if fast_clock else ())
    wanted.update(DYNAMODB_SPEED_UPS if fast_dynamodb else ())
    return [name for name in PATCHES if name in wanted]


def apply_patches(names: Iterable[str]) -> list[str]:
    """Apply these patches of the registry (see `ensure`); returns the names of those now in place."""
    return [name for name in names if ensure(PATCHES[name])]


def ensure(patch: Patch) -> bool:
    """Apply the patch unless it is in place already; True when it is in place afterwards.

    A patch that does not fit the installed moto is skipped with a MotoPatchSkipped warning (a speed-up,
    then False) or raises MotoPatchError (a correctness patch); moto is left unchanged either way."""
    with _lock:
        reason = misfit(patch)
        if reason is None:
            module = importlib.import_module(patch.module)
            if not _is_applied(patch, module):
                patch.apply(module)
                setattr(patch.target(module), _MARKER, patch.name)
            _applied[patch.name] = None
            _skipped.pop(patch.name, None)
            return True
        version = moto_version()
        if patch.kind == "correctness":
            raise MotoPatchError(
                f"moto patch {patch.name!r} (correctness) does not fit moto {version}: {reason}. "
                f"Without it the emulator serves wrong answers; taskfleet is tested with moto {TESTED_MOTO}."
            )
        _skipped[patch.name] = reason
        warnings.warn(
            f"moto patch {patch.name!r} (speed-up) skipped, it does not fit moto {version}: {reason} "
            f"(taskfleet is tested with moto {TESTED_MOTO})",
            MotoPatchSkipped,
            stacklevel=2,
        )
        return False


def misfit(patch: Patch) -> str | None:
    """None when the patch is in place or fits the installed moto, else why it does not fit."""
    try:
        module = importlib.import_module(patch.module)
        return None if _is_applied(patch, module) else patch.check(module)
    except (ImportError, AttributeError, KeyError, TypeError) as e:
        return f"{type(e).__name__}: {e}"


def _is_applied(patch: Patch, module: ModuleType) -> bool:
    try:
        return getattr(patch.target(module), _MARKER, None) == patch.name
    except (AttributeError, KeyError):
        return False


def applied_patches() -> list[str]:
    """The names of the patches applied in this process, in the order applied."""
    with _lock:
        return list(_applied)


def skipped_patches() -> dict[str, str]:
    """The speed-ups skipped in this process, each with the reason."""
    with _lock:
        return dict(_skipped)


def report() -> dict[str, Any]:
    """moto's version, the tested range, and the patches applied and skipped in this process."""
    return {"moto": moto_version(), "tested": TESTED_MOTO, "applied": applied_patches(), "skipped": skipped_patches()}
