"""`taskfleet demo` (what `make demo` runs), end to end in its own process: it completes, with its optional
task failed without failing the job, its progress indicators full, and its GPU task reading the job cache."""

from __future__ import annotations

import re
import subprocess
import sys


def test_the_demo_completes_with_progress_an_optional_failure_and_the_job_cache():
    out = subprocess.run(
        [sys.executable, "-m", "taskfleet.cli", "demo", "--scenes", "4", "--runners", "1", "--timeout", "120"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"job \S+ COMPLETED in", out.stdout)
    assert "16 tasks: 15 COMPUTED, 1 FAILED_OPTIONAL" in out.stdout
    assert "progress: scenes 4/4, tiles 8/8" in out.stdout
    assert "optional task FetchWeather failed, the job went on: ConnectionError" in out.stdout
    # the report read what DetectObjects (on the GPU cluster) wrote to the cache after reading every scene
    assert re.search(r"last: Report for alps published: \d+ objects, without weather", out.stdout)
