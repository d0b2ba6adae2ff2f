"""The user package as a user gets it: the `taskfleet` wheel built from the root pyproject.toml, installed
without extras into a clean virtualenv, holds the SDK and the runner and nothing server-side, and a runner
started from it executes a job on the local stack (which runs here, in the test process)."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT
from tests.support.waits import job_done, wait_until

# What `pip install taskfleet` may bring: the package, boto3 and urllib3 with their own dependencies.
ALLOWED_DISTRIBUTIONS = {
    "taskfleet",
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "urllib3",
    "python-dateutil",
    "six",
}
SERVER_SIDE = (
    "taskfleet_functions",
    "taskfleet_local",
    "taskfleet_infra",
    "pydantic",
    "pydantic_core",
    "aws_lambda_powertools",
    "moto",
)
# What the wheel is built from (what runner/Dockerfile copies, too).
SOURCES = ("pyproject.toml", "README.md", "sdk", "runner")

TASKS = '''
    """Task classes a user keeps next to the runner (the runner imports them from PYTHONPATH)."""

    import sys

    from taskfleet import ExecutionContext, Task

    SERVER_SIDE = {server_side!r}


    class Fan(Task):
        n: int

        def execute(self, context: ExecutionContext) -> None:
            context.submit_subtasks([Square(i) for i in range(self.n)])
            loaded = sorted(m for m in sys.modules if m.split(".")[0] in SERVER_SIDE)
            context.current_task.display = f"{{sys.prefix}}|{{','.join(loaded)}}"


    class Square(Task):
        x: int

        def execute(self, context: ExecutionContext) -> None:
            context.current_task.display = str(self.x * self.x)
'''


@dataclass(frozen=True)
class CleanVenv:
    path: Path
    wheel: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a process of this virtualenv: nothing of the test's import path leaks in."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        env.update(PYTHONNOUSERSITE="1", **extra)
        return env

    def run(self, *args: str | Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in args],
            cwd=cwd,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _pip(*args: str | Path, cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"pip {' '.join(map(str, args))} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> CleanVenv:
    base = tmp_path_factory.mktemp("wheel")
    # Built from a copy of the sources, so that no build/ or egg-info left in the repository takes part.
    source = base / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
            )
        else:
            source.mkdir(exist_ok=True)
            shutil.copyfile(ROOT / name, source / name)
    dist = base / "dist"
    _pip("wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", dist, source, cwd=base)
    (wheel,) = dist.glob("taskfleet-*.whl")
    # A virtualenv of its own (not seeing this one's packages), with the wheel and its declared dependencies
    # at the versions of requirements/lock.txt (constraints: nothing else of the lock is installed).
    path = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    _pip(
        "--python",
        path / "bin" / "python",
        "install",
        "--quiet",
        wheel,
        "--constraint",
        ROOT / "requirements" / "lock.txt",
        cwd=base,
    )
    return CleanVenv(path, wheel)


def test_the_wheel_holds_the_sdk_and_the_runner_and_requires_boto3_and_urllib3_only(venv: CleanVenv) -> None:
    with zipfile.ZipFile(venv.wheel) as wheel:
        names = wheel.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = Parser().parsestr(wheel.read(metadata).decode()).get_all("Requires-Dist") or []
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = wheel.read(entry_points).decode()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"taskfleet", "taskfleet_runner"}
    assert "taskfleet/examples/demo.py" in names  # the demo tasks the runner image runs
    plain = [r for r in requires if "extra ==" not in r]  # the `cli` extra (rich) is optional
    assert sorted(r.split(">")[0].split("<")[0].split("=")[0].strip() for r in plain) == ["boto3", "urllib3"]
    assert [r.split(";")[0].split(">")[0] for r in requires if "extra ==" in r] == ["rich"]
    assert "taskfleet/console/static/app.js" in names  # the web console's assets ship in the wheel
    assert "taskfleet = taskfleet.cli:main" in scripts


def test_the_clean_venv_has_nothing_server_side(venv: CleanVenv, tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import importlib.metadata, importlib.util, json, sys
        import taskfleet, taskfleet_runner, taskfleet.cli, taskfleet_runner.runner
        from taskfleet import Client, ExecutionContext, Task
        print(json.dumps({{
            "installed": sorted({{d.metadata["Name"].lower() for d in importlib.metadata.distributions()}}),
            "findable": [n for n in {SERVER_SIDE!r} if importlib.util.find_spec(n) is not None],
            "imported": sorted(m for m in sys.modules if m.split(".")[0] in {SERVER_SIDE!r}),
            "taskfleet": taskfleet.__file__,
        }}))
    """)
    done = venv.run(venv.python, "-c", code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert "taskfleet" in seen["installed"]
    assert set(seen["installed"]) <= ALLOWED_DISTRIBUTIONS, seen["installed"]
    assert seen["findable"] == []
    assert seen["imported"] == []
    # The wheel's copy, not this repository's.
    assert Path(seen["taskfleet"]).resolve().is_relative_to(venv.path.resolve())


def test_the_runner_does_not_import_the_client(venv: CleanVenv, tmp_path: Path) -> None:
    """runner -> SDK is one-directional: the runner needs the transport, not `taskfleet.client`."""
    code = "import sys, taskfleet_runner.runner; print('taskfleet.client' in sys.modules)"
    done = venv.run(venv.python, "-c", code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("command", ["dev", "demo"])
def test_local_commands_say_in_one_line_how_to_get_the_local_stack(
    venv: CleanVenv, tmp_path: Path, command: str
) -> None:
    done = venv.run(venv.path / "bin" / "taskfleet", command, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1
    assert f"taskfleet {command}:" in done.stderr and "make setup" in done.stderr


@pytest.fixture
def task_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A user's task module outside this repository, importable here (to submit) and in the runner."""
    folder = tmp_path / "usercode"
    folder.mkdir()
    (folder / "wheel_tasks.py").write_text(textwrap.dedent(TASKS.format(server_side=SERVER_SIDE)).lstrip())
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    sys.modules.pop("wheel_tasks", None)


def test_a_runner_from_the_wheel_runs_a_job_on_the_local_stack(
    venv: CleanVenv, client: Any, cluster: str, task_dir: Path
) -> None:
    wheel_tasks = importlib.import_module("wheel_tasks")

    # Given a runner started with the clean virtualenv's `taskfleet` command
    runner = subprocess.Popen(
        [
            str(venv.path / "bin" / "taskfleet"),
            "runner",
            "--url",
            client.url,
            "--cluster",
            cluster,
            "wheel_tasks:Fan",
            "wheel_tasks:Square",
        ],
        cwd=task_dir,
        env=venv.env(PYTHONPATH=str(task_dir), TASKFLEET_LOG_LEVEL="WARNING"),
    )
    try:
        # When a job with subtasks is submitted with the SDK
        job = client.jobs().submit("from-the-wheel", wheel_tasks.Fan(3), cluster=cluster)
        # Then that runner completes it
        done = wait_until(job_done(client, job), timeout=60, what="the job to finish")
        assert done.state == "COMPLETED"
        tasks = client.jobs().tasks(job)
        assert sorted(t.display for t in tasks if t.name == "Square") == ["0", "1", "4"]
        (fan,) = [t for t in tasks if t.name == "Fan"]
        prefix, loaded = fan.display.split("|")
        assert Path(prefix).resolve() == venv.path.resolve()  # executed by the clean virtualenv's interpreter
        assert loaded == ""  # and nothing server-side was imported there
        # And SIGTERM stops it cleanly
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=30) == 0
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait(timeout=10)
