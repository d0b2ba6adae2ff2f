"""The emulator: moto's server in a child process, its counts and controls."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from taskfleet.local.emulator import Emulator, EmulatorError

SDK = str(Path(__file__).resolve().parents[2] / "sdk")
CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (SDK, os.environ.get("PYTHONPATH")) if p)}
TABLE = "items"


def _client(emulator: Emulator, service: str = "dynamodb") -> Any:
    return boto3.session.Session().client(service, endpoint_url=emulator.url, region_name="us-east-1",
                                          aws_access_key_id="local", aws_secret_access_key="local")


def _create_table(ddb: Any) -> None:
    ddb.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"},
                              {"AttributeName": "SK", "AttributeType": "S"}],
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
            ddb.update_item(TableName=TABLE, Key={"PK": {"S": "a"}, "SK": {"S": "b"}}, UpdateExpression="SET n = :n",
                            ExpressionAttributeValues={":n": {"N": "1"}})
        ddb.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": {"PK": {"S": "c"}, "SK": {"S": "d"}}}},
                                                   {"DeleteRequest": {"Key": {"PK": {"S": "a"}, "SK": {"S": "b"}}}}]})
        ddb.get_item(TableName=TABLE, Key={"PK": {"S": "c"}, "SK": {"S": "d"}})
        sqs.get_queue_url(QueueName="q")
        # the controls themselves are never counted, however often they are used
        for _ in range(3):
            emulator.request_counts()
            emulator.writes_per_item()
        assert emulator.request_counts() == {"dynamodb:BatchWriteItem": 1, "dynamodb:GetItem": 1,
                                             "dynamodb:UpdateItem": 3, "sqs:GetQueueUrl": 1}
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


def _spawn_child() -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen([sys.executable, "-m", "taskfleet.local.emulator", "--port", "0"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=CHILD_ENV)
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
        [sys.executable, "-c", "import time; from taskfleet.local.emulator import Emulator; "
                               "e = Emulator().start(); print(e._proc.pid, flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, env=CHILD_ENV)
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
