"""Runners on ECS: one ECS cluster per deployment, one service per compute cluster.

- fargate: Fargate (or Fargate Spot) tasks. Scaling: step policies on the cluster's backlog, the metric
  `Backlog` (dimension `cluster`) that the sweeper publishes every minute: tickets visible, in flight
  and delayed over all the cluster's lanes, so tickets held by busy runners count. A cluster's lanes are
  queues created at run time, one per task identifier, which no metric math fixed at synthesis could
  name; the sweeper lists them from the table. Scale out from zero while tickets outnumber runners,
  scale in to the minimum once the backlog has been empty for 3 minutes; target tracking on CPU adds
  runners when they are CPU bound (its scale-in is off, so that it never removes runners the backlog
  still needs).
- gpu: EC2 instances of an Auto Scaling group (ECS-optimized Amazon Linux 2023 GPU AMI) behind an
  AsgCapacityProvider with managed scaling (instances follow the tasks) and managed termination
  protection (an instance running a task is not terminated); containers reserve `gpus_per_task` GPUs.
  Scaling: the same backlog step policies on the service.

Busy runners are never scaled in: the runner holds ECS task scale-in protection while it executes a
task (runner/taskfleet_runner/ecs_protection.py) and on SIGTERM finishes (or gives back) its task within
the container's stop timeout.

Network: with `nat_gateways: 0` runners live in public subnets with a public IP and a security group
that allows no inbound traffic and HTTPS out only; with NAT gateways they live in private subnets.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

from aws_cdk import CfnElement, Duration, IgnoreMode, RemovalPolicy, Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from . import REPO_ROOT
from .config import ClusterConfig, DeploymentConfig, FargateCompute, GpuCompute
from .functions import retention
from .nag import acknowledge
from .runner_access import RunnerAccess

# ECS sends SIGTERM, then SIGKILL after the stop timeout (120 s at most). The runner's grace period for
# the running task is shorter, leaving time to report it (or give it back) before the SIGKILL.
STOP_TIMEOUT_SECONDS = 120
SHUTDOWN_GRACE_SECONDS = 90
# Scale-in protection a busy runner asks for; it renews it while the task runs.
PROTECTION_MINUTES = 60
CPU_TARGET_PERCENT = 70
# Tickets without a runner (backlog - desired runners) -> runners to add, at most once a minute.
DEFICIT_STEPS = ((1, 1), (2, 2), (5, 5), (10, 10))
# Minutes with an empty backlog before scaling in to the minimum (a short pause between the tasks of
# a workflow should not stop runners that are about to get work).
SCALE_IN_MINUTES = 3
# The sweeper's metric (functions/taskfleet_functions/handlers/sweeper.py: `gauge("Backlog", n,
# cluster=slug)`): in the functions' POWERTOOLS_METRICS_NAMESPACE, with the one dimension `cluster`.
BACKLOG_METRIC = "Backlog"
BACKLOG_DIMENSION = "cluster"


@dataclass(frozen=True)
class RunnerService:
    slug: str
    service: ecs.BaseService
    log_group: logs.LogGroup


def backlog_metric(config: DeploymentConfig, slug: str) -> cloudwatch.Metric:
    """Tickets waiting, delayed or held by runners over all lanes of cluster `slug`, per minute (the sweeper
    publishes it once a minute; Maximum, should two sweeps fall into one minute)."""
    return cloudwatch.Metric(
        namespace=config.metrics_namespace,
        metric_name=BACKLOG_METRIC,
        dimensions_map={BACKLOG_DIMENSION: slug},
        period=Duration.minutes(1),
        statistic="Maximum",
        label="backlog (queued + in flight)",
    )


def deficit_metric(
    config: DeploymentConfig, slug: str, cluster: ecs.ICluster, service: ecs.BaseService
) -> cloudwatch.MathExpression:
    """Tickets (queued + in flight) minus the runners the service already wants. A minute without a Backlog
    datapoint (the sweeper late or failing) yields no value, not a deficit: nothing is scaled on a guess."""
    period = Duration.minutes(1)
    return cloudwatch.MathExpression(
        expression="backlog - FILL(desired, 0)",
        using_metrics={
            "backlog": backlog_metric(config, slug),
            "desired": cloudwatch.Metric(
                namespace="ECS/ContainerInsights",
                metric_name="DesiredTaskCount",
                dimensions_map={"ClusterName": cluster.cluster_name, "ServiceName": service.service_name},
                period=period,
                statistic="Maximum",
            ),
        },
        period=period,
        label="tickets without a runner",
    )


class EcsRunners(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: DeploymentConfig,
        api_url: str,
        access: RunnerAccess,
        alarm_topic: sns.ITopic,
        cache_bucket: str | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.config = config
        self.cache_bucket = cache_bucket  # TASKFLEET_CACHE_BUCKET: `taskfleet runner` gives its tasks a job cache
        self.api_url = api_url
        self.access = access
        self.alarm_topic = alarm_topic
        public = config.nat_gateways == 0
        subnets = [ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=22)]
        if not public:
            subnets.append(
                ec2.SubnetConfiguration(name="runners", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20)
            )
        self.vpc = ec2.Vpc(self, "Vpc", max_azs=2, nat_gateways=config.nat_gateways, subnet_configuration=subnets)
        self.vpc.add_flow_log(
            "FlowLogs",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                logs.LogGroup(
                    self,
                    "FlowLogGroup",
                    retention=retention(config.log_retention_days),
                    removal_policy=RemovalPolicy.DESTROY,
                )
            ),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        self.subnets = ec2.SubnetSelection(
            subnet_type=ec2.SubnetType.PUBLIC if public else ec2.SubnetType.PRIVATE_WITH_EGRESS
        )
        self.assign_public_ip = public
        self.security_group = ec2.SecurityGroup(
            self,
            "RunnerSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description="taskfleet runners: no inbound; HTTPS out (AWS APIs, ECR, the taskfleet API)",
        )
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS endpoints")
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=self.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
            enable_fargate_capacity_providers=True,
        )
        self.images: dict[tuple[str, str, str], ecs.ContainerImage] = {}
        self.services: dict[str, RunnerService] = {}
        self.scaling_alarms: dict[str, tuple[cloudwatch.Alarm, cloudwatch.Alarm]] = {}
        for cluster in config.clusters:
            if isinstance(cluster.compute, FargateCompute):
                self.services[cluster.slug] = self._fargate(cluster, cluster.compute)
            elif isinstance(cluster.compute, GpuCompute):
                self.services[cluster.slug] = self._gpu(cluster, cluster.compute)

    # --- shared pieces ---------------------------------------------------------------------------

    def _image(self, cluster: ClusterConfig, platform: str) -> ecs.ContainerImage:
        key = (cluster.image.directory, cluster.image.file, platform)
        if key not in self.images:
            self.images[key] = ecs.ContainerImage.from_asset(
                str((REPO_ROOT / cluster.image.directory).resolve()),
                file=cluster.image.file,
                platform=ecr_assets.Platform.LINUX_ARM64 if platform == "arm64" else ecr_assets.Platform.LINUX_AMD64,
                # Only what .dockerignore lets through is copied and hashed.
                ignore_mode=IgnoreMode.DOCKER,
            )
        return self.images[key]

    def _task_role(self, slug: str) -> iam.Role:
        role = iam.Role(
            self,
            f"{slug}-task-role",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=f"taskfleet runners of cluster '{slug}' on ECS",
            managed_policies=[self.access.policies[slug]],
        )
        # Scale-in protection through the ECS agent endpoint, for this cluster's tasks only.
        task_arns = Stack.of(self).format_arn(
            service="ecs", resource="task", resource_name=f"{self.cluster.cluster_name}/*"
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="TaskScaleInProtection",
                actions=["ecs:UpdateTaskProtection", "ecs:GetTaskProtection"],
                resources=[task_arns],
            )
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task/"
            f"<{Stack.of(self).get_logical_id(typing.cast(CfnElement, self.cluster.node.default_child))}>/*]",
            "Task ids are assigned at run time; the grant covers the tasks of this deployment's ECS "
            "cluster, and only the two task-protection actions.",
        )
        return role

    def _acknowledge_environment(self, task_definition: ecs.TaskDefinition) -> None:
        acknowledge(
            task_definition,
            "AwsSolutions-ECS2",
            "The runner's environment is non-secret configuration (API URL, cluster slug, task class "
            "names, timeouts); the runner authenticates with its task role, there is no secret to inject.",
        )

    def _container_environment(self, cluster: ClusterConfig) -> dict[str, str]:
        cache = {"TASKFLEET_CACHE_BUCKET": self.cache_bucket} if self.cache_bucket else {}
        return {
            "TASKFLEET_URL": self.api_url,
            "TASKFLEET_CLUSTER": cluster.slug,
            "TASKFLEET_TASKS": " ".join(cluster.tasks),
            "TASKFLEET_SHUTDOWN_GRACE": str(SHUTDOWN_GRACE_SECONDS),
            "TASKFLEET_ECS_PROTECTION_MINUTES": str(PROTECTION_MINUTES),
            "TASKFLEET_LOG_LEVEL": self.config.log_level,
            # For SigV4 signing and the SQS client, whatever the platform version injects.
            "AWS_REGION": Stack.of(self).region,
            "AWS_DEFAULT_REGION": Stack.of(self).region,
            **cache,
        }

    def _log_group(self, slug: str) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            f"{slug}-runner-logs",
            retention=retention(self.config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )

    def _acknowledge_execution_role(self, task_definition: ecs.TaskDefinition) -> None:
        execution_role = task_definition.execution_role
        if execution_role is not None:
            acknowledge(
                execution_role,
                "AwsSolutions-IAM5[Resource::*]",
                "ecr:GetAuthorizationToken supports no resource-level permissions; the image pull "
                "itself is scoped to the CDK asset repository.",
            )

    def _scale_on_backlog(
        self, scaling: ecs.ScalableTaskCount, slug: str, service: ecs.BaseService, max_tasks: int
    ) -> None:
        """Scale out from zero on tickets without a runner; scale in to the minimum once no ticket is left.

        Scale-out metric: backlog - desired runners (each runner runs one task at a time, so a ticket
        needs a runner). Subtracting the desired count keeps the policy from adding a runner every
        minute while a long task holds its ticket in flight. Scale-in metric: the backlog itself; at 0
        nothing is queued or running, so the service goes back to its minimum. In between, idle runners
        stay (they long-poll at no cost besides their compute) rather than racing the backlog down.

        Missing data (no Backlog datapoint: the sweeper late, failing, or the cluster not yet used) counts
        as not breaching for both alarms: it neither adds runners nor, above all, removes busy ones. (SQS
        stops publishing for an idle queue; the sweeper publishes every cluster's backlog every minute,
        0 included, so a gap means "unknown", not "empty", and is not filled with 0.)
        """
        target = scaling.node.find_child("Target")
        cooldown = Duration.seconds(60)
        scale_out = appscaling.StepScalingAction(
            self,
            f"{slug}-scale-out",
            scaling_target=target,  # type: ignore[arg-type]
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            cooldown=cooldown,
            metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
        )
        # Alarm threshold 1: bounds are relative to it (deficit 1 -> +1, 2..4 -> +2, 5..9 -> +5, ...).
        for i, (low, change) in enumerate(DEFICIT_STEPS):
            upper = DEFICIT_STEPS[i + 1][0] - 1 if i + 1 < len(DEFICIT_STEPS) else None
            scale_out.add_adjustment(adjustment=change, lower_bound=low - 1, upper_bound=upper)
        out_alarm = cloudwatch.Alarm(
            self,
            f"{slug}-scale-out-alarm",
            metric=deficit_metric(self.config, slug, self.cluster, service),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"Cluster '{slug}': tickets without a runner (scale out)",
        )
        out_alarm.add_alarm_action(cw_actions.ApplicationScalingAction(scale_out))
        scale_in = appscaling.StepScalingAction(
            self,
            f"{slug}-scale-in",
            scaling_target=target,  # type: ignore[arg-type]
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            cooldown=cooldown,
            metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
        )
        # Down by the maximum: capacity is clamped at the service's minimum.
        scale_in.add_adjustment(adjustment=-max(max_tasks, 1), upper_bound=0)
        in_alarm = cloudwatch.Alarm(
            self,
            f"{slug}-scale-in-alarm",
            metric=backlog_metric(self.config, slug),
            threshold=0,
            evaluation_periods=SCALE_IN_MINUTES,
            datapoints_to_alarm=SCALE_IN_MINUTES,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"Cluster '{slug}': no ticket queued or running (scale in to the minimum)",
        )
        in_alarm.add_alarm_action(cw_actions.ApplicationScalingAction(scale_in))
        self.scaling_alarms[slug] = (out_alarm, in_alarm)

    # --- Fargate ---------------------------------------------------------------------------------

    def _fargate(self, cluster: ClusterConfig, compute: FargateCompute) -> RunnerService:
        slug = cluster.slug
        arm = compute.architecture == "arm64"
        task_definition = ecs.FargateTaskDefinition(
            self,
            f"{slug}-task",
            cpu=compute.cpu,
            memory_limit_mib=compute.memory,
            task_role=self._task_role(slug),
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.ARM64 if arm else ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        log_group = self._log_group(slug)
        task_definition.add_container(
            "runner",
            image=self._image(cluster, "arm64" if arm else "x86_64"),
            environment=self._container_environment(cluster),
            logging=ecs.LogDrivers.aws_logs(stream_prefix=slug, log_group=log_group),
            stop_timeout=Duration.seconds(STOP_TIMEOUT_SECONDS),
            linux_parameters=ecs.LinuxParameters(self, f"{slug}-linux", init_process_enabled=True),
        )
        self._acknowledge_execution_role(task_definition)
        self._acknowledge_environment(task_definition)
        service = ecs.FargateService(
            self,
            f"{slug}-service",
            cluster=self.cluster,
            task_definition=task_definition,
            desired_count=compute.min_tasks,
            min_healthy_percent=100,
            max_healthy_percent=200,
            assign_public_ip=self.assign_public_ip,
            vpc_subnets=self.subnets,
            security_groups=[self.security_group],
            capacity_provider_strategies=[
                ecs.CapacityProviderStrategy(capacity_provider="FARGATE_SPOT" if compute.spot else "FARGATE", weight=1)
            ],
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
        )
        scaling = service.auto_scale_task_count(min_capacity=compute.min_tasks, max_capacity=compute.max_tasks)
        scaling.scale_on_cpu_utilization(
            "Cpu",
            target_utilization_percent=CPU_TARGET_PERCENT,
            disable_scale_in=True,
            scale_out_cooldown=Duration.seconds(60),
        )
        self._scale_on_backlog(scaling, slug, service, compute.max_tasks)
        return RunnerService(slug, service, log_group)

    # --- GPU on EC2 ------------------------------------------------------------------------------

    def _gpu(self, cluster: ClusterConfig, compute: GpuCompute) -> RunnerService:
        slug = cluster.slug
        instance_role = iam.Role(
            self,
            f"{slug}-instance-role",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description=f"taskfleet GPU instances of cluster '{slug}' (ECS agent)",
        )
        launch_template = ec2.LaunchTemplate(
            self,
            f"{slug}-launch-template",
            machine_image=ecs.EcsOptimizedImage.amazon_linux2023(ecs.AmiHardwareType.GPU),
            instance_type=ec2.InstanceType(compute.instance_type),
            role=instance_role,
            security_group=self.security_group,
            user_data=ec2.UserData.for_linux(),
            require_imdsv2=True,
            # Containers (bridge network) are one hop further: they cannot reach the instance's
            # credentials through IMDS; they use their task role.
            http_put_response_hop_limit=1,
            associate_public_ip_address=self.assign_public_ip,
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",
                    volume=ec2.BlockDeviceVolume.ebs(
                        compute.root_volume_gib, encrypted=True, volume_type=ec2.EbsDeviceVolumeType.GP3
                    ),
                )
            ],
            detailed_monitoring=False,
        )
        group = autoscaling.AutoScalingGroup(
            self,
            f"{slug}-asg",
            vpc=self.vpc,
            vpc_subnets=self.subnets,
            launch_template=launch_template,
            min_capacity=compute.min_instances,
            max_capacity=compute.max_instances,
            notifications=[autoscaling.NotificationConfiguration(topic=self.alarm_topic)],
        )
        capacity_provider = ecs.AsgCapacityProvider(
            self,
            f"{slug}-capacity",
            auto_scaling_group=group,
            enable_managed_scaling=True,
            enable_managed_termination_protection=True,
            target_capacity_percent=100,
        )
        self.cluster.add_asg_capacity_provider(capacity_provider)
        acknowledge(
            instance_role,
            "AwsSolutions-IAM5[Resource::*]",
            "The ECS container agent's own permissions (ecs:Poll, ecs:StartTelemetrySession, "
            "ecs:RegisterContainerInstance, ecr:GetAuthorizationToken, logs) as CDK grants them for an "
            "ECS capacity provider; several support no resource-level permissions.",
        )
        acknowledge(
            instance_role,
            "AwsSolutions-IAM5[Action::ecs:Submit*]",
            "The ECS container agent reports container, task and attachment state changes "
            "(ecs:SubmitContainerStateChange, ...); this is CDK's grant for ECS container instances.",
        )
        task_definition = ecs.Ec2TaskDefinition(
            self,
            f"{slug}-task",
            network_mode=ecs.NetworkMode.BRIDGE,
            task_role=self._task_role(slug),
        )
        log_group = self._log_group(slug)
        task_definition.add_container(
            "runner",
            image=self._image(cluster, "x86_64"),
            environment=self._container_environment(cluster),
            logging=ecs.LogDrivers.aws_logs(stream_prefix=slug, log_group=log_group),
            stop_timeout=Duration.seconds(STOP_TIMEOUT_SECONDS),
            linux_parameters=ecs.LinuxParameters(self, f"{slug}-linux", init_process_enabled=True),
            gpu_count=compute.gpus_per_task,
            cpu=compute.cpu,
            memory_limit_mib=compute.memory,
        )
        self._acknowledge_execution_role(task_definition)
        self._acknowledge_environment(task_definition)
        service = ecs.Ec2Service(
            self,
            f"{slug}-service",
            cluster=self.cluster,
            task_definition=task_definition,
            desired_count=min(compute.min_instances, compute.task_limit),
            # GPUs are scarce: let a deployment stop an old runner (which drains) before starting anew.
            min_healthy_percent=0,
            max_healthy_percent=100,
            capacity_provider_strategies=[
                ecs.CapacityProviderStrategy(capacity_provider=capacity_provider.capacity_provider_name, weight=1)
            ],
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
        )
        # Warm instances (min_instances) are only useful with a runner on them: one task each.
        scaling = service.auto_scale_task_count(
            min_capacity=min(compute.min_instances, compute.task_limit), max_capacity=compute.task_limit
        )
        self._scale_on_backlog(scaling, slug, service, compute.task_limit)
        return RunnerService(slug, service, log_group)
