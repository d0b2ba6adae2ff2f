"""An imitation of the python3.11 Lambda runtime, to import handler modules from a bundle the way Lambda
does (shared by tests/infra/test_bundle.py and bench/bundle_size.py): a folder holding only the packages
the runtime provides, a Lambda-like environment, and a fresh isolated interpreter (`python -I -B -S`: no
site-packages, no bytecode writes, as on Lambda's read-only file system)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

# What the python3.11 Lambda runtime provides next to the function's code.
RUNTIME_PACKAGES = ("boto3", "botocore", "jmespath", "s3transfer", "urllib3", "dateutil", "six.py")
LAMBDA_LIKE_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "bench",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "TASKFLEET_TABLE": "bench",
    "TASKFLEET_QUEUE_PREFIX": "bench",
    "POWERTOOLS_SERVICE_NAME": "taskfleet",
    "POWERTOOLS_METRICS_NAMESPACE": "Taskfleet",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


def host_platform() -> str:
    machine = platform.machine().lower()
    return {
        "x86_64": "manylinux2014_x86_64",
        "amd64": "manylinux2014_x86_64",
        "aarch64": "manylinux2014_aarch64",
        "arm64": "manylinux2014_aarch64",
    }[machine]


def runtime_dir(into: Path) -> Path:
    """A folder with only the packages the Lambda runtime provides (linked from this environment)."""
    import boto3

    site = Path(boto3.__file__).resolve().parent.parent
    into.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PACKAGES:
        if (site / name).exists() and not (into / name).exists():
            (into / name).symlink_to(site / name)
    return into


def cold_import_seconds(bundle: Path, runtime: Path, module: str, extra_env: dict[str, str] | None = None) -> float:
    """Seconds to import `module` in a fresh isolated interpreter whose path holds only the bundle and the
    runtime's packages, in a Lambda-like environment (plus `extra_env`)."""
    code = (
        "import sys, time\n"
        f"sys.path[:0] = [{str(bundle)!r}, {str(runtime)!r}]\n"
        "t = time.perf_counter()\n"
        f"import {module}\n"
        "print(time.perf_counter() - t)\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), **LAMBDA_LIKE_ENV, **(extra_env or {})}
    done = subprocess.run(
        [sys.executable, "-I", "-B", "-S", "-c", code], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"importing {module} from the bundle failed:\n{done.stderr[-3000:]}")
    return float(done.stdout.strip().splitlines()[-1])
