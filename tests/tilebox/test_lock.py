"""requirements/tilebox.txt (tools/lock_tilebox.py) is what `make tilebox` installs with --require-hashes: every
line an exact pin with hashes, the SDK's own packages at 0.66.0. Offline: reads files, downloads nothing."""

from __future__ import annotations

import re

from tools import lock_tilebox

PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})+)")


def pins() -> dict[str, tuple[str, int]]:
    """Canonical name -> (version, number of hashes)."""
    text = lock_tilebox.OUTPUT.read_text().replace("\\\n", " ")
    found = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = PIN.fullmatch(line.strip())
        assert match, f"not an exact pin with hashes: {line}"
        found[lock_tilebox.canonical(match.group(1))] = (match.group(2), match.group(3).count("--hash"))
    return found


def test_every_package_is_pinned_with_hashes_and_the_sdk_is_0_66_0() -> None:
    found = pins()
    for sdk in ("tilebox-workflows", "tilebox-datasets", "tilebox-grpc"):
        assert found[sdk][0] == "0.66.0"
    assert {"connectrpc", "pyqwest", "protobuf", "grpcio", "opentelemetry-sdk"} <= set(found)
    assert not {"pip", "setuptools", "wheel"} & set(found)  # a fresh venv's own


def test_the_wheels_kept_are_those_pip_may_pick_for_cpython_3_11_on_linux() -> None:
    x86, arm = lock_tilebox.supported_tags("x86_64"), lock_tilebox.supported_tags("aarch64")

    def picked(filename: str) -> bool:
        tags = lock_tilebox.utils.parse_wheel_filename(filename)[3]
        return bool(tags & x86 or tags & arm)

    assert picked("grpcio-1.85.3-cp311-cp311-manylinux2014_aarch64.manylinux_2_17_aarch64.whl")
    assert picked("pyqwest-0.12.0-cp311-abi3-manylinux_2_28_x86_64.whl")
    assert picked("protobuf_py_ext-0.7.0-cp311-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    assert picked("six-1.17.0-py2.py3-none-any.whl")
    for other in (
        "grpcio-1.85.3-cp311-cp311-musllinux_1_2_x86_64.whl",
        "grpcio-1.85.3-cp312-cp312-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
        "grpcio-1.85.3-cp311-cp311-win_amd64.whl",
        "grpcio-1.85.3-cp311-cp311-macosx_11_0_universal2.whl",
        "obstore-0.12.1-cp311-abi3-manylinux_2_17_i686.manylinux2014_i686.whl",
        "pyqwest-0.12.0-pp311-pypy311_pp73-manylinux_2_28_x86_64.whl",
    ):
        assert not picked(other), other
