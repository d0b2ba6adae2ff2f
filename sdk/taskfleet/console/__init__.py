"""`taskfleet console`: a web console on loopback for jobs and clusters.

A small HTTP server (standard library) on 127.0.0.1 serves a static page (static/: HTML, JavaScript and CSS
shipped in the package, nothing from a CDN) and a JSON API under /api that it answers by calling the
taskfleet API with the user's own client (SigV4 with their AWS credentials for a deployed API): nothing new
is deployed in AWS, and nothing listens beyond loopback.

Protection: the server answers only requests whose Host is its own loopback address (a web page elsewhere
cannot reach it through DNS rebinding). Every request for the page and the API must carry the session
token, which only the URL printed at start holds (like Jupyter's): another user of the same machine, who
can reach loopback too, cannot read jobs or act with the owner's credentials without it, and a page of
another origin cannot learn it. State changes (cancel, retry) must also come from the console's own
origin when the browser says where they come from. Every response forbids framing and inline script, and
the page writes everything user-controlled as text, never as HTML.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from ..client import Client
from ..errors import ApiError, ApiUnavailableError, TaskfleetError

STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self';"
        " frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
JOBS_PER_PAGE = 100


class ConsoleError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _static(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


class Console:
    """The console's state: the client it calls the API with, and the session token of state changes."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.token = secrets.token_urlsafe(32)

    def api(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> Any:
        return self.client.transport.request(method, path, body, query=query)

    # --- /api routes ---------------------------------------------------------------------------------

    def jobs(self, params: dict[str, str]) -> Any:
        query = {k: params[k] for k in ("state", "name", "since") if params.get(k)}
        return self.api("GET", "/jobs", query={**query, "limit": JOBS_PER_PAGE})

    def job(self, job_id: str) -> Any:
        job = self.api("GET", f"/jobs/{job_id}")
        tasks = self.api("GET", f"/jobs/{job_id}/tasks")
        return {"job": job, "tasks": tasks["tasks"], "truncated": tasks.get("truncated", False)}

    def diagram(self, job_id: str, direction: str) -> str:
        if direction not in ("down", "right"):
            raise ConsoleError(400, "InvalidRequest", "direction must be down or right")
        return self.client.jobs().visualize(job_id, direction=direction)

    def clusters(self) -> Any:
        clusters = self.api("GET", "/clusters")["clusters"]
        for cluster in clusters:
            backlog = self.api("GET", f"/clusters/{quote(cluster['slug'])}/backlog")
            cluster["backlog"], cluster["lanes"] = backlog["backlog"], backlog["lanes"]
        return {"clusters": clusters}

    def act(self, job_id: str, action: str) -> Any:
        if action == "cancel":
            return self.api("POST", f"/jobs/{job_id}/cancel", {})
        return self.api("POST", f"/jobs/{job_id}/retry", {"client_token": secrets.token_hex(16)})


class Handler(BaseHTTPRequestHandler):
    server: ConsoleServer
    server_version = "taskfleet-console"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the console prints its URL once

    # --- plumbing --------------------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def _error(self, status: int, code: str, message: str) -> None:
        self._json(status, {"error": {"code": code, "message": message}})

    def _host_ok(self) -> bool:
        port = self.server.server_address[1]
        return self.headers.get("Host", "") in (f"127.0.0.1:{port}", f"localhost:{port}")

    def _origin_ok(self) -> bool:
        origin = self.headers.get("Origin")
        port = self.server.server_address[1]
        return origin is None or origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}")

    def _handle(self, method: str) -> None:
        if not self._host_ok():
            self._error(403, "Forbidden", "the console answers only on its own loopback address")
            return
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            self._route(method, url.path, params)
        except ConsoleError as err:
            self._error(err.status, err.code, err.message)
        except ApiError as err:
            self._error(err.status, err.code, err.message)
        except ApiUnavailableError as err:
            self._error(502, "ApiUnavailable", f"the taskfleet API cannot be reached: {err}")
        except TaskfleetError as err:
            self._error(500, "ConsoleError", str(err))

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    # --- routes --------------------------------------------------------------------------------------------

    def _route(self, method: str, path: str, params: dict[str, str]) -> None:
        console = self.server.console
        parts = [p for p in path.split("/") if p]
        if method == "GET" and len(parts) == 2 and parts[0] == "static" and parts[1] in STATIC:
            self._send(200, _static(parts[1]), STATIC[parts[1]])  # the same for everyone: no token
            return
        self._check_token(params)
        if method == "GET" and path == "/":
            self._send(200, _static("index.html"), "text/html; charset=utf-8")
        elif method == "GET" and parts == ["api", "jobs"]:
            self._json(200, console.jobs(params))
        elif method == "GET" and parts[:2] == ["api", "jobs"] and len(parts) == 3:
            self._json(200, console.job(_job_id(parts[2])))
        elif method == "GET" and parts[:2] == ["api", "jobs"] and len(parts) == 4 and parts[3] == "diagram.svg":
            svg = console.diagram(_job_id(parts[2]), params.get("direction", "down"))
            self._send(200, svg.encode(), "image/svg+xml")
        elif method == "GET" and parts == ["api", "clusters"]:
            self._json(200, console.clusters())
        elif method == "POST" and parts[:2] == ["api", "jobs"] and len(parts) == 4 and parts[3] in ("cancel", "retry"):
            if not self._origin_ok():
                raise ConsoleError(403, "Forbidden", "a state change must come from the console's own page")
            self._json(200, console.act(_job_id(parts[2]), parts[3]))
        elif method == "GET":
            self._error(404, "NotFound", f"no page {path!r:.80}")
        else:
            self._error(405, "MethodNotAllowed", f"{method} {path!r:.80} is not allowed")

    def _check_token(self, params: dict[str, str]) -> None:
        """The session token, in the header the page's requests carry or the URL (the page, its diagram)."""
        token = self.headers.get("X-Taskfleet-Token") or params.get("token") or ""
        if not hmac.compare_digest(token.encode(), self.server.console.token.encode()):
            raise ConsoleError(
                403, "Forbidden", "open the console with the URL `taskfleet console` printed (its token)"
            )


def _job_id(text: str) -> str:
    if not _ID.match(text):
        raise ConsoleError(400, "InvalidRequest", "not a job id")
    return text


class ConsoleServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, console: Console, port: int = 0) -> None:
        self.console = console
        super().__init__(("127.0.0.1", port), Handler)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def url(self) -> str:
        """The console's address with its session token: what to open."""
        return f"{self.origin}/?token={self.console.token}"

    def start(self) -> ConsoleServer:
        """Serve in a background thread (for tests and scripts); `shutdown()` stops it."""
        threading.Thread(target=self.serve_forever, name="taskfleet-console", daemon=True).start()
        return self


def serve(client: Client, port: int = 0) -> ConsoleServer:
    """A console server for `client` on 127.0.0.1:`port` (0: any free port), not started yet."""
    try:
        return ConsoleServer(Console(client), port)
    except OSError as err:
        raise TaskfleetError(f"cannot listen on 127.0.0.1:{port}: {err}") from None


__all__ = ["Console", "ConsoleServer", "serve"]
