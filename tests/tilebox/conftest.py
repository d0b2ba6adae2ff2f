"""Fixtures and helpers for running the unmodified Tilebox SDK (tilebox-workflows 0.66.0) against the local
stack's Connect endpoint. The SDK lives in build/tilebox-venv (`make tilebox`), never in .venv: its scripts
(scenario.py, tilebox_workflows.py) run there as subprocesses.

- `tilebox_python` (session): the venv's python; the tests FAIL (not skip) without it.
- `run_tilebox(script, *args, url=, token=)`: runs a script there to its end, as a CompletedProcess;
  `scenario_result(done)` is its JSON line.
- `start_tilebox_runner(...)` / the `tilebox_runners` fixture: a Tilebox runner (run_forever) in the background,
  stopped with SIGTERM.
- `make_key(stack, role, cluster)`: a bearer API key (taskfleet's `keys().create`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TILEBOX_VENV = ROOT / "build" / "tilebox-venv"
SCENARIO = HERE / "scenario.py"
# Tilebox's own configuration must not leak in from the developer's shell: the SDK falls back to these.
_DROPPED_ENV = ("TILEBOX_API_URL", "TILEBOX_API_KEY", "TILEBOX_RUNTIME_DIR", "TILEBOX_RUNTIME_TOKEN")
# .venv's interpreter settings would point the other venv's python at the wrong packages
_DROPPED_PYTHON_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP", "PYTHONSAFEPATH")


def tilebox_python_path() -> Path:
    """build/tilebox-venv's python, or a test failure that says how to build it."""
    python = TILEBOX_VENV / "bin" / "python"
    if not python.exists():
        pytest.fail(f"the Tilebox SDK venv is missing ({python}): run `make tilebox`", pytrace=False)
    return python


@pytest.fixture(scope="session")
def tilebox_python() -> Path:
    python = tilebox_python_path()
    check = subprocess.run(
        [str(python), "-c", "import tilebox.workflows.client, pyqwest, connectrpc"],
        capture_output=True,
        text=True,
        env=tilebox_env(),
        timeout=120,
        check=False,
    )
    if check.returncode != 0:
        pytest.fail(
            f"build/tilebox-venv cannot import the Tilebox SDK: run `make tilebox`\n{check.stderr[-2000:]}",
            pytrace=False,
        )
    return python


def tilebox_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a Tilebox SDK subprocess: this one without Tilebox's and .venv's settings, with
    tests/tilebox on PYTHONPATH (scripts import tilebox_workflows), plus `env`. The SDK's OTLP export (traces,
    logs to the API's /v1/...) stays on: what it prints is allowed noise."""
    base = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV and k not in _DROPPED_PYTHON_ENV}
    base["PYTHONPATH"] = str(HERE)
    base["PYTHONUNBUFFERED"] = "1"
    return {**base, **(env or {})}


def _command(script_path_or_module: str | Path, args: tuple[str, ...], url: str, token: str) -> list[str]:
    target = str(script_path_or_module)
    if target.endswith(".py") or os.sep in target:
        path = Path(target)
        launch = [str(path if path.is_absolute() else HERE / path)]
    else:
        launch = ["-m", target]
    return [str(tilebox_python_path()), *launch, *args, "--url", url, "--token", token]


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL the process and everything it started (the SDK's lease renewer is a child process)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_tilebox(
    script_path_or_module: str | Path,
    *args: str,
    url: str,
    token: str,
    timeout: float = 120,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a script (a path; relative ones are in tests/tilebox) or a module with build/tilebox-venv's python,
    with `--url url --token token` after `args`, in `cwd` (default: a new temporary directory), to its end.
    Past `timeout` the test fails with what it printed so far. The exit status is left to the caller."""
    command = _command(script_path_or_module, args, url, token)
    workdir = cwd or Path(tempfile.mkdtemp(prefix="tilebox-"))
    proc = subprocess.Popen(
        command,
        cwd=workdir,
        env=tilebox_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a timeout kills the lease renewer too
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        stdout, stderr = proc.communicate()
        what = " ".join(command[1:3])
        pytest.fail(
            f"{what} ran past {timeout} s\n--- stdout\n{stdout[-3000:]}\n--- stderr\n{stderr[-5000:]}", pytrace=False
        )
    _kill_group(proc)  # a renewer left behind by a crashed parent
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


def scenario_result(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The scenario's JSON line (the last stdout line that is a JSON object with "scenario"). Fails the test
    with the scenario's error and stderr when it did not end with ok=true."""
    result = None
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            try:
                parsed = json.loads(line)
            except ValueError:
                continue
            if isinstance(parsed, dict) and "scenario" in parsed:
                result = parsed
                break
    if result is None or not result.get("ok") or done.returncode != 0:
        summary = "no JSON line" if result is None else f"{result.get('error')}: {result.get('message')}"
        pytest.fail(
            f"scenario failed (exit {done.returncode}): {summary}\n--- result\n{json.dumps(result)[:4000]}\n"
            f"--- stderr\n{done.stderr[-6000:]}",
            pytrace=False,
        )
    return result


def run_scenario(
    name: str,
    *args: str,
    url: str,
    token: str,
    out: Path,
    timeout: float = 120,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """scenario.py `name` with its tasks writing to `out` (also its working directory); its JSON line."""
    done = run_tilebox(
        SCENARIO,
        name,
        "--out",
        str(out),
        "--timeout",
        str(max(10, int(timeout) - 20)),
        *args,
        url=url,
        token=token,
        timeout=timeout,
        env=env,
        cwd=out,
    )
    return scenario_result(done)


# --- runners in the background ------------------------------------------------------------------------------


@dataclass
class TileboxRunner:
    """A Tilebox runner subprocess (scenario.py runner: run_forever), its output in files."""

    proc: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    returncode: int | None = None
    stopped: bool = field(default=False)

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until it asked for its cluster (the `ready` line on stderr); fails if it died first."""
        deadline = time.monotonic() + timeout
        while '"ready": true' not in self.stderr:
            if self.proc.poll() is not None:
                pytest.fail(f"the Tilebox runner exited ({self.proc.returncode}):\n{self.stderr[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"the Tilebox runner was not ready after {timeout} s:\n{self.stderr[-4000:]}")
            time.sleep(0.05)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (the SDK waits 2 s for an active task, reports it interrupted, then exits); its exit status.
        Past `timeout`: SIGKILL, and the test fails."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(self.proc)
            self.proc.wait(timeout=10)
            pytest.fail(f"the Tilebox runner ignored SIGTERM for {timeout} s:\n{self.stderr[-4000:]}")
        finally:
            _kill_group(self.proc)  # its lease renewer
            self.stopped = True
        return self.returncode

    def kill(self) -> None:
        _kill_group(self.proc)
        self.proc.wait(timeout=10)
        self.stopped = True


def start_tilebox_runner(
    *,
    url: str,
    token: str,
    cluster: str,
    workdir: Path,
    tasks: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
) -> TileboxRunner:
    """A Tilebox runner on `cluster` in the background (scenario.py runner), registering the named classes of
    tilebox_workflows (default: DEFAULT_TASKS); tasks write to `workdir`, and so do its stdout and stderr."""
    workdir.mkdir(parents=True, exist_ok=True)
    n = len(list(workdir.glob("tilebox-runner-*.err"))) + 1
    stdout_path, stderr_path = workdir / f"tilebox-runner-{n}.out", workdir / f"tilebox-runner-{n}.err"
    args = ["runner", "--cluster", cluster, "--out", str(workdir)]
    if tasks:
        args += ["--tasks", ",".join(tasks)]
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            _command(SCENARIO, tuple(args), url, token),
            cwd=workdir,
            env=tilebox_env(env),
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    return TileboxRunner(proc, stdout_path, stderr_path)


@pytest.fixture
def tilebox_runners(tilebox_python: Path) -> Iterator[list[TileboxRunner]]:
    """Append what start_tilebox_runner returns: whatever a test left running is killed at teardown."""
    started: list[TileboxRunner] = []
    yield started
    for each in started:
        if not each.stopped:
            each.kill()


# --- keys ---------------------------------------------------------------------------------------------------


def make_key(stack: Any, role: str, cluster: str | None = None, **options: Any) -> str:
    """A bearer API key's token: role "admin" (clusters, jobs), or "runner" with the `cluster` it serves."""
    if cluster is not None:
        options["cluster"] = cluster
    return str(stack.client().keys().create(role=role, **options)["token"])


@pytest.fixture(scope="session")
def admin_token(stack: Any) -> str:
    return make_key(stack, "admin")
