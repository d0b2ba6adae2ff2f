"""Security: the local stack is reachable from this machine only; requests to a deployed API are signed
(and refused without credentials before anything is sent); nothing sensitive is logged at the default
level during a full job run."""

from __future__ import annotations

import io
import json
import logging
import secrets
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
from taskfleet import ConfigurationError
from taskfleet.http import Transport
from taskfleet_local import LocalStack

from tests.e2e.workflows import Fail, Noop
from tests.support.waits import job_done, wait_until


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_the_local_stack_refuses_to_listen_beyond_loopback(host):
    with pytest.raises(ValueError, match="loopback only"):
        LocalStack(host=host)


def _outbound_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outbound interface
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_the_local_api_and_emulator_listen_on_loopback_only(stack):
    for url in (stack.url, stack.emulator.url):
        host, port = urlsplit(url).hostname, urlsplit(url).port
        assert host == "127.0.0.1"
        with socket.create_connection((host, port), timeout=5):
            pass
        outside = _outbound_address()
        if outside is not None:  # the same port on the machine's network address is closed
            with pytest.raises(OSError), socket.create_connection((outside, port), timeout=5):
                pass


def test_a_deployed_api_is_never_called_without_credentials(monkeypatch, tmp_path: Path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    with pytest.raises(ConfigurationError, match="no AWS credentials"):
        Transport("https://abc123.execute-api.eu-west-1.amazonaws.com", session=boto3.session.Session())


def test_requests_to_a_deployed_api_carry_a_sigv4_signature():
    seen: dict[str, str] = {}

    class Capture(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.update({k.lower(): v for k, v in self.headers.items()})
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b"{}"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        session = boto3.session.Session(
            aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="x" * 40, region_name="eu-west-1"
        )
        transport = Transport(f"http://127.0.0.1:{server.server_address[1]}", sign=True, session=session)
        transport.request("POST", "/jobs", {"name": "x"})
    finally:
        server.shutdown()
    assert seen["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/execute-api/aws4_request" in seen["authorization"] and "x-amz-date" in seen
    assert "x" * 40 not in json.dumps(seen)  # the secret itself never travels


def test_a_full_job_run_logs_no_input_values_or_secrets_at_the_default_level(
    client, cluster, runners, capfd, monkeypatch
):
    from taskfleet_functions.handlers.common import logger

    # the deployed default: functions log at INFO (config log_level), runners too (their own default and ECS's)
    previous = logger.log_level
    logger.setLevel("INFO")
    functions_log = io.StringIO()  # what the functions log, formatted as on Lambda (JSON lines)
    capture = logging.StreamHandler(functions_log)
    capture.setFormatter(logger.registered_formatter)
    logger._logger.addHandler(capture)
    secret = f"s3cr3t-{secrets.token_hex(8)}"
    secret_key = f"key-{secrets.token_hex(16)}"  # in the runners' environment, as a real key would be
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
    monkeypatch.delenv("TASKFLEET_LOG_LEVEL", raising=False)
    try:
        runners.start(cluster, "Noop", "Fail")
        job = client.jobs().submit("secrets", [Noop(f"{secret}-a"), Noop(f"{secret}-b")], cluster=cluster)
        assert wait_until(job_done(client, job), what="the job").state == "COMPLETED"
        failing = client.jobs().submit("secrets-fail", Fail(f"{secret}-c"), cluster=cluster)
        assert wait_until(job_done(client, failing), what="the failing job").state == "FAILED"
        client.jobs().tasks(job)
        client.jobs().list(name="secrets")
    finally:
        logger.setLevel(previous)
        logger._logger.removeHandler(capture)
    out, err = capfd.readouterr()  # the runners' output (subprocesses), and anything else printed
    logs = functions_log.getvalue() + out + err
    assert "job submitted" in logs  # the capture works: the INFO line of the submit is there
    assert secret not in logs
    assert secret_key not in logs
