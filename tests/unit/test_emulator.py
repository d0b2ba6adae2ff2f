"""The emulator: moto's server in a child process, its counts and controls, the guards of its moto patches,
and the DynamoDB response shortcut (same parsed results as moto's own serializer)."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.metadata
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from taskfleet_local import moto_patches
from taskfleet_local.emulator import Emulator, EmulatorError
from taskfleet_local.moto_patches import MotoPatchError, MotoPatchSkipped, Patch, dynamodb_json_body

FUNCTIONS = str(Path(__file__).resolve().parents[2] / "functions")  # where taskfleet_local lives
CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (FUNCTIONS, os.environ.get("PYTHONPATH")) if p)}
TABLE = "items"


def _client(emulator: Emulator, service: str = "dynamodb") -> Any:
    return boto3.session.Session().client(
        service,
        endpoint_url=emulator.url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def _create_table(ddb: Any) -> None:
    ddb.create_table(
        TableName=TABLE,
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def _wait_gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


# --- the guards of the moto patches, on stand-in modules (the real moto is never patched here) ----------


def _module(name: str, monkeypatch: pytest.MonkeyPatch, **attrs: Any) -> ModuleType:
    """A stand-in for a moto module, importable under this name for the rest of the test."""
    module = ModuleType(name)
    for attr, value in attrs.items():
        setattr(module, attr, value)
    monkeypatch.setitem(sys.modules, name, module)
    return module


def _on(name: str, module: ModuleType) -> Patch:
    """The registry's patch, aimed at a stand-in module (and renamed, so it is not taken for the real one)."""
    return dataclasses.replace(moto_patches.PATCHES[name], name=f"{name} on {module.__name__}", module=module.__name__)


def test_every_patch_fits_the_installed_moto():
    assert {name: moto_patches.misfit(patch) for name, patch in moto_patches.PATCHES.items()} == dict.fromkeys(
        moto_patches.PATCHES
    )
    assert moto_patches.moto_version() == importlib.metadata.version("moto")


def _list_of_moto_modules_with_a_parameter(path: str) -> list[str]:
    return ["s3"]


@pytest.mark.parametrize(
    "attrs", [{}, {"list_of_moto_modules": _list_of_moto_modules_with_a_parameter}], ids=["missing", "other-signature"]
)
def test_a_speed_up_that_does_not_fit_is_skipped_with_a_warning_and_changes_nothing(monkeypatch, attrs):
    import moto.backends

    real = moto.backends.list_of_moto_modules
    fake = _module("fake_moto_backends", monkeypatch, **attrs)
    before = dict(vars(fake))
    patch = _on("module-list", fake)
    version = re.escape(moto_patches.moto_version())
    with pytest.warns(
        MotoPatchSkipped,
        match=rf"'module-list on fake_moto_backends' \(speed-up\) skipped.*"
        rf"moto {version}.*list_of_moto_modules",
    ):
        assert moto_patches.ensure(patch) is False
    assert vars(fake) == before
    assert moto.backends.list_of_moto_modules is real
    assert patch.name not in moto_patches.applied_patches()
    assert "list_of_moto_modules" in moto_patches.skipped_patches()[patch.name]


def test_the_dynamodb_speed_up_is_skipped_when_dynamoresult_serializes_by_itself(monkeypatch):
    from moto.core.responses import ActionResult

    class DynamoResult(ActionResult):
        def execute_result(self, context: Any) -> Any:  # moto's own, no longer the generic serializer
            return super().execute_result(context)

    fake = _module("fake_moto_dynamodb_responses", monkeypatch, DynamoResult=DynamoResult)
    with pytest.warns(MotoPatchSkipped, match="is not moto.core.responses.ActionResult's"):
        assert moto_patches.ensure(_on("dynamodb-json", fake)) is False
    assert vars(DynamoResult)["execute_result"].__qualname__.endswith("DynamoResult.execute_result")
    assert not hasattr(vars(DynamoResult)["execute_result"], "taskfleet_patch")


class _QueueWithoutTheProperty:
    def __init__(self) -> None:
        self._pending_messages: set[Any] = set()


class _QueueThatCopiesAlready:
    @property
    def pending_message_groups(self) -> set[str]:
        return set()


@pytest.mark.parametrize(
    "queue", [_QueueWithoutTheProperty, _QueueThatCopiesAlready, None], ids=["no-property", "other-source", "no-queue"]
)
def test_a_correctness_patch_that_does_not_fit_raises_and_changes_nothing(monkeypatch, queue):
    fake = _module("fake_moto_sqs_models", monkeypatch, **({"Queue": queue} if queue else {}))
    before = dict(vars(fake))
    queue_before = dict(vars(queue)) if queue else {}
    patch = _on("sqs-inflight-copy", fake)
    assert patch.kind == "correctness"
    with pytest.raises(
        MotoPatchError,
        match=rf"'sqs-inflight-copy on fake_moto_sqs_models' \(correctness\) "
        rf"does not fit moto {re.escape(moto_patches.moto_version())}.*"
        rf"tested with moto {re.escape(moto_patches.TESTED_MOTO)}",
    ):
        moto_patches.ensure(patch)
    assert vars(fake) == before
    assert (dict(vars(queue)) if queue else {}) == queue_before
    assert patch.name not in moto_patches.applied_patches()


@pytest.mark.parametrize("kind", ["speed-up", "correctness"])
def test_a_patch_whose_check_fails_is_never_applied(monkeypatch, kind):
    fake = _module("fake_moto_module", monkeypatch, target=lambda: None)
    applied: list[ModuleType] = []
    patch = Patch(
        f"failing {kind}",
        kind,
        fake.__name__,
        check=lambda m: "the target moved",
        target=lambda m: m.target,
        apply=applied.append,
    )
    if kind == "speed-up":
        with pytest.warns(MotoPatchSkipped, match="the target moved"):
            assert moto_patches.ensure(patch) is False
    else:
        with pytest.raises(MotoPatchError, match="the target moved"):
            moto_patches.ensure(patch)
    assert applied == []


def test_a_patch_that_fits_is_applied_once(monkeypatch):
    listed: list[str] = []

    def list_of_moto_modules() -> Iterator[str]:
        listed.append("listed")
        yield from ("s3", "sqs")

    fake = _module("fake_moto_backends_that_fit", monkeypatch, list_of_moto_modules=list_of_moto_modules)
    patch = _on("module-list", fake)
    assert moto_patches.ensure(patch) is True
    replacement = fake.list_of_moto_modules
    assert replacement is not list_of_moto_modules
    assert moto_patches.ensure(patch) is True
    assert fake.list_of_moto_modules is replacement, "applying twice replaces nothing"
    assert list(replacement()) == list(replacement()) == ["s3", "sqs"]
    assert listed == ["listed"], "moto's directory is listed once, when the patch is applied"
    assert moto_patches.applied_patches().count(patch.name) == 1


def test_the_switches_select_the_speed_ups_and_always_the_correctness_patches():
    assert moto_patches.select() == list(moto_patches.PATCHES)
    assert moto_patches.select(fast_clock=False, fast_dynamodb=False) == ["sqs-inflight-copy"]
    assert moto_patches.select(fast_dynamodb=False) == [
        "module-list",
        "sqs-clock",
        "sqs-retention",
        "sqs-inflight-copy",
    ]


# --- the shortcut itself, without a server ----------------------------------------------------------------


def _context(operation: str = "GetItem") -> Any:
    return SimpleNamespace(
        operation_model=SimpleNamespace(name=operation, http={"method": "POST", "requestUri": "/"}),
        service_model=SimpleNamespace(protocol="json", metadata={"jsonVersion": "1.0"}),
        response=SimpleNamespace(RESPONSE_KEY_PATH_TO_TRANSFORMER={}),
    )


def test_json_native_item_results_are_written_by_json_dumps():
    result = {
        "Item": {
            "PK": {"S": "a"},
            "n": {"N": "1"},
            "ok": {"BOOL": True},
            "nil": {"NULL": True},
            "l": {"L": [{"S": "x"}, {"M": {"k": {"SS": ["p", "q"]}}}]},
        },
        "ConsumedCapacity": {"TableName": TABLE, "CapacityUnits": 0.5},
    }
    body = dynamodb_json_body(result, _context())
    assert body is not None
    assert json.loads(body) == result
    empty = dynamodb_json_body({"Items": [], "Count": 0, "ScannedCount": 0}, _context("Query"))
    assert empty is not None
    assert json.loads(empty) == {
        "Items": [],
        "Count": 0,
        "ScannedCount": 0,
    }


@pytest.mark.parametrize(
    "value", [b"\x00\xff", datetime(2026, 1, 1, tzinfo=UTC), Decimal("1.5"), {"a"}, float("nan"), math.inf, object()]
)
def test_results_with_other_values_go_to_motos_serializer(value):
    assert dynamodb_json_body({"Item": {"v": {"B": value}}}, _context()) is None


def test_capacity_units_are_written_as_floats_as_motos_serializer_does():
    # moto's BatchGetItem counts capacity units in ints; the model says double, so its serializer writes floats.
    result: dict[str, Any] = {
        "Responses": {},
        "ConsumedCapacity": [{"CapacityUnits": 2, "TableName": "t", "Table": {"ReadCapacityUnits": 1}}],
    }
    body = dynamodb_json_body(result, _context("BatchGetItem"))
    assert body is not None
    assert json.loads(body)["ConsumedCapacity"] == [
        {"CapacityUnits": 2.0, "TableName": "t", "Table": {"ReadCapacityUnits": 1.0}}
    ]
    assert type(json.loads(body)["ConsumedCapacity"][0]["CapacityUnits"]) is float
    assert result["ConsumedCapacity"][0]["CapacityUnits"] == 2, "the result itself is left alone"
    # ItemCollectionMetrics mixes doubles and AttributeValues: an int there goes to moto's serializer.
    assert dynamodb_json_body({"ItemCollectionMetrics": {"SizeEstimateRangeGB": [0, 1]}}, _context("PutItem")) is None


def test_only_item_operations_of_the_json_protocol_take_the_shortcut():
    assert dynamodb_json_body({"Table": {"TableName": "t"}}, _context("DescribeTable")) is None
    other = _context()
    other.service_model.protocol = "query"
    assert dynamodb_json_body({"Item": {}}, other) is None
    transformed = _context()
    transformed.response.RESPONSE_KEY_PATH_TO_TRANSFORMER = {"GetItem.Item": lambda v: v}
    assert dynamodb_json_body({"Item": {}}, transformed) is None


# --- same parsed results with and without the shortcut ---------------------------------------------------


@pytest.fixture(scope="module")
def emulators() -> Iterator[dict[str, Emulator]]:
    fast, plain = Emulator(), Emulator(fast_dynamodb=False)
    try:
        yield {"fast": fast.start(), "plain": plain.start()}
    finally:
        fast.stop()
        plain.stop()


TEXT_ITEM = {
    "PK": {"S": "job#1"},
    "SK": {"S": "task#001"},
    "state": {"S": "QUEUED"},
    "attempt": {"N": "1"},
    "score": {"N": "-12.5"},
    "tags": {"SS": ["a", "b"]},
    "sizes": {"NS": ["1", "2.5"]},
    "flags": {"L": [{"BOOL": True}, {"NULL": True}, {"S": "x"}, {"N": "3"}, {"L": []}, {"M": {}}]},
    "meta": {"M": {"owner": {"S": "me"}, "deep": {"M": {"n": {"N": "7"}, "l": {"L": [{"SS": ["z"]}]}}}}},
    "done": {"BOOL": False},
    "nothing": {"NULL": True},
    "unicode": {"S": 'héllo \u2603 "quoted" \\'},
}
BINARY_ITEM = {
    "PK": {"S": "job#1"},
    "SK": {"S": "task#002"},
    "blob": {"B": b"\x00\x01\xfe\xff"},
    "blobs": {"BS": [b"one", b"\x02"]},
    "nested": {"M": {"b": {"B": b"in-map"}, "l": {"L": [{"B": b"in-list"}]}}},
    "state": {"S": "QUEUED"},
    "attempt": {"N": "1"},
}


def _record(out: list[tuple[str, Any]], label: str, fn: Callable[..., Any], **kwargs: Any) -> None:
    """Call fn and append its parsed response (or error) without metadata to out."""
    try:
        response = fn(**kwargs)
    except ClientError as e:
        response = {"error": e.response}
    else:
        response = {"ok": response}
    for outcome in response.values():
        outcome.pop("ResponseMetadata", None)
    out.append((label, response))


def _scenario(ddb: Any) -> list[tuple[str, Any]]:
    """Representative DynamoDB calls; each outcome is the parsed response (or error) without metadata."""
    out: list[tuple[str, Any]] = []
    call = functools.partial(_record, out)
    key1 = {"PK": {"S": "job#1"}, "SK": {"S": "task#001"}}
    key2 = {"PK": {"S": "job#1"}, "SK": {"S": "task#002"}}
    _create_table(ddb)
    call("put text", ddb.put_item, TableName=TABLE, Item=TEXT_ITEM)
    call("put binary", ddb.put_item, TableName=TABLE, Item=BINARY_ITEM)
    call("put again ALL_OLD", ddb.put_item, TableName=TABLE, Item=TEXT_ITEM, ReturnValues="ALL_OLD")
    call("put binary again ALL_OLD", ddb.put_item, TableName=TABLE, Item=BINARY_ITEM, ReturnValues="ALL_OLD")
    for sk in range(3, 13):
        call(
            f"put {sk}",
            ddb.put_item,
            TableName=TABLE,
            Item={"PK": {"S": "job#1"}, "SK": {"S": f"task#{sk:03d}"}, "n": {"N": str(sk)}},
        )
    call("get text", ddb.get_item, TableName=TABLE, Key=key1)
    call("get binary", ddb.get_item, TableName=TABLE, Key=key2)
    call("get missing", ddb.get_item, TableName=TABLE, Key={"PK": {"S": "job#1"}, "SK": {"S": "nope"}})
    call(
        "get projection",
        ddb.get_item,
        TableName=TABLE,
        Key=key1,
        ConsistentRead=True,
        ProjectionExpression="#s, attempt, meta.deep.n, flags[2]",
        ExpressionAttributeNames={"#s": "state"},
    )
    call("get projection binary", ddb.get_item, TableName=TABLE, Key=key2, ProjectionExpression="blob, nested.b")
    call("get consumed capacity", ddb.get_item, TableName=TABLE, Key=key1, ReturnConsumedCapacity="TOTAL")
    update = {
        "TableName": TABLE,
        "Key": key1,
        "UpdateExpression": "SET attempt = attempt + :one, #s = :s ADD sizes :ns",
        "ExpressionAttributeNames": {"#s": "state"},
        "ExpressionAttributeValues": {":one": {"N": "1"}, ":s": {"S": "RUNNING"}, ":ns": {"NS": ["9"]}},
    }
    call("update ALL_NEW", ddb.update_item, **update, ReturnValues="ALL_NEW")
    call("update NONE", ddb.update_item, **update, ReturnValues="NONE")
    call("update default", ddb.update_item, **update)
    call("update UPDATED_NEW", ddb.update_item, **update, ReturnValues="UPDATED_NEW")
    call("update UPDATED_OLD", ddb.update_item, **update, ReturnValues="UPDATED_OLD")
    call("update ALL_OLD", ddb.update_item, **update, ReturnValues="ALL_OLD")
    call(
        "update binary ALL_NEW",
        ddb.update_item,
        TableName=TABLE,
        Key=key2,
        ReturnValues="ALL_NEW",
        UpdateExpression="SET attempt = attempt + :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    call(
        "update condition fails ALL_OLD",
        ddb.update_item,
        TableName=TABLE,
        Key=key1,
        UpdateExpression="SET #s = :s",
        ConditionExpression="#s = :expected",
        ReturnValues="ALL_NEW",
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":s": {"S": "DONE"}, ":expected": {"S": "QUEUED"}},
    )
    call(
        "update condition holds",
        ddb.update_item,
        TableName=TABLE,
        Key=key1,
        UpdateExpression="SET #s = :s REMOVE nothing",
        ConditionExpression="#s = :expected",
        ReturnValues="ALL_NEW",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":s": {"S": "DONE"}, ":expected": {"S": "RUNNING"}},
    )
    query = {
        "TableName": TABLE,
        "KeyConditionExpression": "PK = :pk AND begins_with(SK, :p)",
        "ExpressionAttributeValues": {":pk": {"S": "job#1"}, ":p": {"S": "task#"}},
    }
    call("query all", ddb.query, **query)
    call("query consumed capacity", ddb.query, **query, ReturnConsumedCapacity="TOTAL")
    call("query backwards count", ddb.query, **query, ScanIndexForward=False, Select="COUNT")
    page = ddb.query(**query, Limit=4)
    call("query page 1", ddb.query, **query, Limit=4)
    call("query page 2", ddb.query, **query, Limit=4, ExclusiveStartKey=page["LastEvaluatedKey"])
    call(
        "query filtered",
        ddb.query,
        **{
            **query,
            "FilterExpression": "n > :five",
            "ExpressionAttributeValues": {":pk": {"S": "job#1"}, ":p": {"S": "task#"}, ":five": {"N": "5"}},
        },
    )
    call("scan", ddb.scan, TableName=TABLE, Limit=5)
    call(
        "batch get",
        ddb.batch_get_item,
        RequestItems={TABLE: {"Keys": [key1, key2, {"PK": {"S": "job#1"}, "SK": {"S": "nope"}}]}},
    )
    call(
        "batch get projection",
        ddb.batch_get_item,
        RequestItems={TABLE: {"Keys": [key1], "ProjectionExpression": "attempt"}},
    )
    call(
        "transact get",
        ddb.transact_get_items,
        TransactItems=[{"Get": {"TableName": TABLE, "Key": key1}}, {"Get": {"TableName": TABLE, "Key": key2}}],
    )
    call(
        "batch write",
        ddb.batch_write_item,
        RequestItems={
            TABLE: [
                {"PutRequest": {"Item": {"PK": {"S": "job#2"}, "SK": {"S": "a"}, "v": {"L": [{"N": "1"}]}}}},
                {"DeleteRequest": {"Key": {"PK": {"S": "job#1"}, "SK": {"S": "task#003"}}}},
            ]
        },
    )
    call(
        "delete ALL_OLD",
        ddb.delete_item,
        TableName=TABLE,
        Key={"PK": {"S": "job#2"}, "SK": {"S": "a"}},
        ReturnValues="ALL_OLD",
    )
    call("delete missing", ddb.delete_item, TableName=TABLE, Key={"PK": {"S": "job#2"}, "SK": {"S": "a"}})
    call("get after delete", ddb.get_item, TableName=TABLE, Key={"PK": {"S": "job#2"}, "SK": {"S": "a"}})
    call("validation error", ddb.get_item, TableName=TABLE, Key={"PK": {"S": "job#1"}})
    return out


def _typed(value: Any) -> Any:
    """The value with every leaf's type made explicit, so 2 and 2.0 compare different."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_typed(v) for v in value]
    if isinstance(value, set):
        return ("set", sorted(repr(_typed(v)) for v in value))
    return (type(value).__name__, value)


def test_dynamodb_results_are_identical_with_and_without_the_shortcut(emulators):
    fast, plain = _scenario(_client(emulators["fast"])), _scenario(_client(emulators["plain"]))
    assert [label for label, _ in fast] == [label for label, _ in plain]
    for (label, got), (_, expected) in zip(fast, plain, strict=True):
        assert _typed(got) == _typed(expected), label
    outcomes = dict(fast)
    assert outcomes["get text"]["ok"]["Item"] == TEXT_ITEM
    assert outcomes["get binary"]["ok"]["Item"] == BINARY_ITEM
    assert "Item" not in outcomes["get missing"]["ok"]
    assert outcomes["query page 1"]["ok"]["LastEvaluatedKey"] == {"PK": {"S": "job#1"}, "SK": {"S": "task#004"}}
    assert outcomes["update condition fails ALL_OLD"]["error"]["Item"]["state"] == {"S": "RUNNING"}


def test_the_shortcut_is_live_in_the_child_and_keeps_motos_headers(emulators):
    raw: dict[str, tuple[dict[str, str], bytes]] = {}
    for name, emulator in emulators.items():
        ddb = _client(emulator)

        def capture(http_response: Any, _name: str = name, **_: Any) -> None:
            raw[_name] = (dict(http_response.headers), http_response.content)

        ddb.meta.events.register("after-call.dynamodb.DeleteItem", capture)
        ddb.delete_item(TableName=TABLE, Key={"PK": {"S": "job#1"}, "SK": {"S": "task#012"}}, ReturnValues="ALL_OLD")
    (fast_headers, fast_body), (plain_headers, plain_body) = raw["fast"], raw["plain"]
    varying = {"date", "content-length", "x-amz-crc32", "x-amzn-requestid"}
    assert {k.lower() for k in fast_headers} == {k.lower() for k in plain_headers}
    assert {k.lower(): v for k, v in fast_headers.items() if k.lower() not in varying} == {
        k.lower(): v for k, v in plain_headers.items() if k.lower() not in varying
    }
    # moto's DeleteItem result carries a member outside the model: only the shortcut writes it (SDKs ignore it).
    assert b"ConsumedCapacityUnits" in fast_body
    assert b"ConsumedCapacityUnits" not in plain_body
    assert json.loads(fast_body)["Attributes"] == json.loads(plain_body)["Attributes"]


def test_the_child_reports_the_patches_it_applied(emulators):
    version = importlib.metadata.version("moto")
    assert emulators["fast"].patch_report() == {
        "moto": version,
        "tested": moto_patches.TESTED_MOTO,
        "skipped": {},
        "applied": ["module-list", "sqs-clock", "sqs-retention", "sqs-inflight-copy", "dynamodb-json"],
    }
    assert emulators["plain"].patch_report()["applied"] == [
        "module-list",
        "sqs-clock",
        "sqs-retention",
        "sqs-inflight-copy",
    ]


# --- the child process -----------------------------------------------------------------------------------


def test_counts_reset_and_writes_per_item_come_from_the_child():
    with Emulator() as emulator:
        assert emulator._proc is not None
        ddb, sqs = _client(emulator), _client(emulator, "sqs")
        assert emulator.request_counts() == {}
        _create_table(ddb)
        sqs.create_queue(QueueName="q")
        emulator.reset_counts()
        emulator.track_writes(True)
        for _ in range(3):
            ddb.update_item(
                TableName=TABLE,
                Key={"PK": {"S": "a"}, "SK": {"S": "b"}},
                UpdateExpression="SET n = :n",
                ExpressionAttributeValues={":n": {"N": "1"}},
            )
        ddb.batch_write_item(
            RequestItems={
                TABLE: [
                    {"PutRequest": {"Item": {"PK": {"S": "c"}, "SK": {"S": "d"}}}},
                    {"DeleteRequest": {"Key": {"PK": {"S": "a"}, "SK": {"S": "b"}}}},
                ]
            }
        )
        ddb.get_item(TableName=TABLE, Key={"PK": {"S": "c"}, "SK": {"S": "d"}})
        sqs.get_queue_url(QueueName="q")
        # the controls themselves are never counted, however often they are used
        for _ in range(3):
            emulator.request_counts()
            emulator.writes_per_item()
        assert emulator.request_counts() == {
            "dynamodb:BatchWriteItem": 1,
            "dynamodb:GetItem": 1,
            "dynamodb:UpdateItem": 3,
            "sqs:GetQueueUrl": 1,
        }
        writes = emulator.writes_per_item()
        assert isinstance(writes, Counter)
        assert writes == Counter({("a", "b"): 4, ("c", "d"): 1})
        assert all(type(key) is tuple for key in writes)
        emulator.track_writes(False)
        ddb.put_item(TableName=TABLE, Item={"PK": {"S": "e"}, "SK": {"S": "f"}})
        assert ("e", "f") not in emulator.writes_per_item()
        emulator.reset_counts()
        assert emulator.request_counts() == {}
        assert emulator.writes_per_item() == Counter()
        ddb.get_item(TableName=TABLE, Key={"PK": {"S": "c"}, "SK": {"S": "d"}})
        child = emulator._proc
        assert emulator.request_counts() == {"dynamodb:GetItem": 1}
    assert child.poll() is not None, "stop() ends the child"
    assert emulator.request_counts() == {"dynamodb:GetItem": 1}, "the last counts stay readable after stop()"
    with pytest.raises(RuntimeError):
        _ = emulator.url


def test_the_in_process_mode_keeps_the_same_interface():
    with Emulator(in_process=True) as emulator:
        assert emulator._proc is None and emulator.middleware is not None
        ddb = _client(emulator)
        _create_table(ddb)
        emulator.reset_counts()
        emulator.track_writes(True)
        ddb.put_item(TableName=TABLE, Item={"PK": {"S": "a"}, "SK": {"S": "b"}})
        assert emulator.request_counts() == {"dynamodb:PutItem": 1}
        assert emulator.writes_per_item() == Counter({("a", "b"): 1})
        # in this process, without the DynamoDB patch (it would change moto for everything else here)
        applied = emulator.patch_report()["applied"]
        assert {"module-list", "sqs-clock", "sqs-retention", "sqs-inflight-copy"} <= set(applied)
        assert "dynamodb-json" not in applied
        assert applied == moto_patches.applied_patches()


def test_the_sqs_speed_up_keeps_retention():
    """The patched retention check still drops a message older than its queue's retention period."""
    from moto.sqs.models import sqs_backends

    with Emulator(in_process=True) as emulator:
        sqs = boto3.session.Session().client(
            "sqs",
            endpoint_url=emulator.url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        url = sqs.create_queue(QueueName="kept", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="new")
        sqs.send_message(QueueUrl=url, MessageBody="old")
        queue = sqs_backends["123456789012"]["us-east-1"].queues["kept"]
        old: Any = next(m for m in queue._messages if m.body == "old")
        old.sent_timestamp -= 61_000  # sent 61 s ago: past the 60 s retention
        bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]
        assert bodies == ["new"]


def _spawn_child() -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "taskfleet_local.emulator", "--port", "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=CHILD_ENV,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().decode().strip()
    assert url.startswith("http://127.0.0.1:")
    return proc, url


def test_the_child_exits_when_its_stdin_is_closed():
    proc, _ = _spawn_child()
    assert proc.stdin is not None and proc.stdout is not None
    time.sleep(0.2)
    assert proc.poll() is None
    proc.stdin.close()
    assert proc.wait(timeout=15) == 0
    proc.stdout.close()


def test_the_child_exits_on_sigterm():
    proc, _ = _spawn_child()
    assert proc.stdin is not None and proc.stdout is not None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 128 + signal.SIGTERM
    proc.stdin.close()
    proc.stdout.close()


def test_the_child_does_not_outlive_a_killed_parent():
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from taskfleet_local.emulator import Emulator; "
            "e = Emulator().start(); print(e._proc.pid, flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        env=CHILD_ENV,
    )
    assert parent.stdout is not None
    try:
        child = int(parent.stdout.readline())
        assert _alive(child)
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()
    assert _wait_gone(child), "the child outlived its SIGKILLed parent"


def test_a_child_that_cannot_start_is_reported_with_its_stderr():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(EmulatorError, match=r"(?s)exited with.*Address already in use"):
            Emulator(port=port).start()
