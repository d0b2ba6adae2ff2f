"""Runners on ECS: one ECS cluster, a service per compute cluster, scaling on the cluster's backlog (the
sweeper's `Backlog` metric over all its lanes: from zero, counting in-flight tickets), CPU target
tracking, GPU capacity through an ASG capacity provider."""

from __future__ import annotations

import re
from typing import Any

import pytest
from taskfleet_infra.config import FargateCompute, GpuCompute

from .conftest import ROOT, Synth, logical_id, ref_id, render


def _services(s: Synth) -> dict[str, tuple[str, dict[str, Any], dict[str, Any]]]:
    """slug -> (service id, service properties, runner container definition)."""
    found = {}
    for sid, service in s.of_type("AWS::ECS::Service").items():
        task = s.resources[ref_id(service["Properties"]["TaskDefinition"])]["Properties"]
        (container,) = task["ContainerDefinitions"]
        env = {e["Name"]: e["Value"] for e in container["Environment"]}
        found[env["TASKFLEET_CLUSTER"]] = (sid, service["Properties"], {**container, "task": task, "env": env})
    return found


def test_one_ecs_cluster_with_container_insights(synth: Synth) -> None:
    (cluster,) = synth.of_type("AWS::ECS::Cluster").values()
    assert {"Name": "containerInsights", "Value": "enabled"} in cluster["Properties"]["ClusterSettings"]


def test_a_service_for_each_ecs_compute_cluster_and_none_for_external_ones(synth: Synth) -> None:
    ecs_slugs = {c.slug for c in synth.config.clusters if c.runs_on_ecs}
    assert set(_services(synth)) == ecs_slugs
    assert any(not c.runs_on_ecs for c in synth.config.clusters)


def test_runner_containers_run_the_runner_cli_configured_for_their_cluster(synth: Synth) -> None:
    (api_id,) = synth.of_type("AWS::ApiGatewayV2::Api")
    for slug, (_, _, container) in _services(synth).items():
        cluster = next(c for c in synth.config.clusters if c.slug == slug)
        env = container["env"]
        assert env["TASKFLEET_URL"] == {"Fn::GetAtt": [api_id, "ApiEndpoint"]}
        assert env["TASKFLEET_TASKS"].split() == list(cluster.tasks)
        # ECS waits StopTimeout (its maximum, 120 s) after SIGTERM; the runner's grace period fits in it.
        assert container["StopTimeout"] == 120
        assert 0 < float(env["TASKFLEET_SHUTDOWN_GRACE"]) <= container["StopTimeout"] - 20
        assert container["LinuxParameters"]["InitProcessEnabled"] is True
        assert container["LogConfiguration"]["LogDriver"] == "awslogs"


def test_fargate_services_use_the_configured_size_architecture_and_capacity(synth: Synth) -> None:
    services = _services(synth)
    for cluster in synth.config.clusters:
        if not isinstance(cluster.compute, FargateCompute):
            continue
        _, service, container = services[cluster.slug]
        task = container["task"]
        compute = cluster.compute
        assert (task["Cpu"], task["Memory"]) == (str(compute.cpu), str(compute.memory))
        assert task["RuntimePlatform"]["CpuArchitecture"] == ("ARM64" if compute.architecture == "arm64" else "X86_64")
        (strategy,) = service["CapacityProviderStrategy"]
        assert strategy["CapacityProvider"] == ("FARGATE_SPOT" if compute.spot else "FARGATE")
        network = service["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert network["AssignPublicIp"] == ("ENABLED" if synth.config.nat_gateways == 0 else "DISABLED")


def test_runners_accept_no_inbound_traffic(synth: Synth) -> None:
    for group in synth.of_type("AWS::EC2::SecurityGroup").values():
        assert not group["Properties"].get("SecurityGroupIngress")
        for rule in group["Properties"]["SecurityGroupEgress"]:
            assert (rule.get("FromPort"), rule.get("ToPort")) == (443, 443)
    assert not synth.of_type("AWS::EC2::SecurityGroupIngress")


def _scalable_target(s: Synth, service_id: str) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (k, t["Properties"])
        for k, t in s.of_type("AWS::ApplicationAutoScaling::ScalableTarget").items()
        if service_id in render(t["Properties"]["ResourceId"])
    ]
    return found


def _policies(s: Synth, target_id: str) -> dict[str, dict[str, Any]]:
    return {
        k: p["Properties"]
        for k, p in s.of_type("AWS::ApplicationAutoScaling::ScalingPolicy").items()
        if logical_id(p["Properties"]["ScalingTargetId"]) == target_id
    }


def _alarm_for(s: Synth, policy_id: str) -> dict[str, Any]:
    (alarm,) = [
        a["Properties"]
        for a in s.of_type("AWS::CloudWatch::Alarm").values()
        if policy_id in [logical_id(x) for x in a["Properties"].get("AlarmActions", [])]
    ]
    return alarm


def _metric_ids(alarm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["Id"]: m for m in alarm["Metrics"]}


def _backlog(s: Synth, slug: str, metric: dict[str, Any]) -> None:
    """`metric` is the sweeper's Backlog of cluster `slug` (functions/.../handlers/sweeper.py: `gauge("Backlog",
    n, cluster=slug)` in POWERTOOLS_METRICS_NAMESPACE), the maximum per minute."""
    stat = metric["MetricStat"]
    assert stat["Metric"] == {
        "Namespace": s.config.metrics_namespace,
        "MetricName": "Backlog",
        "Dimensions": [{"Name": "cluster", "Value": slug}],
    }
    assert (stat["Period"], stat["Stat"]) == (60, "Maximum")


def test_the_backlog_metric_is_what_the_sweeper_publishes() -> None:
    """The alarms name the metric by namespace, name and dimensions; the sweeper must publish exactly that."""
    source = (ROOT / "functions" / "taskfleet_functions" / "handlers" / "sweeper.py").read_text()
    assert re.search(r"gauge\(\s*\"Backlog\",\s*\w+,\s*cluster=\w+\s*\)", source)  # one dimension, `cluster`
    common = (ROOT / "functions" / "taskfleet_functions" / "handlers" / "common.py").read_text()
    assert 'namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE"' in common


def _scaling_alarm(s: Synth, slug: str, direction: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(scalable target, step policy, its alarm) of cluster `slug`; direction: "out" or "in"."""
    service_id, _, _ = _services(s)[slug]
    target_id, target = _scalable_target(s, service_id)
    sign = 1 if direction == "out" else -1
    (policy_id,) = [
        k
        for k, p in _policies(s, target_id).items()
        if p["PolicyType"] == "StepScaling"
        and all(a["ScalingAdjustment"] * sign > 0 for a in p["StepScalingPolicyConfiguration"]["StepAdjustments"])
    ]
    return target, s.resources[policy_id]["Properties"], _alarm_for(s, policy_id)


@pytest.mark.parametrize("kind", ["fargate", "gpu"])
def test_services_scale_out_from_zero_on_tickets_without_a_runner(full_synth: Synth, kind: str) -> None:
    s = full_synth
    cluster = next(c for c in s.config.clusters if c.compute.type == kind)
    _, service, _ = _services(s)[cluster.slug]
    target, policy, alarm = _scaling_alarm(s, cluster.slug, "out")
    assert target["MinCapacity"] == 0 and service["DesiredCount"] == 0
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    metrics = _metric_ids(alarm)
    (expression,) = [m["Expression"] for m in metrics.values() if "Expression" in m]
    # the backlog (queued + in flight over all lanes) - the runners the service already wants
    assert expression.replace(" ", "") == "backlog-FILL(desired,0)"
    _backlog(s, cluster.slug, metrics["backlog"])
    assert metrics["desired"]["MetricStat"]["Metric"]["MetricName"] == "DesiredTaskCount"
    assert not [m for m in metrics.values() if m.get("MetricStat", {}).get("Metric", {}).get("Namespace") == "AWS/SQS"]
    # No Backlog datapoint (the sweeper late or failing) adds no runner.
    assert alarm["TreatMissingData"] == "notBreaching"
    steps = policy["StepScalingPolicyConfiguration"]["StepAdjustments"]
    assert steps[0] == {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 1, "ScalingAdjustment": 1}
    assert "MetricIntervalUpperBound" not in steps[-1]


@pytest.mark.parametrize("kind", ["fargate", "gpu"])
def test_services_scale_in_to_the_minimum_only_when_no_ticket_is_queued_or_in_flight(
    full_synth: Synth, kind: str
) -> None:
    s = full_synth
    cluster = next(c for c in s.config.clusters if c.compute.type == kind)
    target, policy, alarm = _scaling_alarm(s, cluster.slug, "in")
    (step,) = policy["StepScalingPolicyConfiguration"]["StepAdjustments"]
    assert step == {"MetricIntervalUpperBound": 0, "ScalingAdjustment": -target["MaxCapacity"]}
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanOrEqualToThreshold", 0)
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 3
    (metric,) = alarm["Metrics"]
    assert "Expression" not in metric  # the backlog itself, not filled with 0 where missing
    _backlog(s, cluster.slug, metric)
    # Minutes without a Backlog datapoint never count as empty: a busy service is not scaled in when the
    # sweeper is late or failing.
    assert alarm["TreatMissingData"] == "notBreaching"


def test_every_scaling_alarm_reads_its_own_clusters_backlog(synth: Synth) -> None:
    for slug in _services(synth):
        for direction in ("out", "in"):
            _, _, alarm = _scaling_alarm(synth, slug, direction)
            backlogs = [
                m["MetricStat"]["Metric"]
                for m in alarm["Metrics"]
                if m.get("MetricStat", {}).get("Metric", {}).get("MetricName") == "Backlog"
            ]
            assert [b["Dimensions"] for b in backlogs] == [[{"Name": "cluster", "Value": slug}]], (slug, direction)


def test_cpu_services_also_track_cpu_without_scaling_in(full_synth: Synth) -> None:
    s = full_synth
    cluster = next(c for c in s.config.clusters if isinstance(c.compute, FargateCompute))
    service_id, _, _ = _services(s)[cluster.slug]
    target_id, _ = _scalable_target(s, service_id)
    (tracking,) = [p for p in _policies(s, target_id).values() if p["PolicyType"] == "TargetTrackingScaling"]
    config = tracking["TargetTrackingScalingPolicyConfiguration"]
    assert config["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ECSServiceAverageCPUUtilization"
    assert config["DisableScaleIn"] is True
    assert 0 < config["TargetValue"] < 100


def test_gpu_cluster_runs_on_an_asg_capacity_provider_with_the_al2023_gpu_ami(full_synth: Synth) -> None:
    s = full_synth
    cluster = next(c for c in s.config.clusters if isinstance(c.compute, GpuCompute))
    compute = cluster.compute
    assert isinstance(compute, GpuCompute)
    ((provider_id, provider),) = s.of_type("AWS::ECS::CapacityProvider").items()
    asg_props = provider["Properties"]["AutoScalingGroupProvider"]
    assert asg_props["ManagedScaling"]["Status"] == "ENABLED"
    assert asg_props["ManagedTerminationProtection"] == "ENABLED"
    asg = s.resources[ref_id(asg_props["AutoScalingGroupArn"])]["Properties"]
    assert asg["NewInstancesProtectedFromScaleIn"] is True
    assert (asg["MinSize"], asg["MaxSize"]) == (str(compute.min_instances), str(compute.max_instances))
    template = s.resources[ref_id(asg["LaunchTemplate"]["LaunchTemplateId"])]["Properties"]["LaunchTemplateData"]
    assert template["InstanceType"] == compute.instance_type
    assert template["MetadataOptions"]["HttpTokens"] == "required"
    ami_parameter = s.template["Parameters"][logical_id(template["ImageId"])]
    assert ami_parameter["Default"] == "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id"
    assert all(d["Ebs"]["Encrypted"] for d in template["BlockDeviceMappings"])
    _, service, container = _services(s)[cluster.slug]
    assert [logical_id(x["CapacityProvider"]) for x in service["CapacityProviderStrategy"]] == [provider_id]
    assert {"Type": "GPU", "Value": str(compute.gpus_per_task)} in container["ResourceRequirements"]
    (association,) = s.of_type("AWS::ECS::ClusterCapacityProviderAssociations").values()
    assert provider_id in [logical_id(p) for p in association["Properties"]["CapacityProviders"]]


def test_runner_image_is_built_from_runner_dockerfile_with_a_lean_context(synth: Synth) -> None:
    images = synth.assets()["dockerImages"]
    assert images, "no container image asset"
    for image in images.values():
        source = image["source"]
        assert source["dockerFile"] == "runner/Dockerfile"
        context = synth.outdir / source["directory"]
        staged = {p.relative_to(context).parts[0] for p in context.iterdir()}
        # .dockerignore itself is always staged (Docker reads it); nothing else but the user package's
        # sources: a runner needs nothing server-side (no functions/, no local stack).
        assert staged == {".dockerignore", "pyproject.toml", "README.md", "sdk", "runner"}
        assert not list(context.rglob("__pycache__"))
        for package in ("sdk/taskfleet", "runner/taskfleet_runner"):
            assert (context / package / "__init__.py").is_file()


def test_dockerfile_runs_the_runner_cli_as_non_root_and_stops_on_sigterm() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "runner" / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    instructions = [line.split()[0] for line in lines]
    assert lines[0].startswith("FROM python:3.11-slim")
    user = [line for line in lines if line.startswith("USER ")]
    assert user and user[-1].split()[1].split(":")[0] not in ("root", "0")
    assert "STOPSIGNAL SIGTERM" in lines
    assert lines[-1] == 'CMD ["taskfleet", "runner"]'
    assert instructions.index("USER") < instructions.index("CMD")
    assert any(line.startswith("RUN pip install .") for line in lines)


def test_dockerfile_copies_and_installs_the_user_package_only() -> None:
    """The root pyproject.toml builds `taskfleet` (sdk/, runner/); the functions are no runner's business."""
    lines = [
        line.strip()
        for line in (ROOT / "runner" / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [source for line in lines if line.startswith("COPY ") for source in line.split()[1:-1]]
    assert copied == ["pyproject.toml", "README.md", "sdk/", "runner/"]
