"""The SDK signs requests to a deployed API with SigV4 from the boto3 credential chain."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import boto3
import pytest
from taskfleet.errors import ApiUnavailableError, ConfigurationError, ConflictError, NotFoundError, ServerError
from taskfleet.http import Transport, _service_and_region, is_local


class Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []
    status = 200
    body = b'{"ok": true}'

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        Recorder.seen.append({k.lower(): v for k, v in self.headers.items()})
        self.send_response(Recorder.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(Recorder.body)))
        self.end_headers()
        self.wfile.write(Recorder.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server():
    Recorder.seen = []
    Recorder.status, Recorder.body = 200, b'{"ok": true}'
    httpd = HTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def session() -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name="eu-west-1"
    )


def test_requests_are_signed_with_sigv4_for_execute_api(server):
    transport = Transport(server, sign=True, session=session())
    assert transport.request("POST", "/jobs", {"name": "x"}) == {"ok": True}
    headers = Recorder.seen[-1]
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in headers["authorization"]
    assert "x-amz-date" in headers


def test_local_urls_are_not_signed(server):
    assert is_local(server)
    Transport(server, session=session()).request("POST", "/jobs", {})
    assert "authorization" not in Recorder.seen[-1]


def test_service_and_region_come_from_the_host():
    assert _service_and_region("abc.execute-api.us-east-2.amazonaws.com", None) == ("execute-api", "us-east-2")
    assert _service_and_region("xyz.lambda-url.ap-south-1.on.aws", None) == ("lambda", "ap-south-1")
    assert _service_and_region("api.example.com", "eu-central-1") == ("execute-api", "eu-central-1")


@pytest.mark.parametrize(("status", "error"), [(404, NotFoundError), (409, ConflictError)])
def test_error_bodies_become_named_exceptions(server, status, error):
    Recorder.status = status
    Recorder.body = json.dumps({"error": {"code": "X", "message": "what went wrong"}}).encode()
    with pytest.raises(error, match="what went wrong"):
        Transport(server, retries=0).request("POST", "/jobs", {})


def test_server_errors_are_retried_a_bounded_number_of_times(server):
    Recorder.status, Recorder.body = 503, b'{"message": "Service Unavailable"}'
    with pytest.raises(ServerError):
        Transport(server, retries=2).request("POST", "/jobs", {})
    assert len(Recorder.seen) == 3


def test_unreachable_api_raises_after_retries():
    with pytest.raises(ApiUnavailableError, match="after 2 attempts"):
        Transport("http://127.0.0.1:9", retries=1).request("POST", "/jobs", {})


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("127.0.0.1:8000", "must look like"),
        ("ftp://example.com", "must look like"),
        ("https://", "must look like"),
        ("http://0.0.0.0:8000", "an address to listen on"),
        ("http://api.example.com", "plain http is only for a loopback host"),
    ],
)
def test_urls_that_cannot_be_the_api_are_refused_before_any_request(url, says):
    with pytest.raises(ConfigurationError, match=says):
        Transport(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"])
def test_plain_http_to_a_loopback_host_is_the_local_stack(url):
    assert Transport(url).sign is False
