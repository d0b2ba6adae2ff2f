"""The deployment configuration (cdk.json context `taskfleet`) is parsed strictly."""

from __future__ import annotations

import json
from typing import Any

import pytest
from taskfleet_infra.config import (
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
    assert config.queue_name("default") == f"{config.queue_prefix}-default.fifo"
    assert config.dlq_name("default") == f"{config.queue_prefix}-default-dlq.fifo"


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
        (_with(clusters=[{"slug": "default"}, {"slug": "x" * 80}]), "80 characters"),
        (_with(clusters=[{"slug": "default", "compute": {"type": "gpu", "gpus": 1}}]), "unknown key"),
        (_with(clusters=[{"slug": "default", "tasks": "taskfleet.examples.demo:MakeTile"}]), "module:Class"),
        (_with(lease_seconds=43201), "lease_seconds"),
        (_with(log_retention_days=10), "log_retention_days"),
        (_with(metrics_namespace="AWS/Lambda"), "custom namespace"),
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
