"""The Lambda bundle built without Docker: complete (every handler imports from it and the Lambda
runtime alone), lean (nothing the handlers do not import), byte-compiled, built for arm64."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import struct
from pathlib import Path

import pytest
from taskfleet_infra.bundle import REQUIREMENTS, SDK_MODULES, TRACING_REQUIREMENTS, build_bundle, folder_size

from tests.support.lambda_runtime import cold_import_seconds, host_platform, runtime_dir

from .conftest import Synth
from .test_supply_chain import hashed_requirements

HANDLERS = ("jobs", "clusters", "runner", "sweeper", "connect")
PROVIDED_BY_THE_RUNTIME = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six.py")
NOT_FOR_LAMBDA = ("taskfleet_runner", "taskfleet_local", "moto", "tests", "bin", "pip", "setuptools")
MAX_BUNDLE_MB = 25


def _deployed_bundle(s: Synth) -> Path:
    files = s.assets()["files"]
    (path,) = [
        f["source"]["path"] for f in files.values() if (s.outdir / f["source"]["path"] / "taskfleet_functions").is_dir()
    ]
    return s.outdir / path


def test_the_bundle_holds_the_functions_and_their_dependencies_only(synth: Synth) -> None:
    bundle = _deployed_bundle(synth)
    top = {p.name for p in bundle.iterdir()}
    for package in ("taskfleet_functions", "taskfleet", "aws_lambda_powertools", "pydantic", "pydantic_core"):
        assert package in top
    # Of the user package, only the shared rules the functions import (no client, CLI or examples).
    assert {p.name for p in (bundle / "taskfleet").iterdir() if p.is_file()} == set(SDK_MODULES)
    for name in PROVIDED_BY_THE_RUNTIME + NOT_FOR_LAMBDA:
        assert name not in top, f"{name} does not belong in the Lambda bundle"
    for handler in HANDLERS:
        assert (bundle / "taskfleet_functions" / "handlers" / f"{handler}.py").is_file()
    assert ("aws_xray_sdk" in top) is synth.config.tracing  # the X-Ray SDK only where tracing is on
    assert folder_size(bundle) < MAX_BUNDLE_MB * 1e6


def test_native_extensions_are_built_for_arm64(cli_synth: Synth) -> None:
    bundle = _deployed_bundle(cli_synth)
    extensions = list(bundle.rglob("*.so"))
    assert extensions
    for so in extensions:
        header = so.read_bytes()[:20]
        assert header[:4] == b"\x7fELF"
        (machine,) = struct.unpack("<H", header[18:20])
        assert machine == 183, f"{so.name} is not an aarch64 (EM_AARCH64) library"


def test_every_module_is_byte_compiled_for_python311_without_source_checks(cli_synth: Synth) -> None:
    """Lambda's file system is read-only: without shipped .pyc every cold start compiles again."""
    bundle = _deployed_bundle(cli_synth)
    sources = [p for package in ("taskfleet_functions", "taskfleet") for p in (bundle / package).rglob("*.py")]
    assert sources
    for source in sources:
        compiled = source.parent / "__pycache__" / f"{source.stem}.cpython-311.pyc"
        assert compiled.is_file(), f"{source.relative_to(bundle)} is not byte-compiled"
        flags = struct.unpack("<I", compiled.read_bytes()[4:8])[0]
        assert flags == 0b01, "hash-based, unchecked: zip extraction times cannot invalidate it"


def test_the_bundle_pins_are_the_versions_the_tests_run_against() -> None:
    """What is deployed is what the unit and e2e tests exercised locally (the pins carry hashes, which
    tests/infra/test_supply_chain.py checks)."""
    for file in (REQUIREMENTS, TRACING_REQUIREMENTS):
        pins = hashed_requirements(file)
        assert pins, f"no pins read from {file.name}"
        for pin in pins:
            assert importlib.metadata.version(pin.name) == pin.version, pin


@pytest.mark.parametrize("tracing", [False, True], ids=["plain", "tracing"])
def test_every_handler_imports_from_the_bundle_and_the_lambda_runtime_alone(tmp_path: Path, tracing: bool) -> None:
    """Built for this machine from the same pins (arm64 wheels cannot load here), imported in a fresh
    isolated interpreter whose path holds only the bundle and the runtime's own packages."""
    bundle = build_bundle(host_platform(), tracing=tracing)
    runtime = runtime_dir(tmp_path / "runtime")
    env = {"TASKFLEET_TRACING": "1"} if tracing else {}
    for handler in HANDLERS:
        seconds = cold_import_seconds(bundle, runtime, f"taskfleet_functions.handlers.{handler}", env)
        assert seconds > 0
