"""Injected AWS errors, for reliability tests only (tests/support/scenarios.py, tests/reliability/).

`FaultInjector(rate).install(client)` registers a botocore `before-send` hook on a DynamoDB or SQS client
that answers a share `rate` of its calls with a synthetic failure instead of sending them:

| kind | what the client sees | was the request applied? |
| --- | --- | --- |
| `throttle` | 400 ProvisionedThroughputExceededException (DynamoDB) or ThrottlingException (both) | no |
| `server` | 500 InternalServerError / 503 ServiceUnavailable | no |
| `timeout` | a connect timeout (botocore ConnectTimeoutError) | no |
| `lost_response` | a read timeout *after* the request was sent and applied | yes |

All four are retried by botocore's standard retry mode (jittered exponential backoff, bounded attempts),
so they test what production relies on; `lost_response` also tests that every write is safe to repeat.

Runners are subprocesses: they install an injector on their SQS client when TASKFLEET_FAULT_RATE is set
(`install_from_environment`); with it unset, nothing here is imported. TASKFLEET_FAULT_LOG names a file
that gets one line per injected fault (`<service> <operation> <kind>`), so a harness can count them
across processes, including ones it SIGKILLs. TASKFLEET_FAULT_KINDS and TASKFLEET_FAULT_OPERATIONS
(comma-separated) narrow what is injected.
"""

from __future__ import annotations

import json
import os
import random
import threading
from collections import Counter
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

KINDS = ("throttle", "server", "timeout", "lost_response")

_THROTTLE_CODES = {
    "dynamodb": ("ProvisionedThroughputExceededException", "ThrottlingException"),
    "sqs": ("ThrottlingException", "RequestThrottled"),
}
_SERVER_ERRORS = ((500, "InternalServerError"), (503, "ServiceUnavailable"))


class _Body:
    """The minimal raw-body object AWSResponse reads from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


def _error_response(url: str, service: str, status: int, code: str) -> AWSResponse:
    prefix = "com.amazonaws.dynamodb.v20120810#" if service == "dynamodb" else "com.amazonaws.sqs#"
    body = json.dumps({"__type": f"{prefix}{code}", "message": "injected by taskfleet fault tests"}).encode()
    headers = {
        "x-amzn-RequestId": "injected",
        "Content-Type": "application/x-amz-json-1.0",
        "Content-Length": str(len(body)),
    }
    if service == "sqs":  # the JSON protocol of SQS carries the query-compatible code in a header
        headers["x-amzn-query-error"] = f"{code};Sender"
    return AWSResponse(url, status, headers, _Body(body))


class FaultInjector:
    """Fails a share of the calls of the clients it is installed on. Thread-safe; counts what it did."""

    def __init__(
        self,
        rate: float,
        *,
        kinds: tuple[str, ...] = KINDS,
        seed: int | None = None,
        operations: tuple[str, ...] = (),
        log_path: str | None = None,
        limit: int | None = None,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("fault rate must be between 0 and 1")
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {KINDS}")
        self.rate = rate
        self.kinds = kinds
        self.operations = operations  # empty: every operation
        self.limit = limit  # stop after this many faults (None: never)
        self.enabled = True
        self.log_path = log_path
        self.calls = 0
        self.counts: Counter[tuple[str, str]] = Counter()  # (service, kind) -> injected
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._http: Any = None

    def install(self, client: Any) -> Any:
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"before-send.{service}", self._before_send, unique_id=f"faults-{id(self)}")
        return client

    def uninstall(self, client: Any) -> None:
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.unregister(f"before-send.{service}", unique_id=f"faults-{id(self)}")

    def injected(self) -> dict[str, int]:
        with self._lock:
            return {f"{s}:{k}": n for (s, k), n in sorted(self.counts.items())}

    def _before_send(self, request: Any, event_name: str = "", **_: Any) -> AWSResponse | None:
        parts = event_name.split(".")
        service, operation = (parts[1], parts[2]) if len(parts) >= 3 else ("", "")
        if not self.enabled or (self.operations and operation not in self.operations):
            return None
        with self._lock:
            self.calls += 1
            if self._rng.random() >= self.rate or (self.limit is not None and sum(self.counts.values()) >= self.limit):
                return None
            kind = self._rng.choice(self.kinds)
            self.counts[(service, kind)] += 1
            pick = self._rng.random()
        self._log(service, operation, kind)
        if kind == "throttle":
            codes = _THROTTLE_CODES.get(service, ("ThrottlingException",))
            return _error_response(request.url, service, 400, codes[int(pick * len(codes))])
        if kind == "server":
            status, code = _SERVER_ERRORS[int(pick * len(_SERVER_ERRORS))]
            return _error_response(request.url, service, status, code)
        if kind == "timeout":
            raise ConnectTimeoutError(endpoint_url=request.url)
        # lost_response: the request reaches the service and takes effect; its answer never arrives
        self._send(request)
        raise ReadTimeoutError(endpoint_url=request.url)

    def _send(self, request: Any) -> None:
        from botocore.httpsession import URLLib3Session

        with self._lock:
            if self._http is None:
                self._http = URLLib3Session(timeout=30)
        self._http.send(request)

    def _log(self, service: str, operation: str, kind: str) -> None:
        if not self.log_path:
            return
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{os.getpid()} {service} {operation} {kind}\n".encode())
        finally:
            os.close(fd)


def install_from_environment(client: Any) -> FaultInjector | None:
    """Install an injector on `client` if TASKFLEET_FAULT_RATE is set (tests only)."""
    rate = os.environ.get("TASKFLEET_FAULT_RATE")
    if not rate:
        return None
    kinds = tuple(k for k in os.environ.get("TASKFLEET_FAULT_KINDS", ",".join(KINDS)).split(",") if k)
    operations = tuple(o for o in os.environ.get("TASKFLEET_FAULT_OPERATIONS", "").split(",") if o)
    injector = FaultInjector(
        float(rate), kinds=kinds, operations=operations, log_path=os.environ.get("TASKFLEET_FAULT_LOG") or None
    )
    injector.install(client)
    return injector
