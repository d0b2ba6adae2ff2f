"""A runner outlives AWS errors that botocore's retries do not absorb, and the AWS fault injector itself
does what it says (the harness's figures rest on it)."""

from __future__ import annotations

import signal
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectTimeoutError
from taskfleet_runner.aws_faults import FaultInjector

from tests.support.fleet import Fleet
from tests.support.waits import wait_for


def test_a_runner_survives_an_sqs_outage_and_stops_cleanly(stack, cluster, tmp_path: Path):
    # Given a runner whose every ReceiveMessage fails with a 5xx (each call retried by botocore first)
    log = tmp_path / "faults.log"
    fleet = Fleet(
        stack,
        cluster,
        tmp_path,
        env={
            "TASKFLEET_FAULT_RATE": "1.0",
            "TASKFLEET_FAULT_KINDS": "server",
            "TASKFLEET_FAULT_OPERATIONS": "ReceiveMessage",
            "TASKFLEET_FAULT_LOG": str(log),
        },
    )
    fleet.start()
    (runner,) = fleet.procs
    try:
        # When several receive calls have failed after all their retries (5 attempts each)
        wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 12, 60, "failed receives")
        # Then the runner is still there, and still stops cleanly on SIGTERM
        assert runner.poll() is None
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=30) == 0
    finally:
        fleet.stop()


def _sqs(stack, injector: FaultInjector, attempts: int):
    client = boto3.session.Session().client(
        "sqs",
        endpoint_url=stack.emulator.url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"mode": "standard", "max_attempts": attempts}),
    )
    injector.install(client)
    return client


@pytest.mark.parametrize(
    ("kind", "error"), [("throttle", ClientError), ("server", ClientError), ("timeout", ConnectTimeoutError)]
)
def test_injected_faults_surface_as_the_errors_aws_gives_and_are_retried(stack, kind, error):
    injector = FaultInjector(1.0, kinds=(kind,))
    client = _sqs(stack, injector, attempts=3)
    with pytest.raises(error) as raised:
        client.list_queues()
    assert injector.injected() == {f"sqs:{kind}": 4}  # the first try and max_attempts=3 retries
    if kind == "throttle":
        assert raised.value.response["Error"]["Code"] in ("ThrottlingException", "RequestThrottled")
    if kind == "server":
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] in (500, 503)


def test_a_lost_response_was_applied_and_its_retry_sees_the_effect(stack):
    # the first CreateQueue is applied but its answer is lost; botocore's retry finds the queue existing
    injector = FaultInjector(1.0, kinds=("lost_response",), operations=("CreateQueue",))
    client = _sqs(stack, injector, attempts=1)
    name = f"lost-{id(injector)}.fifo"
    with pytest.raises(Exception, match="timeout"):
        client.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})
    injector.enabled = False
    assert any(url.endswith(name) for url in client.list_queues(QueueNamePrefix="lost-").get("QueueUrls", []))
