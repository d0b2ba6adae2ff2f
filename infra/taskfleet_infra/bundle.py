"""Builds the Lambda code asset locally, without Docker.

The asset is a folder: the pinned dependencies of `infra/lambda-requirements.txt` installed as wheels for
the Lambda platform (`pip install --platform manylinux2014_aarch64 --only-binary=:all: --no-deps
--require-hashes`: every wheel must have one of the sha256 hashes listed with its pin), plus a
copy of `functions/taskfleet_functions` and of what the functions import of the user package `taskfleet`
(the pure rules they share with the SDK: SDK_MODULES of `sdk/taskfleet`). Everything is byte-compiled ahead
of time with `--invalidation-mode unchecked-hash`: Lambda's file system is read-only, so without shipped .pyc
files every cold start compiles every imported module again.

Dependencies are cached under `build/lambda/deps-<platform>-<hash of the requirements>`: pip runs only
when the requirement files change (a pin or a hash), so later synths need no network. The asset folder is
content-addressed too, so CDK's asset hash (and with it the deployed code) changes only when the code or
the pins do. `make lock` writes the pins' hashes (tools/hash_requirements.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from . import FUNCTIONS_DIR, INFRA_DIR, REPO_ROOT, SDK_DIR

LAMBDA_PLATFORM = "manylinux2014_aarch64"  # the functions run on arm64 (Graviton)
PYTHON_VERSION = "3.11"  # the Lambda runtime, python3.11
REQUIREMENTS = INFRA_DIR / "lambda-requirements.txt"
TRACING_REQUIREMENTS = INFRA_DIR / "lambda-requirements-tracing.txt"
BUILD_DIR = REPO_ROOT / "build" / "lambda"
PACKAGE = "taskfleet_functions"
SDK_PACKAGE = "taskfleet"
# What the functions import of the user package: its lazy __init__ and the shared rules, nothing else (the
# client, the CLI and the examples stay out, so that changing them does not change the deployed code).
SDK_MODULES = ("__init__.py", "protocol.py", "rules.py")
# Bump when the layout of the bundle changes, to invalidate cached builds.
_FORMAT = "5"
# What pip leaves that nothing imports at run time.
_PRUNE_DIRS = ("bin",)
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".mypy_cache", ".pytest_cache")


class BundleError(RuntimeError):
    """The Lambda bundle could not be built."""


def build_bundle(
    platform: str = LAMBDA_PLATFORM,
    *,
    tracing: bool = False,
    build_dir: Path = BUILD_DIR,
    functions_dir: Path = FUNCTIONS_DIR,
    sdk_dir: Path = SDK_DIR,
) -> Path:
    """Return the folder of the Lambda asset for `platform`, building what is not cached yet. With
    `tracing`, the X-Ray SDK is added (the handlers import it only when tracing is on)."""
    requirements = [REQUIREMENTS, TRACING_REQUIREMENTS] if tracing else [REQUIREMENTS]
    deps = _dependencies(platform, build_dir, requirements)
    source = functions_dir / PACKAGE
    if not (source / "__init__.py").is_file():
        raise BundleError(f"{source} is not a Python package")
    sdk = [sdk_dir / SDK_PACKAGE / name for name in SDK_MODULES]
    missing = [str(path) for path in sdk if not path.is_file()]
    if missing:
        raise BundleError(f"the user package's modules the functions import are missing: {', '.join(missing)}")
    key = _digest(
        deps.name.encode(),
        _tree_digest(source).encode(),
        *(part for path in sdk for part in (path.name.encode(), path.read_bytes())),
    )
    asset = build_dir / f"asset-{platform}-{key}"
    if asset.is_dir():
        return asset

    def fill(tmp: Path) -> None:
        shutil.copytree(deps, tmp, dirs_exist_ok=True, symlinks=False)
        shutil.copytree(source, tmp / PACKAGE, ignore=_IGNORE)
        (tmp / SDK_PACKAGE).mkdir()
        for path in sdk:
            shutil.copyfile(path, tmp / SDK_PACKAGE / path.name)
        _compile(tmp / PACKAGE)
        _compile(tmp / SDK_PACKAGE)

    _build_atomically(asset, fill)
    _remove_stale(build_dir, f"asset-{platform}-", keep=asset)
    return asset


def _dependencies(platform: str, build_dir: Path, requirements: list[Path]) -> Path:
    deps = build_dir / f"deps-{platform}-{_dependencies_key(platform, requirements)}"
    if deps.is_dir():
        return deps

    def fill(tmp: Path) -> None:
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--require-hashes",
            "--no-compile",
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            PYTHON_VERSION,
            "--platform",
            platform,
            "--target",
            str(tmp),
        ]
        for file in requirements:
            command += ["--requirement", str(file)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BundleError(f"pip could not install the Lambda dependencies:\n{done.stderr[-4000:]}")
        for name in _PRUNE_DIRS:
            shutil.rmtree(tmp / name, ignore_errors=True)
        for cache in list(tmp.rglob("__pycache__")):
            shutil.rmtree(cache, ignore_errors=True)
        _compile(tmp)

    _build_atomically(deps, fill)
    _remove_stale(build_dir, f"deps-{platform}-", keep=deps)
    return deps


def _dependencies_key(platform: str, requirements: list[Path]) -> str:
    """Changes with the requirement files' bytes (every pin and hash), the platform and the format."""
    pins = b"\n".join(r.read_bytes() for r in requirements)
    return _digest(_FORMAT.encode(), platform.encode(), PYTHON_VERSION.encode(), pins)


def _compile(folder: Path) -> None:
    """Byte-compile for the Lambda runtime; only possible with the same minor version of Python."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" != PYTHON_VERSION:
        print(
            f"warning: Python {sys.version.split()[0]} cannot byte-compile for {PYTHON_VERSION}; "
            "the bundle ships sources only (slower cold starts)",
            file=sys.stderr,
        )
        return
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            "-d",
            "",
            str(folder),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BundleError(f"compileall failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def _build_atomically(target: Path, fill: Callable[[Path], None]) -> None:
    """Fill a temporary sibling folder, then rename it into place (parallel synths never see half a
    bundle; the loser of a race discards its copy)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        fill(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale(build_dir: Path, prefix: str, *, keep: Path, older_than_s: float = 3600) -> None:
    now = time.time()
    for old in build_dir.glob(f"{prefix}*"):
        if old != keep and now - old.stat().st_mtime > older_than_s:
            shutil.rmtree(old, ignore_errors=True)


def _tree_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder)
        if "__pycache__" in rel.parts or path.suffix in (".pyc", ".pyo"):
            continue
        h.update(str(rel).encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()[:16]


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
