"""The reliability scenarios (tests/support/scenarios.py) at CI size, against the session's local stack: each
scenario must end with every job in the expected state, no task lost, no attempt executed twice and no
invariant (tests/support/invariants.py) violated. `python -m bench.faults --size large` runs the same, bigger."""

from __future__ import annotations

from pathlib import Path

import pytest
from taskfleet_functions import faults

from tests.support.scenarios import (
    CRASH_POINTS,
    SIZES,
    run_aws_faults,
    run_delivery,
    run_fuzz,
    run_handler_crash,
    run_races,
    run_runner_crashes,
)

SMALL = SIZES["small"]


@pytest.fixture(autouse=True)
def _disarm():
    faults.disarm_all()
    yield
    faults.disarm_all()


def test_sigkilled_runners_lose_no_task_and_run_no_attempt_twice(stack, tmp_path: Path):
    result = run_runner_crashes(stack, SMALL, tmp_path)
    assert result.violations == []
    f = result.figures
    assert 1 <= f["runners_killed"] <= SMALL.kills
    assert f["tasks_lost"] == 0 and f["tasks"] == f["expected_tasks"]
    assert f["duplicate_executions"] == 0
    # a kill cuts an attempt short (unless it landed as the task returned); that task ran again
    assert f["interrupted_executions"] <= f["runners_killed"]
    assert f["executions"] >= f["tasks"] + f["interrupted_executions"]


def test_throttling_5xx_and_timeouts_on_aws_calls_do_not_lose_or_corrupt_anything(stack, tmp_path: Path):
    result = run_aws_faults(stack, SMALL, tmp_path)
    assert result.violations == []
    f = result.figures
    assert f["tasks_lost"] == 0 and f["duplicate_executions"] == 0
    injected = f["faults_injected"]
    assert sum(injected.values()) >= 10, injected  # the rate is real, not a no-op
    assert any(k.startswith("handlers dynamodb:") for k in injected)
    assert any(k.startswith("handlers sqs:") for k in injected) or any(k.startswith("runners sqs:") for k in injected)


@pytest.mark.parametrize("point", sorted(CRASH_POINTS))
def test_handler_crash_between_writes_is_repaired(stack, tmp_path: Path, point: str):
    result = run_handler_crash(stack, point, "once", tmp_path)
    assert result.violations == []
    assert result.figures["crashes_injected"] == {point: 1}
    assert result.figures["tasks_lost"] == 0 and result.figures["duplicate_executions"] == 0


@pytest.mark.parametrize(
    "point", ["complete.before_commit", "propagate.before_parent_completed", "resume.before_dispatch"]
)
def test_handler_crash_whose_client_gives_up_is_repaired_by_tickets_or_the_sweeper(stack, tmp_path: Path, point: str):
    result = run_handler_crash(stack, point, "dead", tmp_path)
    assert result.violations == []
    assert result.figures["crashes_injected"][point] >= 1
    assert result.figures["tasks_lost"] == 0 and result.figures["duplicate_executions"] == 0


def test_duplicate_late_and_out_of_order_deliveries_keep_the_first_valid_result(stack, tmp_path: Path):
    result = run_delivery(stack, SMALL, tmp_path)
    assert result.violations == []
    assert result.figures["delivery_checks"] >= 35  # lease tokens, cluster and job checks included


def test_racing_claims_cancel_retry_and_completions_end_in_allowed_states(stack, tmp_path: Path):
    result = run_races(stack, SMALL, tmp_path)
    assert result.violations == []
    assert result.figures["claim_winners"] >= SMALL.race_tasks


def test_every_route_answers_hostile_input_with_a_4xx_and_changes_nothing(stack, tmp_path: Path):
    result = run_fuzz(stack, SMALL, tmp_path)
    assert result.violations == []
    cases = result.figures["fuzz_cases"]
    assert len(cases) >= 18 and all(n >= 1 for n in cases.values())
    runner_routes = {f"POST /runner/{{slug}}/{route}" for route in ("next", "extend", "lanes")}
    assert runner_routes | {f"{r} (well-formed)" for r in runner_routes} <= set(cases), sorted(cases)
    assert "POST /runner/{next,extend} (older runners)" in cases
