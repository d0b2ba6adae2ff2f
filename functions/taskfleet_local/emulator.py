"""moto in server mode, made safe and observable for taskfleet, in a child process of its own.

On AWS the handlers and the AWS services run on different machines. Locally, moto runs in a child process
(`python -m taskfleet_local.emulator`), so the handlers (in the LocalStack's process) and moto each get a
core instead of sharing one interpreter lock. The child exits when its stdin reaches end of file, that is
when the parent closes it (`Emulator.stop()`) or dies, even by SIGKILL.

Additions over moto's own ThreadedMotoServer, each in a module of its own:
- middleware.py: DynamoDB requests are serialized (conditional writes are atomic, as on AWS), every request
  is counted by service and action, and the parent reads the counts over HTTP controls.
- moto_patches.py: guarded patches of moto's internals: the correctness fix of SQS's in-flight set
  (always), speed-ups of SQS's clock and retention check and of the dispatcher's module list (`fast_clock`),
  and DynamoDB responses written by `json.dumps` (`fast_dynamodb`). `Emulator.patch_report()` says which
  the server runs and on which moto.
`Emulator(in_process=True)` keeps the older mode, moto in a thread of this process; it leaves the DynamoDB
patch out, which would change moto for everything else in that process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from collections import Counter, deque
from pathlib import Path
from typing import IO, Any

from . import moto_patches
from .middleware import CONTROL_PREFIX, CountingSerializingMiddleware
from .moto_patches import dynamodb_json_body

__all__ = ["CONTROL_PREFIX", "Emulator", "EmulatorError", "dynamodb_json_body", "main"]

START_TIMEOUT_S = 60.0


class EmulatorError(RuntimeError):
    pass


def _make_server(host: str, port: int, *, fast_clock: bool, fast_dynamodb: bool) -> tuple[Any, Any]:
    """moto's WSGI app behind the middleware, in a threaded werkzeug server (not yet serving)."""
    try:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
    except ImportError as e:  # moto 5.2.1 has no MotoRequestHandler
        raise EmulatorError(
            f"moto {moto_patches.moto_version()} does not provide the server the emulator runs "
            f"({e}); taskfleet is tested with moto {moto_patches.TESTED_MOTO}"
        ) from e
    from werkzeug.serving import make_server

    moto_patches.apply_patches(moto_patches.select(fast_clock=fast_clock, fast_dynamodb=fast_dynamodb))

    class QuietHandler(MotoRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    middleware = CountingSerializingMiddleware(DomainDispatcherApplication(create_backend_app))
    server = make_server(host, port, middleware, threaded=True, request_handler=QuietHandler)
    return server, middleware


def _server_url(server: Any) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}"


class Emulator:
    """moto's server on loopback, in a child process (or, with in_process=True, a thread of this one).

    fast_clock (the SQS clock, the SQS retention check and the module list) and fast_dynamodb turn the
    speed-ups of moto_patches.py on (the default) or off; its correctness patches always apply."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        fast_clock: bool = True,
        fast_dynamodb: bool = True,
        in_process: bool = False,
    ) -> None:
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
        self._patch_report: dict[str, Any] | None = None
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
        package_root = str(Path(__file__).resolve().parents[1])  # the child imports this very package
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p),
        }
        self._proc = proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        assert proc.stdout is not None and proc.stderr is not None
        self._stderr_thread = threading.Thread(
            target=self._forward_stderr, args=(proc.stderr,), name="emulator-stderr", daemon=True
        )
        self._stderr_thread.start()
        lines: list[bytes] = []
        reader = threading.Thread(
            target=lambda stream: lines.append(stream.readline()),
            args=(proc.stdout,),
            name="emulator-start",
            daemon=True,
        )
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
        self._server, self.middleware = _make_server(
            self._host, self._port, fast_clock=self._fast_clock, fast_dynamodb=False
        )
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
        request = urllib.request.Request(
            f"{self.url}{CONTROL_PREFIX}{name}{query}", method=method, data=b"" if method == "POST" else None
        )
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

    def patch_report(self) -> dict[str, Any]:
        """moto's version, the tested range, and the moto patches applied and skipped in the server's process
        (see moto_patches.report)."""
        if self.middleware:
            return moto_patches.report()
        if self._patch_report is None:
            self._patch_report = dict(self._control("GET", "patches"))  # fixed once the child serves
        return dict(self._patch_report)

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
