"""README, "Using the Tilebox SDK": its example runs as written with the Tilebox SDK, but for the url and the two
keys it says to make (an admin key, a runner key for the default cluster)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.support import ROOT
from tests.tilebox.conftest import make_key, run_tilebox


def tilebox_example() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Using the Tilebox SDK") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's Tilebox section has a python example"
    return match.group(1)


def test_the_readme_tilebox_example_runs_as_written(stack: Any, tilebox_python: Path, tmp_path: Path) -> None:
    code = tilebox_example()
    placeholders = ('"http://127.0.0.1:8000"', '"tfk_...admin key..."', '"tfk_...runner key..."')
    assert all(p in code for p in placeholders)
    admin, runner = make_key(stack, "admin"), make_key(stack, "runner", "default")
    for placeholder, value in zip(placeholders, (stack.url, admin, runner), strict=True):
        code = code.replace(placeholder, repr(value))
    script = tmp_path / "greet.py"
    script.write_text(code)
    done = run_tilebox(script, url=stack.url, token=admin, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip().splitlines()[-1] == "COMPLETED", (done.stdout[-2000:], done.stderr[-2000:])
    (job,) = [j for j in stack.client().jobs().query(name="greet") if j.state == "COMPLETED"][:1]
    assert "HELLO TASKFLEET" in {t.display for t in stack.client().jobs().tasks(job)}
