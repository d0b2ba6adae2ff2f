"""The deployment configuration (cdk.json context `taskfleet`) is parsed strictly."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest
from taskfleet_functions.orchestrator.clusters import lane_key
from taskfleet_functions.settings import Settings
from taskfleet_infra.config import (
    DEFAULT_ACCOUNT_CONCURRENCY,
    DEFAULT_RESERVED_CONCURRENCY,
    LAMBDA_UNRESERVED_MINIMUM,
    MAX_QUEUE_PREFIX,
    ConfigError,
    ExternalCompute,
    FargateCompute,
    GpuCompute,
    parse_config,
)

from .conftest import FULL_CONFIG, ROOT


def _with(**changes: Any) -> dict[str, Any]:
    return {**json.loads(json.dumps(FULL_CONFIG)), **changes}


def test_the_repository_config_is_valid_and_has_the_default_cluster() -> None:
    raw = json.loads((ROOT / "cdk.json").read_text())["context"]["taskfleet"]
    config = parse_config(raw)
    assert "default" in config.cluster_slugs
    assert config.lane_name("default", "0123456789ab") == f"{config.queue_prefix}-default--0123456789ab.fifo"
    assert config.lane_pattern("default") == f"{config.queue_prefix}-default--*"
    assert config.dlq_name("default") == f"{config.queue_prefix}-default-dlq.fifo"


def test_queue_names_are_the_ones_the_functions_create() -> None:
    """The stack names DLQs and grants on lane names; the functions create both (settings.py)."""
    config = parse_config(FULL_CONFIG)
    settings = Settings(table_name="unused", queue_prefix=config.queue_prefix)
    key = lane_key("taskfleet.examples.demo:MakeTile", "1.0")
    for slug in config.cluster_slugs:
        assert config.lane_name(slug, key) == settings.lane_name(slug, key)
        assert config.dlq_name(slug) == settings.dlq_name(slug)
        assert fnmatch.fnmatchcase(settings.lane_name(slug, key), config.lane_pattern(slug))
        assert not fnmatch.fnmatchcase(settings.dlq_name(slug), config.lane_pattern(slug))


def test_a_slug_may_not_contain_a_double_dash() -> None:
    """`<prefix>-<slug>--*` must name one cluster's lanes: were "gpu--a10" a slug, its lanes
    (`<prefix>-gpu--a10--<key>.fifo`) would match the runner policy of cluster "gpu"."""
    with pytest.raises(ConfigError, match="'--'"):
        parse_config(_with(clusters=[{"slug": "default"}, {"slug": "gpu--a10"}]))


def test_the_queue_prefix_leaves_room_for_the_lanes_of_clusters_created_at_run_time() -> None:
    # <prefix>-<runtime slug, 37>--<key, 12>.fifo: 23 + 1 + 37 + 2 + 12 + 5 = 80
    assert MAX_QUEUE_PREFIX == 23
    longest = "p" * 23
    runtime_lane = Settings(table_name="unused", queue_prefix=longest).lane_name("s" * 30 + "-abc123", "0" * 12)
    assert len(runtime_lane) == 80
    assert parse_config(_with(queue_prefix=longest)).queue_prefix == longest
    with pytest.raises(ConfigError, match="at most 23"):
        parse_config(_with(queue_prefix="p" * 24))
    with pytest.raises(ConfigError, match="'--'"):
        parse_config(_with(queue_prefix="tf--ci"))


def test_a_declared_slug_whose_lanes_would_not_fit_is_rejected() -> None:
    long_slug = "s" * 40  # as long as a slug may be (rules.check_slug)
    parse_config(_with(queue_prefix="p" * 20, clusters=[{"slug": "default"}, {"slug": long_slug}]))
    with pytest.raises(ConfigError, match="exceed 80 characters"):
        parse_config(_with(queue_prefix="p" * 23, clusters=[{"slug": "default"}, {"slug": long_slug}]))


def test_each_compute_type_is_parsed_into_its_own_model() -> None:
    config = parse_config(FULL_CONFIG)
    kinds = {c.slug: type(c.compute) for c in config.clusters}
    assert kinds == {"default": FargateCompute, "gpu-a10": GpuCompute, "lab": ExternalCompute}
    gpu = config.clusters[1].compute
    assert isinstance(gpu, GpuCompute) and gpu.task_limit == 3  # one task per instance by default


def test_context_given_as_a_json_string_on_the_command_line_is_accepted() -> None:
    assert parse_config(json.dumps(FULL_CONFIG)) == parse_config(FULL_CONFIG)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_with(clusters=[{"slug": "gpu", "compute": {"type": "external"}}]), "'default'"),
        (_with(clusterz=[]), "unknown key"),
        (
            _with(clusters=[{"slug": "default", "compute": {"type": "fargate", "cpu": 512, "memory": 512}}]),
            "memory 512 is not valid",
        ),
        (
            _with(clusters=[{"slug": "default", "compute": {"type": "fargate", "min_tasks": 3, "max_tasks": 2}}]),
            "min_tasks",
        ),
        (_with(clusters=[{"slug": "default", "compute": {"type": "lambda"}}]), "'type' must be one of"),
        (_with(clusters=[{"slug": "default"}, {"slug": "GPU_a"}]), "lowercase"),
        (_with(clusters=[{"slug": "default"}, {"slug": "default"}]), "unique"),
        (_with(clusters=[{"slug": "default"}, {"slug": "x" * 41}]), "1-40 lowercase"),
        (_with(clusters=[{"slug": "default"}, {"slug": "-gpu"}]), "lowercase"),
        (_with(clusters=[{"slug": "default", "compute": {"type": "gpu", "gpus": 1}}]), "unknown key"),
        (_with(clusters=[{"slug": "default", "tasks": "taskfleet.examples.demo:MakeTile"}]), "module:Class"),
        (_with(lease_seconds=43201), "lease_seconds"),
        (_with(log_retention_days=10), "log_retention_days"),
        (_with(metrics_namespace="AWS/Lambda"), "custom namespace"),
        (_with(retention_days=-1), "retention_days: a non-negative integer"),
        (_with(retention_days="90"), "retention_days: a non-negative integer"),
        (_with(retention_days=True), "retention_days: a non-negative integer"),
        (_with(max_clusters=-5), "max_clusters: a non-negative integer"),
        (_with(max_clusters=1.5), "max_clusters: a non-negative integer"),
        (_with(reserved_concurrency={"runner": -1}), r"reserved_concurrency\.runner: a non-negative integer"),
        (_with(reserved_concurrency={"runner": "400"}), r"reserved_concurrency\.runner: a non-negative integer"),
        (_with(reserved_concurrency={"api": 10}), r"unknown function\(s\) \['api'\]"),
        (_with(reserved_concurrency=[400]), "reserved_concurrency: an object"),
        (_with(reserved_concurrency={"runner": 850}), "at most 900 can be reserved"),
        (_with(reserved_concurrency={"runner": 400}, account_concurrency=500), "at most 400 can be reserved"),
        (_with(account_concurrency="1000"), "account_concurrency: a non-negative integer"),
        ("{not json", "not valid JSON"),
    ],
)
def test_invalid_configurations_are_rejected_with_a_useful_message(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(raw)


def test_an_integer_field_given_as_a_string_is_rejected() -> None:
    raw = _with(clusters=[{"slug": "default", "compute": {"type": "fargate", "max_tasks": "4"}}])
    with pytest.raises(ConfigError, match="expected an integer"):
        parse_config(raw)


def test_retention_cluster_cap_and_reserved_concurrency_have_defaults() -> None:
    config = parse_config({})
    assert (config.retention_days, config.max_clusters) == (90, 100)
    assert config.reserved == DEFAULT_RESERVED_CONCURRENCY
    # a new account: 1,000, of which Lambda keeps 100 unreserved
    assert sum(config.reserved.values()) <= DEFAULT_ACCOUNT_CONCURRENCY - LAMBDA_UNRESERVED_MINIMUM
    assert set(config.reserved) == {"runner", "jobs", "clusters", "sweeper", "automations", "connect"}


def test_reserved_concurrency_merges_with_the_defaults_and_zero_or_null_leave_a_function_unreserved() -> None:
    config = parse_config(_with(reserved_concurrency={"runner": 200, "clusters": 0, "sweeper": None}))
    assert config.reserved == {
        "runner": 200,
        "jobs": DEFAULT_RESERVED_CONCURRENCY["jobs"],
        "automations": DEFAULT_RESERVED_CONCURRENCY["automations"],
        "connect": DEFAULT_RESERVED_CONCURRENCY["connect"],
    }
    assert parse_config(_with(reserved_concurrency=None)).reserved == {}
    assert parse_config(_with(retention_days=0, max_clusters=0)).retention_days == 0


def test_a_larger_account_may_reserve_more() -> None:
    config = parse_config(_with(reserved_concurrency={"runner": 2000}, account_concurrency=5000))
    assert config.reserved["runner"] == 2000


def test_the_repository_config_states_the_limits_explicitly() -> None:
    raw = json.loads((ROOT / "cdk.json").read_text())["context"]["taskfleet"]
    assert {"retention_days", "max_clusters", "reserved_concurrency"} <= set(raw)
    assert parse_config(raw).reserved == DEFAULT_RESERVED_CONCURRENCY
