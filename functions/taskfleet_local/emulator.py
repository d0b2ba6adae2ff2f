"""moto in server mode, made safe and observable for taskfleet, in a child process of its own.

On AWS the handlers and the AWS services run on different machines. Locally, moto runs in a child process
(`python -m taskfleet_local.emulator`), so the handlers (in the LocalStack's process) and moto each get a
core instead of sharing one interpreter lock. The child exits when its stdin reaches end of file, that is
when the parent closes it (`Emulator.stop()`) or dies, even by SIGKILL.

Additions over moto's own ThreadedMotoServer:
- DynamoDB requests are serialized. moto's server does not make a conditional write atomic when
  requests arrive concurrently; taskfleet's correctness rests on exactly that, so the emulator makes it
  so. SQS requests are not serialized: a long poll would stall every other request.
- Every request is counted by service and action, so benchmarks can report AWS requests per task for
  any client (handlers, runners, sweeper, SDK, or a peer system) in one place. The parent reads and resets
  the counts over HTTP, under the reserved path prefix /_taskfleet/, which is never counted itself.
- moto's SQS reads the clock through datetime arithmetic for every message it scans, several scans
  per request, and builds all of a queue's attributes to read its retention period for every message a
  receive returns; `fast_sqs()` gives it the same epoch seconds from `time.time()` and reads the
  retention period directly. Semantics are unchanged (visibility, delays, retention all compare the
  same numbers). It also copies the in-flight set before moto iterates it: concurrent requests changed it
  mid-iteration, a 500 ("Set changed size during iteration") that Celery's kombu did not survive.
- moto serializes DynamoDB item responses through its generic, model-driven response serializer, which
  costs more CPU than the request's actual work. `fast_dynamodb_responses()` writes the item operations'
  results (GetItem, PutItem, UpdateItem, DeleteItem, Query, Scan, BatchGetItem, TransactGetItems) with
  `json.dumps` when they hold only JSON-native values: the same JSON up to key order and members outside
  the model (which SDKs ignore), capacity units written as floats as moto's serializer does; anything else
  (binary, timestamps, sets...) goes through moto's serializer as before. Status and headers are unchanged.
- moto's dispatcher lists its own package directory on disk (`list_of_moto_modules`) for every request;
  `fast_module_list()` lists it once (the installed package does not change while the server runs).
All three speed-ups apply to every system measured on this emulator, taskfleet and the benchmark's Celery
peer alike. `Emulator(in_process=True)` keeps the older mode, moto in a thread of this process; it leaves
the DynamoDB patch out, which would change moto for everything else in that process.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_TARGET_PREFIXES = {
    "DynamoDB_20120810": "dynamodb",
    "DynamoDBStreams_20120810": "dynamodbstreams",
    "AmazonSQS": "sqs",
}

CONTROL_PREFIX = "/_taskfleet/"  # S3 bucket names cannot start with "_", so no AWS request uses it
START_TIMEOUT_S = 60.0


def fast_module_list() -> None:
    from moto import backends

    if getattr(backends.list_of_moto_modules, "taskfleet_fast", False):
        return
    modules = tuple(backends.list_of_moto_modules())

    def list_of_moto_modules() -> tuple[str, ...]:
        return modules

    list_of_moto_modules.taskfleet_fast = True  # type: ignore[attr-defined]
    backends.list_of_moto_modules = list_of_moto_modules


def fast_sqs() -> None:
    import moto.sqs.models as sqs_models

    original = sqs_models.unix_time
    if getattr(original, "taskfleet_fast", False):
        return

    def unix_time(dt: Any = None) -> float:
        return time.time() if dt is None else float(original(dt))

    def unix_time_millis(dt: Any = None) -> float:
        return unix_time(dt) * 1000.0

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        # moto builds every attribute of the queue to read this one, for each message a receive returns
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    def pending_message_groups(self: Any) -> set[str]:
        # moto iterates the in-flight set while other request threads add to it and remove from it
        # ("Set changed size during iteration", a 500 that crashed the peer's kombu consumer): copy first
        return {m.group_id for m in list(self._pending_messages) if m.group_id is not None}

    unix_time.taskfleet_fast = True  # type: ignore[attr-defined]
    sqs_models.Queue.pending_message_groups = property(pending_message_groups)  # type: ignore[assignment]
    sqs_models.unix_time = unix_time
    sqs_models.unix_time_millis = unix_time_millis
    sqs_models.SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        is_message_valid_based_on_retention_period)


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
        return json.dumps(result, default=_not_json_native, allow_nan=False,
                          indent=4 if settings.PRETTIFY_RESPONSES else None)
    except (TypeError, ValueError):
        return None


def fast_dynamodb_responses() -> None:
    from moto.dynamodb.responses import DynamoResult

    original = DynamoResult.execute_result
    if getattr(original, "taskfleet_fast", False):
        return

    def execute_result(self: Any, context: Any) -> Any:
        body = dynamodb_json_body(self.result, context)
        if body is None:
            return original(self, context)
        # What moto's JSON serializer sets; call_action adds the request id and the CRC32 header after this.
        status = context.operation_model.http.get("responseCode", 200)
        version = context.service_model.metadata.get("jsonVersion", "1.0")
        return status, {"Content-Type": f"application/x-amz-json-{version}"}, body

    execute_result.taskfleet_fast = True  # type: ignore[attr-defined]
    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]


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
    GET counts, POST reset, POST track?on=1|0, GET writes."""

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
            return self._control(environ, start_response, path[len(CONTROL_PREFIX):])
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


def _make_server(host: str, port: int, *, fast_clock: bool, fast_dynamodb: bool) -> tuple[Any, Any]:
    """moto's WSGI app behind the middleware, in a threaded werkzeug server (not yet serving)."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    if fast_clock:
        fast_sqs()
        fast_module_list()
    if fast_dynamodb:
        fast_dynamodb_responses()

    class QuietHandler(MotoRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    middleware = CountingSerializingMiddleware(DomainDispatcherApplication(create_backend_app))
    server = make_server(host, port, middleware, threaded=True, request_handler=QuietHandler)
    return server, middleware


def _server_url(server: Any) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}"


class EmulatorError(RuntimeError):
    pass


class Emulator:
    """moto's server on loopback, in a child process (or, with in_process=True, a thread of this one).

    fast_clock (the SQS clock and the module list) and fast_dynamodb turn the patches of the module
    docstring on (the default) or off."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, fast_clock: bool = True,
                 fast_dynamodb: bool = True, in_process: bool = False) -> None:
        self._fast_clock = fast_clock
        self._fast_dynamodb = fast_dynamodb
        self._host = host
        self._port = port
        self._in_process = in_process
        self._url: str | None = None
        # child-process mode
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr_tail: deque[str] = deque(maxlen=50)
        self._stderr_thread: threading.Thread | None = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxies
        self._final_counts: dict[str, int] = {}
        self._final_writes: Counter[tuple[str, str]] = Counter()
        # in-process mode
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.middleware: CountingSerializingMiddleware | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("emulator is not started")
        return self._url

    def start(self) -> Emulator:
        if self._in_process:
            return self._start_in_process()
        command = [sys.executable, "-m", "taskfleet_local.emulator", "--host", self._host, "--port", str(self._port)]
        if not self._fast_clock:
            command.append("--no-fast-clock")
        if not self._fast_dynamodb:
            command.append("--no-fast-dynamodb")
        sdk_root = str(Path(__file__).resolve().parents[2])  # the child imports this very package
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (sdk_root, os.environ.get("PYTHONPATH")) if p)}
        self._proc = proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, env=env)
        assert proc.stdout is not None and proc.stderr is not None
        self._stderr_thread = threading.Thread(target=self._forward_stderr, args=(proc.stderr,),
                                               name="emulator-stderr", daemon=True)
        self._stderr_thread.start()
        lines: list[bytes] = []
        reader = threading.Thread(target=lambda stream: lines.append(stream.readline()), args=(proc.stdout,),
                                  name="emulator-start", daemon=True)
        reader.start()
        reader.join(START_TIMEOUT_S)
        line = lines[0].decode().strip() if lines else ""
        if not line.startswith("http://"):
            self._kill()
            if self._stderr_thread is not None:
                self._stderr_thread.join(timeout=5)
            reason = f"exited with {proc.returncode}" if lines else f"did not start within {START_TIMEOUT_S:.0f} s"
            stderr = "".join(self._stderr_tail).strip()
            raise EmulatorError(f"emulator child process {reason}" + (f":\n{stderr}" if stderr else ""))
        self._url = line
        return self

    def _forward_stderr(self, stream: IO[bytes]) -> None:
        # Drained continuously so the child never blocks on a full pipe; echoed so its errors stay visible.
        for raw in iter(stream.readline, b""):
            text = raw.decode("utf-8", "replace")
            self._stderr_tail.append(text)
            with contextlib.suppress(Exception):
                sys.stderr.write(text)
        stream.close()

    def _start_in_process(self) -> Emulator:
        # Only the fast clock here: the DynamoDB patch would change moto for everything else in this process.
        self._server, self.middleware = _make_server(self._host, self._port, fast_clock=self._fast_clock,
                                                     fast_dynamodb=False)
        self._url = _server_url(self._server)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._proc is not None:
            if self._proc.poll() is None:
                # Keep the last figures readable after stop(), as the in-process middleware's are.
                with contextlib.suppress(Exception):
                    self._final_counts = self._control("GET", "counts", timeout=5)
                    self._final_writes = self._writes(timeout=5)
            self._kill(grace_s=10)
            self._proc = None
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=5)
            self._stderr_thread = None
        self._url = None

    def _kill(self, grace_s: float = 0.0) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # end of file: the child shuts its server down and exits
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def _control(self, method: str, name: str, query: str = "", timeout: float = 30) -> Any:
        request = urllib.request.Request(f"{self.url}{CONTROL_PREFIX}{name}{query}", method=method,
                                         data=b"" if method == "POST" else None)
        with self._opener.open(request, timeout=timeout) as response:
            return json.loads(response.read())

    def _writes(self, timeout: float = 30) -> Counter[tuple[str, str]]:
        return Counter({(pk, sk): n for pk, sk, n in self._control("GET", "writes", timeout=timeout)})

    def request_counts(self) -> dict[str, int]:
        if self.middleware:
            return self.middleware.snapshot()
        if self._proc is None:
            return dict(self._final_counts)
        return dict(self._control("GET", "counts"))

    def reset_counts(self) -> None:
        if self.middleware:
            self.middleware.reset()
        elif self._proc is not None:
            self._control("POST", "reset")

    def track_writes(self, on: bool) -> None:
        """Count DynamoDB writes per item (PK, SK) from now on (or stop)."""
        if self.middleware:
            self.middleware.track_writes = on
        elif self._proc is not None:
            self._control("POST", "track", f"?on={int(on)}")

    def writes_per_item(self) -> Counter[tuple[str, str]]:
        if self.middleware:
            return Counter(self.middleware.writes_per_item)
        if self._proc is None:
            return Counter(self._final_writes)
        return self._writes()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """The child: serves until stdin reaches end of file (the parent closed it or died) or SIGTERM."""
    ap = argparse.ArgumentParser(prog="python -m taskfleet_local.emulator", description=main.__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--no-fast-clock", dest="fast_clock", action="store_false")
    ap.add_argument("--no-fast-dynamodb", dest="fast_dynamodb", action="store_false")
    args = ap.parse_args(argv)

    if not sys.stdin.isatty():
        # Ctrl-C reaches the whole process group: the parent decides when the emulator ends (it may still
        # be shutting down and need it).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    server, _ = _make_server(args.host, args.port, fast_clock=args.fast_clock, fast_dynamodb=args.fast_dynamodb)
    thread = threading.Thread(target=server.serve_forever, name="moto", daemon=True)
    thread.start()
    try:
        print(_server_url(server), flush=True)
        # Nobody reads stdout after the URL line: anything else printed goes to stderr, which the parent drains.
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        while sys.stdin.buffer.read(65536):
            pass
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
