"""`taskfleet dev` stops cleanly on Ctrl-C, says that its state lives in memory, and comes back on the same
ports, so a runner left running carries on against the new stack."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from taskfleet import Client

from tests.e2e.workflows import Noop
from tests.support import ROOT
from tests.support.fleet import Runners
from tests.support.waits import job_done, wait_until


def free_port_pair() -> int:
    """A port p such that p and p + 1 are free now."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return int(port)
    raise RuntimeError("no free pair of ports")


def start_dev(port: int) -> tuple[subprocess.Popen[str], str]:
    dev = subprocess.Popen(
        [sys.executable, "-m", "taskfleet.cli", "dev", "--port", str(port), "--lease-seconds", "3"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert dev.stdout is not None
    banner = [dev.stdout.readline() for _ in range(4)]
    return dev, "".join(banner)


def test_dev_stops_cleanly_and_runners_carry_on_after_a_restart(tmp_path: Path):
    port = free_port_pair()
    dev, banner = start_dev(port)
    runners = Runners(f"http://127.0.0.1:{port}", tmp_path)
    try:
        assert "State lives in memory" in banner
        client = Client(f"http://127.0.0.1:{port}")
        runners.start("default", "Noop")
        first = client.jobs().submit("before", Noop("before"))
        assert wait_until(job_done(client, first), what="a job before the restart").state == "COMPLETED"
        # When dev gets Ctrl-C
        dev.send_signal(signal.SIGINT)
        out, err = dev.communicate(timeout=60)
        # Then it says so in one line and exits 0, without a traceback or a logged error
        assert dev.returncode == 0
        assert "stopping (local state discarded)" in out
        assert "Traceback" not in err and "unhandled error" not in err
        # And when it starts again on the same port, the runner left running carries on
        dev, _ = start_dev(port)
        second = client.jobs().submit("after", Noop("after"))
        assert wait_until(job_done(client, second), timeout=60, what="a job after the restart").state == "COMPLETED"
    finally:
        runners.stop_all()
        if dev.poll() is None:
            dev.send_signal(signal.SIGINT)
            dev.communicate(timeout=60)
