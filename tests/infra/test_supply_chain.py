"""Supply chain: what is deployed is installed from the lock, by hash, and nothing by a moving name.

The runner image's base is pinned by digest; its Python packages (runner/requirements.txt) and the Lambda
bundle's (infra/lambda-requirements*.txt) are exact pins of requirements/lock.txt with the sha256 of their
wheels, installed with `pip install --require-hashes --no-deps`. `make lock` writes the hashed files
(tools/hash_requirements.py). Offline: these tests read files and fake pip; they download nothing.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from taskfleet_infra import bundle
from taskfleet_infra.bundle import REQUIREMENTS, TRACING_REQUIREMENTS

from tools import hash_requirements

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "runner" / "Dockerfile"
RUNNER_REQUIREMENTS = ROOT / "runner" / "requirements.txt"
LOCK = ROOT / "requirements" / "lock.txt"
HASHED = (RUNNER_REQUIREMENTS, REQUIREMENTS, TRACING_REQUIREMENTS)
_DIGEST = r"@sha256:[0-9a-f]{64}"


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    hashes: tuple[str, ...]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def hashed_requirements(path: Path) -> list[Pin]:
    """The requirements of a file in pip's hash-checking form; a line that is anything but
    `name==version --hash=sha256:<hex> ...` (an option, a range, a URL, an include) fails."""
    pins = []
    for raw in path.read_text().replace("\\\n", " ").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pin = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!]+)((?:\s+--hash=sha256:[0-9a-f]{64})+)", line)
        assert pin, f"{path.relative_to(ROOT)}: not an exact pin with hashes: {line}"
        pins.append(Pin(pin.group(1), pin.group(2), tuple(re.findall(r"[0-9a-f]{64}", pin.group(3)))))
    return pins


def locked() -> dict[str, str]:
    pins = (re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line) for line in LOCK.read_text().splitlines())
    return {canonical(p.group(1)): p.group(2) for p in pins if p}


def dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = "\n".join(line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#"))
    return [" ".join(i.split()) for i in text.replace("\\\n", " ").splitlines() if i.strip()]


def pip_installs() -> list[list[str]]:
    commands = [c.split() for i in dockerfile() if i.startswith("RUN ") for c in i[4:].split("&&")]
    pip = (["pip", "install"], ["pip3", "install"])
    return [c for c in commands if c[:2] in pip or c[1:4] == ["-m", "pip", "install"]]


# The runner image.


def test_the_base_image_is_pinned_by_digest() -> None:
    froms = [i.split()[1] for i in dockerfile() if i.startswith("FROM ")]
    assert re.fullmatch(rf"python:3\.11-slim-bookworm{_DIGEST}", froms[0]), froms[0]
    assert all(re.search(rf"{_DIGEST}$", image) for image in froms), froms
    # A `# syntax=` directive pulls a frontend image at build time: by digest, or none at all.
    first = DOCKERFILE.read_text().splitlines()[0]
    assert not re.match(r"#\s*syntax\s*=", first) or re.search(_DIGEST, first), first
    assert not any("$" in image for image in froms), "no build argument decides the base image"


def test_the_image_installs_the_hashed_requirements_without_resolving() -> None:
    installs = pip_installs()
    assert installs, "the Dockerfile installs nothing with pip"
    for command in installs:
        assert "--no-deps" in command, f"pip resolves dependencies: {' '.join(command)}"
        assert "--index-url" not in command and "--extra-index-url" not in command
    hashed, package = installs
    assert "--require-hashes" in hashed
    assert "--only-binary=:all:" in hashed
    assert hashed[hashed.index("--requirement") + 1] == "runner/requirements.txt"
    # Then the package itself, built with the hashed setuptools (an isolated build would fetch it unhashed).
    assert "." in package and "--no-build-isolation" in package
    assert "setuptools" in {canonical(p.name) for p in hashed_requirements(RUNNER_REQUIREMENTS)}


def test_the_runner_requirements_reach_the_build_context() -> None:
    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    assert "!runner/" in ignore
    assert not [p for p in ignore[ignore.index("!runner/") + 1 :] if "requirements" in p or p.startswith("runner")]


def test_the_runner_requirements_are_the_lock_versions() -> None:
    lock = locked()
    for pin in hashed_requirements(RUNNER_REQUIREMENTS):
        assert lock.get(canonical(pin.name)) == pin.version, f"{pin.name}=={pin.version} is not the lock's"


def _closure(roots: list[str]) -> set[str]:
    """The names of `roots` and of everything they require, as installed here (from the lock)."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in roots]
    while todo:
        requirement = todo.pop()
        name = canonical(requirement.name)
        if name in seen or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        todo += [Requirement(r) for r in importlib.metadata.requires(requirement.name) or []]
    return seen


def test_the_runner_requirements_are_what_the_user_package_needs_to_run_and_build() -> None:
    """Installed with --no-deps, a missing package would surface as an ImportError in production."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = _closure(project["project"]["dependencies"]) | _closure(project["build-system"]["requires"])
    assert {"boto3", "botocore", "urllib3", "setuptools"} <= needed
    assert {canonical(p.name) for p in hashed_requirements(RUNNER_REQUIREMENTS)} == needed


# The Lambda bundle.


@pytest.mark.parametrize("path", HASHED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_requirement_is_pinned_exactly_with_hashes(path: Path) -> None:
    pins = hashed_requirements(path)
    assert pins
    names = [canonical(p.name) for p in pins]
    assert len(names) == len(set(names)), "a package listed twice"
    for pin in pins:
        assert pin.hashes and len(pin.hashes) == len(set(pin.hashes)), pin


def test_the_lambda_requirements_are_the_lock_versions() -> None:
    lock = locked()
    for path in (REQUIREMENTS, TRACING_REQUIREMENTS):
        for pin in hashed_requirements(path):
            assert lock.get(canonical(pin.name)) == pin.version, f"{pin.name}=={pin.version} is not the lock's"


def _fake_pip(calls: list[list[str]]) -> Any:
    def run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append([str(c) for c in command])
        return subprocess.CompletedProcess(command, 0, "", "")

    return run


def test_the_bundle_installs_with_require_hashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(bundle.subprocess, "run", _fake_pip(calls))
    bundle._dependencies(bundle.LAMBDA_PLATFORM, tmp_path, [REQUIREMENTS, TRACING_REQUIREMENTS])
    (pip,) = [c for c in calls if c[1:4] == ["-m", "pip", "install"]]
    for option in ("--require-hashes", "--no-deps", "--only-binary=:all:"):
        assert option in pip
    assert [pip[i + 1] for i, arg in enumerate(pip) if arg == "--requirement"] == [
        str(REQUIREMENTS),
        str(TRACING_REQUIREMENTS),
    ]


def test_the_bundle_cache_key_changes_with_every_pin_and_hash(tmp_path: Path) -> None:
    def key(text: str) -> str:
        path = tmp_path / "lambda-requirements.txt"
        path.write_text(text)
        return bundle._dependencies_key(bundle.LAMBDA_PLATFORM, [path])

    text = REQUIREMENTS.read_text()
    pin = hashed_requirements(REQUIREMENTS)[0]
    other_hash = pin.hashes[0][::-1]
    assert key(text) == key(text)
    assert key(text) != key(text.replace(f"=={pin.version}", f"=={pin.version}.1", 1))
    assert key(text) != key(text.replace(pin.hashes[0], other_hash))
    assert key(text) != bundle._dependencies_key("manylinux2014_x86_64", [tmp_path / "lambda-requirements.txt"])


# `make lock`: the checked-in files are exactly what it writes (no hand edits), given the same wheels.


def _wheels_as_listed(path: Path) -> Any:
    listed = {canonical(p.name): (p.version, set(p.hashes)) for p in hashed_requirements(path)}
    return lambda specs, *, deps: listed


@pytest.mark.parametrize("path", [REQUIREMENTS, TRACING_REQUIREMENTS], ids=lambda p: p.name)
def test_make_lock_writes_the_lambda_files_as_checked_in(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hash_requirements, "wheel_hashes", _wheels_as_listed(path))
    lock = hash_requirements.read_lock(LOCK)
    assert hash_requirements.lambda_file(path, lock) == path.read_text()


def test_make_lock_writes_the_runner_file_as_checked_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hash_requirements, "wheel_hashes", _wheels_as_listed(RUNNER_REQUIREMENTS))
    lock = hash_requirements.read_lock(LOCK)
    assert hash_requirements.runner_file(lock) == RUNNER_REQUIREMENTS.read_text()


def test_make_lock_rejects_a_lambda_package_the_lock_does_not_hold(tmp_path: Path) -> None:
    path = tmp_path / "lambda-requirements.txt"
    path.write_text(REQUIREMENTS.read_text() + "not-in-the-lock==1.0\n")
    with pytest.raises(hash_requirements.LockError, match=r"not-in-the-lock is not in requirements/lock\.txt"):
        hash_requirements.lambda_file(path, hash_requirements.read_lock(LOCK))
