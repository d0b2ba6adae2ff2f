"""The Lambda bundle: its size, and the cold import time of each handler module.

    python -m bench.bundle_size             # 7 fresh interpreters per handler (from the repository root)
    python -m bench.bundle_size --runs 15 --json build/bundle.json

Size: the arm64 bundle CDK deploys (infra/taskfleet_infra/bundle.py), unzipped and zipped.
Cold import: the bundle's arm64 wheels cannot load on an x86_64 machine, so the same pins are built
for this machine's platform (same code, same byte-compiled layout) and each handler module is imported
in a fresh interpreter (`python -I -B`: no site-packages, no bytecode writes, as on Lambda's read-only
file system) whose path holds only the bundle and what the Lambda runtime itself provides (boto3,
botocore, jmespath, s3transfer, urllib3, dateutil, six). Reported: the median of the runs, for the
bundle as shipped (byte-compiled) and for its sources only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import zipfile
from pathlib import Path

from taskfleet_infra.bundle import LAMBDA_PLATFORM, build_bundle, folder_size

from tests.support.lambda_runtime import cold_import_seconds, host_platform, runtime_dir

HANDLERS = ("jobs", "clusters", "runner", "sweeper")


def zipped_size(folder: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "bundle.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(folder))
        return archive.stat().st_size


def without_bytecode(bundle: Path, into: Path) -> Path:
    shutil.copytree(bundle, into, ignore=shutil.ignore_patterns("__pycache__"))
    return into


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)

    lambda_bundle = build_bundle(LAMBDA_PLATFORM)
    size = folder_size(lambda_bundle)
    zipped = zipped_size(lambda_bundle)
    parts = sorted(
        ((folder_size(p) if p.is_dir() else p.stat().st_size, p.name) for p in lambda_bundle.iterdir()), reverse=True
    )
    print(f"Lambda bundle ({LAMBDA_PLATFORM}): {size / 1e6:.1f} MB unzipped, {zipped / 1e6:.1f} MB zipped")
    for part_size, name in parts[:8]:
        print(f"  {part_size / 1e6:6.2f} MB  {name}")

    results: dict[str, object] = {
        "bundle_mb": round(size / 1e6, 2),
        "bundle_zip_mb": round(zipped / 1e6, 2),
        "runs": args.runs,
        "cold_import_ms": {},
        "cold_import_ms_sources_only": {},
    }
    host_bundle = build_bundle(host_platform())
    with tempfile.TemporaryDirectory() as tmp:
        runtime = runtime_dir(Path(tmp) / "runtime")
        sources_only = without_bytecode(host_bundle, Path(tmp) / "sources")
        print(f"\ncold import, median of {args.runs} fresh interpreters ({host_platform()} build of the same pins)")
        print(f"  {'handler module':<42} {'shipped (.pyc)':>15} {'sources only':>13}")
        for name in HANDLERS:
            module = f"taskfleet_functions.handlers.{name}"
            shipped = statistics.median(cold_import_seconds(host_bundle, runtime, module) for _ in range(args.runs))
            plain = statistics.median(cold_import_seconds(sources_only, runtime, module) for _ in range(args.runs))
            results["cold_import_ms"][name] = round(shipped * 1000, 1)  # type: ignore[index]
            results["cold_import_ms_sources_only"][name] = round(plain * 1000, 1)  # type: ignore[index]
            print(f"  {module:<42} {shipped * 1000:12.0f} ms {plain * 1000:10.0f} ms")
    load = os.getloadavg()[0]
    print(f"\n(load average {load:.1f} on {os.cpu_count()} cores while measuring)")
    results["load_average"] = round(load, 2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
