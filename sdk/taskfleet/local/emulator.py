"""moto in server mode, made safe and observable for taskfleet.

Two additions over moto's own ThreadedMotoServer:
- DynamoDB requests are serialized. moto's server does not make a conditional write atomic when
  requests arrive concurrently; taskfleet's correctness rests on exactly that, so the emulator makes it
  so. SQS requests are not serialized: a long poll would stall every other request.
- Every request is counted by service and action, so benchmarks can report AWS requests per task for
  any client (handlers, runners, sweeper, SDK, or a peer system) in one place.
- moto's SQS reads the clock through datetime arithmetic for every message it scans, several scans
  per request; `fast_sqs_clock()` gives it the same epoch seconds from `time.time()`. Semantics are
  unchanged (visibility, delays, retention all compare the same numbers); every system measured on
  this emulator, taskfleet and the benchmark's peer alike, gets the same speed-up.
"""

from __future__ import annotations

import io
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_TARGET_PREFIXES = {
    "DynamoDB_20120810": "dynamodb",
    "DynamoDBStreams_20120810": "dynamodbstreams",
    "AmazonSQS": "sqs",
}


def fast_sqs_clock() -> None:
    import moto.sqs.models as sqs_models

    original = sqs_models.unix_time
    if getattr(original, "taskfleet_fast", False):
        return

    def unix_time(dt: Any = None) -> float:
        return time.time() if dt is None else float(original(dt))

    def unix_time_millis(dt: Any = None) -> float:
        return unix_time(dt) * 1000.0

    unix_time.taskfleet_fast = True  # type: ignore[attr-defined]
    sqs_models.unix_time = unix_time
    sqs_models.unix_time_millis = unix_time_millis


def _service_and_action(environ: dict[str, Any]) -> tuple[str, str]:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target and "." in target:
        prefix, action = target.split(".", 1)
        return _TARGET_PREFIXES.get(prefix, prefix.lower()), action
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return _service_from_auth(environ), query["Action"][0]
    content_type = environ.get("CONTENT_TYPE", "")
    if "x-www-form-urlencoded" in content_type:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        form = parse_qs(body.decode("utf-8", "replace"))
        if "Action" in form:
            return _service_from_auth(environ), form["Action"][0]
    return _service_from_auth(environ), environ.get("REQUEST_METHOD", "?")


def _service_from_auth(environ: dict[str, Any]) -> str:
    # SigV4 credential scope: Credential=AKID/20260101/us-east-1/<service>/aws4_request
    auth = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    if marker in auth:
        scope = auth.split(marker, 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 4:
            return scope[3]
    return "unknown"


_WRITE_ACTIONS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def _written_keys(action: str, body: dict[str, Any]) -> list[tuple[str, str]]:
    """(PK, SK) of every item a DynamoDB write request touches."""

    def key(item: dict[str, Any]) -> tuple[str, str]:
        return str(item.get("PK", {}).get("S", "")), str(item.get("SK", {}).get("S", ""))

    if action in ("PutItem",):
        return [key(body.get("Item", {}))]
    if action in ("UpdateItem", "DeleteItem"):
        return [key(body.get("Key", {}))]
    if action == "BatchWriteItem":
        out = []
        for requests in body.get("RequestItems", {}).values():
            for r in requests:
                put = r.get("PutRequest", {}).get("Item")
                out.append(key(put if put else r.get("DeleteRequest", {}).get("Key", {})))
        return out
    if action == "TransactWriteItems":
        out = []
        for entry in body.get("TransactItems", []):
            for kind, spec in entry.items():
                if kind != "ConditionCheck":
                    out.append(key(spec.get("Item") or spec.get("Key") or {}))
        return out
    return []


class CountingSerializingMiddleware:
    """WSGI middleware: counts requests (and, when asked, DynamoDB writes per item), and runs DynamoDB
    requests one at a time."""

    def __init__(self, app: WSGIApp) -> None:
        self._app = app
        self._dynamodb_lock = threading.Lock()
        self._counts_lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.track_writes = False
        self.writes_per_item: Counter[tuple[str, str]] = Counter()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        service, action = _service_and_action(environ)
        with self._counts_lock:
            self.counts[(service, action)] += 1
        if service != "dynamodb":
            return self._app(environ, start_response)
        with self._dynamodb_lock:
            if self.track_writes and action in _WRITE_ACTIONS:
                self._track(environ, action)
            # Consume the response inside the lock: moto does its work while building it.
            return list(self._app(environ, start_response))

    def _track(self, environ: dict[str, Any], action: str) -> None:
        import json

        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        try:
            keys = _written_keys(action, json.loads(raw or b"{}"))
        except ValueError:
            return
        with self._counts_lock:
            self.writes_per_item.update(keys)

    def snapshot(self) -> dict[str, int]:
        with self._counts_lock:
            return {f"{s}:{a}": n for (s, a), n in sorted(self.counts.items())}

    def reset(self) -> None:
        with self._counts_lock:
            self.counts.clear()
            self.writes_per_item.clear()


class Emulator:
    """moto's server on loopback, in a background thread of this process."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, fast_clock: bool = True) -> None:
        self._fast_clock = fast_clock
        self._host = host
        self._port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.middleware: CountingSerializingMiddleware | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("emulator is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Emulator:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        if self._fast_clock:
            fast_sqs_clock()

        class QuietHandler(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        self.middleware = CountingSerializingMiddleware(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._host, self._port, self.middleware, threaded=True, request_handler=QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None

    def request_counts(self) -> dict[str, int]:
        return self.middleware.snapshot() if self.middleware else {}

    def reset_counts(self) -> None:
        if self.middleware:
            self.middleware.reset()

    def track_writes(self, on: bool) -> None:
        """Count DynamoDB writes per item (PK, SK) from now on (or stop)."""
        if self.middleware:
            self.middleware.track_writes = on

    def writes_per_item(self) -> Counter[tuple[str, str]]:
        return Counter(self.middleware.writes_per_item) if self.middleware else Counter()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
