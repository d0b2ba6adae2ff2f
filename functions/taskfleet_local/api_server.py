"""A loopback HTTP server that plays API Gateway (HTTP API, payload v2) in front of the real handlers."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

ROUTES = (  # path prefix -> handler module, as the CDK stack maps routes to functions
    ("/runner/", "taskfleet_functions.handlers.runner"),
    ("/jobs", "taskfleet_functions.handlers.jobs"),
    ("/clusters", "taskfleet_functions.handlers.clusters"),
    ("/automations", "taskfleet_functions.handlers.automations"),
    ("/config", "taskfleet_functions.handlers.clusters"),
    ("/keys", "taskfleet_functions.handlers.clusters"),
    # the Connect endpoint for Tilebox SDK clients, and the OTLP paths that SDK exports to
    ("/workflows.v1.", "taskfleet_functions.handlers.connect"),
    ("/v1/", "taskfleet_functions.handlers.connect"),
)
# Bodies of these types reach the handler as API Gateway passes binary ones: base64, isBase64Encoded.
BINARY_TYPES = ("application/proto", "application/x-protobuf", "application/connect+proto", "application/grpc")


class FakeLambdaContext:
    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + 30

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def build_event(method: str, raw_path: str, headers: dict[str, str], body: str | bytes) -> dict[str, Any]:
    parts = urlsplit(raw_path)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": {k.lower(): v for k, v in headers.items()},
        "queryStringParameters": query or None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": method,
                "path": parts.path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("User-Agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": base64.b64encode(body).decode() if isinstance(body, bytes) else body,
        "isBase64Encoded": isinstance(body, bytes),
    }


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def refusal(method: str, host: str | None, content_type: str | None) -> tuple[int, str, str] | None:
    """Why the local API refuses a request a web page could have sent, or None. The local stack trusts
    whoever reaches it, so it takes only what no page in the developer's browser can send it: a Host
    that is a loopback name (a DNS-rebinding page sends its own host name) and, on a request that
    changes state, a JSON body (a cross-site form or a "simple" fetch can only send text/plain,
    form-urlencoded or multipart; JSON needs a CORS preflight, which this server never grants)."""
    hostname = urlsplit(f"//{host or ''}").hostname or ""
    if not (hostname in LOOPBACK_HOSTS or hostname.startswith("127.")):
        return 403, "HostNotAllowed", f"the local API answers loopback host names only, not {hostname[:100]!r}"
    media_type = (content_type or "").split(";")[0].strip().lower()
    # protobuf bodies (the Connect endpoint) need a CORS preflight as JSON does: no page can send them either
    if method not in ("GET", "HEAD", "OPTIONS") and media_type not in ("application/json", *BINARY_TYPES):
        return 415, "UnsupportedMediaType", "requests that change state must send Content-Type: application/json"
    return None


class LocalApi:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def request_counts(self) -> dict[str, int]:
        with self._lock:
            return {f"api:{k}": v for k, v in sorted(self._counts.items())}

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()

    def start(self) -> LocalApi:
        import importlib

        handlers = {module: importlib.import_module(module).lambda_handler for _, module in ROUTES}
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in two writes on a kept-alive connection: with Nagle's algorithm the
            # body would wait for the client's delayed ACK of the headers, about 40 ms on every call.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else b""
                media_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                body: str | bytes = data if media_type in BINARY_TYPES else data.decode("utf-8", "replace")
                refused = refusal(self.command, self.headers.get("Host"), self.headers.get("Content-Type"))
                if refused is not None:
                    self._send(refused[0], {"error": {"code": refused[1], "message": refused[2]}})
                    return
                path = urlsplit(self.path).path
                module = next(
                    (m for prefix, m in ROUTES if path == prefix.rstrip("/") or path.startswith(prefix)), None
                )
                with api._lock:
                    api._counts[f"{self.command} /{path.split('/')[1] if '/' in path else path}"] += 1
                if module is None:
                    self._send(404, {"error": {"code": "RouteNotFound", "message": f"no route {self.command} {path}"}})
                    return
                event = build_event(self.command, self.path, dict(self.headers.items()), body)
                try:
                    result = handlers[module](event, FakeLambdaContext(module.rsplit(".", 1)[1]))
                except Exception:  # a crashed Lambda: API Gateway answers 502
                    self._send(502, {"message": "Internal Server Error"})
                    return
                status = int(result.get("statusCode", 200))
                payload = result.get("body") or ""
                data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode("utf-8")
                self._send_raw(status, data, result.get("headers") or {})

            def _send(self, status: int, body: dict[str, Any]) -> None:
                self._send_raw(status, json.dumps(body).encode(), {"Content-Type": "application/json"})

            def _send_raw(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("content-length", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _handle

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                import sys

                if isinstance(sys.exc_info()[1], ConnectionError):
                    return  # a client (a killed runner, say) went away mid-request
                super().handle_error(request, client_address)

        self._server = Server((self.host, self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        if self._thread:
            self._thread.join(timeout=10)
