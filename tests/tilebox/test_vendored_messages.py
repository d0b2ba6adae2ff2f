"""The messages the Connect endpoint speaks (functions/taskfleet_functions/connect/proto/, vendored from the
wheels) are the reference SDK's own: the serialized file descriptors are equal byte for byte to those of the
installed tilebox-workflows 0.66.0 (in build/tilebox-venv)."""

from __future__ import annotations

import hashlib
import importlib
import json
import subprocess
from pathlib import Path

# vendored module -> the wheel's module it was copied from
VENDORED = {
    "workflows_core_pb2": "tilebox.workflows.workflows.v1.core_pb2",
    "workflows_job_pb2": "tilebox.workflows.workflows.v1.job_pb2",
    "workflows_task_pb2": "tilebox.workflows.workflows.v1.task_pb2",
    "workflows_workflows_pb2": "tilebox.workflows.workflows.v1.workflows_pb2",
    "workflows_diagram_pb2": "tilebox.workflows.workflows.v1.diagram_pb2",
    "tilebox_id_pb2": "tilebox.datasets.tilebox.v1.id_pb2",
    "tilebox_query_pb2": "tilebox.datasets.tilebox.v1.query_pb2",
}

_PRINT_DIGESTS = """
import hashlib, importlib, json, sys
names = json.loads(sys.argv[1])
print(json.dumps({n: hashlib.sha256(importlib.import_module(n).DESCRIPTOR.serialized_pb).hexdigest() for n in names}))
"""


def test_the_vendored_descriptors_are_the_wheels_byte_for_byte(tilebox_python: Path) -> None:
    done = subprocess.run(
        [str(tilebox_python), "-c", _PRINT_DIGESTS, json.dumps(sorted(VENDORED.values()))],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    theirs = json.loads(done.stdout)
    for ours, wheel in VENDORED.items():
        module = importlib.import_module(f"taskfleet_functions.connect.proto.{ours}")
        assert hashlib.sha256(module.DESCRIPTOR.serialized_pb).hexdigest() == theirs[wheel], ours
