"""What the tests and the benchmarks share: waits (`waits`), runner subprocesses (`fleet`), what tasks
leave behind for a test to observe (`observe`), the stored-state and execution invariants (`invariants`),
hypothesis strategies and the API fuzzer (`strategies`, `fuzz_api`), the reliability scenarios and their
task classes (`scenarios`, `fault_tasks`), and the Lambda-runtime imitation that times cold imports
(`lambda_runtime`). `bench/` imports these; nothing here imports `bench/`.

Runner subprocesses import `tests.support.fault_tasks`, so this package's `__init__` stays import-free.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
