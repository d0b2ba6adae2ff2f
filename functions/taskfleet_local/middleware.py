"""WSGI middleware in front of moto's server: counts every request, serializes DynamoDB, serves controls.

- DynamoDB requests are serialized (a correctness matter). moto's server does not make a conditional write
  atomic when requests arrive concurrently; taskfleet's correctness rests on exactly that, so the emulator
  makes it so. SQS requests are not serialized: a long poll would stall every other request.
- Every request is counted by service and action, so benchmarks can report AWS requests per task for any
  client (handlers, runners, sweeper, SDK, or a peer system) in one place. On request it also counts
  DynamoDB writes per item (PK, SK).
- The emulator's parent reads and resets the counts over HTTP, under the reserved path prefix CONTROL_PREFIX
  (/_taskfleet/), which is never counted itself: GET counts, POST reset, POST track?on=1|0, GET writes, and
  GET patches (moto's version and the moto patches applied in the server's process, see moto_patches.py).
"""

from __future__ import annotations

import io
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from . import moto_patches

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_TARGET_PREFIXES = {
    "DynamoDB_20120810": "dynamodb",
    "DynamoDBStreams_20120810": "dynamodbstreams",
    "AmazonSQS": "sqs",
}

CONTROL_PREFIX = "/_taskfleet/"  # S3 bucket names cannot start with "_", so no AWS request uses it


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
    requests one at a time. Serves its own controls under CONTROL_PREFIX (not counted):
    GET counts, POST reset, POST track?on=1|0, GET writes, GET patches."""

    def __init__(self, app: WSGIApp) -> None:
        self._app = app
        self._dynamodb_lock = threading.Lock()
        self._counts_lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.track_writes = False
        self.writes_per_item: Counter[tuple[str, str]] = Counter()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL_PREFIX):
            return self._control(environ, start_response, path[len(CONTROL_PREFIX) :])
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

    def _control(self, environ: dict[str, Any], start_response: Callable[..., Any], name: str) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        result: Any
        if (method, name) == ("GET", "counts"):
            result = self.snapshot()
        elif (method, name) == ("GET", "writes"):
            with self._counts_lock:
                result = [[pk, sk, n] for (pk, sk), n in self.writes_per_item.items()]
        elif (method, name) == ("GET", "patches"):
            result = moto_patches.report()
        elif (method, name) == ("POST", "reset"):
            self.reset()
            result = {}
        elif (method, name) == ("POST", "track"):
            self.track_writes = parse_qs(environ.get("QUERY_STRING", "")).get("on", ["0"])[0] == "1"
            result = {"track_writes": self.track_writes}
        else:
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [json.dumps({"error": f"no control {method} {CONTROL_PREFIX}{name}"}).encode()]
        body = json.dumps(result).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def _track(self, environ: dict[str, Any], action: str) -> None:
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
