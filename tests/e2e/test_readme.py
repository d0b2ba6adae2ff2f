"""The README's usage example runs as it is (against this test's local stack instead of port 8000)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT


def usage_example() -> str:
    readme = (ROOT / "README.md").read_text()
    usage = readme[readme.index("## Usage") :]
    match = re.search(r"```python\n(.*?)```", usage, re.S)
    assert match, "the README's Usage section has a python example"
    return match.group(1)


def test_the_readme_usage_example_runs_as_written(stack, tmp_path: Path):
    code = usage_example()
    assert 'Client("http://127.0.0.1:8000")' in code
    (tmp_path / "album.py").write_text(code.replace("http://127.0.0.1:8000", stack.url))
    env = {k: v for k, v in os.environ.items() if k not in ("TASKFLEET_URL", "PYTHONPATH")}
    done = subprocess.run(
        [sys.executable, "album.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "COMPLETED"
