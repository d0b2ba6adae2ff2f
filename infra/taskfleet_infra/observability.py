"""Dashboard and alarms.

Custom metrics come from the functions through Powertools (embedded metric format, no PutMetricData
call) in the namespace `metrics_namespace`, dimension `service=<deployment name>`:
JobsSubmitted, JobsCompleted, JobsFailed, TasksComputed, TasksFailed, LeasesExpired; and from the
sweeper, every minute, `Backlog` with the single dimension `cluster=<slug>`: the tickets queued, delayed
or in flight over all of a cluster's lanes (the queues, one per task identifier, that the functions
create at run time; no template can name them, so per-cluster queue charts and alarms read this metric
and the cluster's DLQ, the one queue per cluster the stack declares).

Alarms (all notify the alarm topic):
- DLQ depth, per cluster: the dead-letter queue stayed non-empty for 15 minutes. The sweeper drains DLQs
  every minute, so a ticket that stays there means the sweeper is failing.
- Stuck leases: runners lost leases (LeasesExpired) in 2 of the last 3 five-minute windows: runners are
  dying mid-task (out of memory, Spot reclaims, crashes) again and again.
- Handler errors, per function: any unhandled error or timeout; API 5xx answers (handled errors), and
  the runner URLs' (all clusters' aliases of the runner function) where they exist.
There is no alarm on the age of a cluster's oldest ticket: SQS publishes ticket ages per lane, and the
lanes appear at run time (`max_ticket_age_seconds` is accepted and unused until the sweeper publishes an
age per cluster).
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from .api import Api
from .config import DeploymentConfig
from .ecs_runners import EcsRunners, backlog_metric
from .functions import OrchestratorFunctions
from .nag import acknowledge
from .queues import ClusterQueues

FIVE_MINUTES = Duration.minutes(5)
ONE_MINUTE = Duration.minutes(1)
JOB_METRICS = ("JobsSubmitted", "JobsCompleted", "JobsFailed")
TASK_METRICS = ("TasksComputed", "TasksFailed", "LeasesExpired")


class AlarmTopic(Construct):
    def __init__(self, scope: Construct, id: str, *, config: DeploymentConfig) -> None:
        super().__init__(scope, id)
        self.topic = sns.Topic(self, "Topic", display_name=f"taskfleet {config.name} alarms", enforce_ssl=True)
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        acknowledge(
            self.topic,
            "AwsSolutions-SNS2",
            "The topic carries CloudWatch alarm and Auto Scaling notifications only (no user data). "
            "CloudWatch cannot publish to a topic encrypted with the AWS-managed SNS key, and a "
            "customer-managed key would cost money at idle for no confidentiality gain.",
        )


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: DeploymentConfig,
        topic: sns.ITopic,
        functions: OrchestratorFunctions,
        api: Api,
        queues: ClusterQueues,
        runners: EcsRunners | None,
    ) -> None:
        super().__init__(scope, id)
        self.config = config
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        action = cw_actions.SnsAction(topic)

        def alarm(
            name: str,
            metric: cloudwatch.IMetric,
            *,
            threshold: float,
            periods: int = 1,
            datapoints: int | None = None,
            description: str,
        ) -> cloudwatch.Alarm:
            created = cloudwatch.Alarm(
                self,
                name,
                metric=metric,
                threshold=threshold,
                evaluation_periods=periods,
                datapoints_to_alarm=datapoints,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
            created.add_alarm_action(action)
            created.add_ok_action(action)
            self.alarms[name] = created
            return created

        # --- alarms --------------------------------------------------------------------------------
        for slug, dlq in queues.dlqs.items():
            alarm(
                f"{slug}-dlq-depth",
                dlq.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES, statistic="Minimum"),
                threshold=1,
                periods=3,
                description=f"Cluster '{slug}': tickets stayed in the dead-letter queue for 15 minutes "
                "(the sweeper is not draining it).",
            )
        alarm(
            "leases-expired",
            self.custom("LeasesExpired", FIVE_MINUTES),
            threshold=1,
            periods=3,
            datapoints=2,
            description="Runners lost task leases in 2 of the last 3 five-minute windows (runners dying).",
        )
        for name, fn in functions.functions.items():
            alarm(
                f"{name}-errors",
                fn.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
                threshold=1,
                description=f"The {name} function failed (unhandled error or timeout).",
            )
        alarm(
            "api-5xx",
            self._api_metric(api, "5xx", FIVE_MINUTES),
            threshold=5,
            description="The API answered 5xx at least 5 times in 5 minutes.",
        )
        if functions.runner_urls:
            # Lambda aggregates a function's metrics over its versions and aliases under the FunctionName
            # dimension alone: this one alarm watches every cluster's runner URL.
            alarm(
                "runner-url-5xx",
                self._url_metric(functions.runner, "Url5xxCount", FIVE_MINUTES),
                threshold=5,
                description="The runner URLs answered 5xx at least 5 times in 5 minutes.",
            )

        # --- dashboard -----------------------------------------------------------------------------
        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=config.name, default_interval=Duration.hours(3)
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Jobs", width=8, left=[self.custom(m, ONE_MINUTE) for m in JOB_METRICS]),
            cloudwatch.GraphWidget(title="Tasks", width=8, left=[self.custom(m, ONE_MINUTE) for m in TASK_METRICS]),
            cloudwatch.GraphWidget(
                title="API requests and errors",
                width=8,
                left=[self._api_metric(api, "Count", ONE_MINUTE)],
                right=[self._api_metric(api, "4xx", ONE_MINUTE), self._api_metric(api, "5xx", ONE_MINUTE)],
            ),
        )
        for slug, dlq in queues.dlqs.items():
            widgets: list[cloudwatch.IWidget] = [
                cloudwatch.GraphWidget(
                    title=f"{slug}: tickets over all lanes (queued + in flight), dead-lettered",
                    width=8,
                    left=[backlog_metric(config, slug)],
                    right=[
                        dlq.metric_approximate_number_of_messages_visible(
                            period=ONE_MINUTE, statistic="Maximum", label="dead-lettered"
                        )
                    ],
                ),
            ]
            if runners is not None and slug in runners.services:
                service = runners.services[slug].service
                widgets.append(
                    cloudwatch.GraphWidget(
                        title=f"{slug}: runners (ECS RunningTaskCount)",
                        width=8,
                        left=[
                            cloudwatch.Metric(
                                namespace="ECS/ContainerInsights",
                                metric_name="RunningTaskCount",
                                dimensions_map={
                                    "ClusterName": runners.cluster.cluster_name,
                                    "ServiceName": service.service_name,
                                },
                                period=ONE_MINUTE,
                                statistic="Maximum",
                                label="running",
                            )
                        ],
                    )
                )
            self.dashboard.add_widgets(*widgets)
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Lambda errors",
                width=8,
                left=[
                    fn.metric_errors(period=ONE_MINUTE, statistic="Sum", label=name)
                    for name, fn in functions.functions.items()
                ],
            ),
            cloudwatch.GraphWidget(
                title="Lambda duration p99 (ms)",
                width=8,
                left=[
                    fn.metric_duration(period=ONE_MINUTE, statistic="p99", label=name)
                    for name, fn in functions.functions.items()
                ],
            ),
            cloudwatch.GraphWidget(
                title="Lambda throttles and concurrency",
                width=8,
                left=[
                    fn.metric_throttles(period=ONE_MINUTE, statistic="Sum", label=name)
                    for name, fn in functions.functions.items()
                ],
                right=[
                    fn.metric("ConcurrentExecutions", period=ONE_MINUTE, statistic="Maximum", label=name)
                    for name, fn in functions.functions.items()
                ],
            ),
        )
        self.dashboard_url = (
            f"https://console.aws.amazon.com/cloudwatch/home?region={Stack.of(self).region}"
            f"#dashboards:name={config.name}"
        )

    def custom(self, name: str, period: Duration) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=self.config.metrics_namespace,
            metric_name=name,
            dimensions_map={"service": self.config.name},
            period=period,
            statistic="Sum",
            label=name,
        )

    @staticmethod
    def _api_metric(api: Api, name: str, period: Duration) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/ApiGateway",
            metric_name=name,
            dimensions_map={"ApiId": api.http_api.api_id},
            period=period,
            statistic="Sum",
            label=name,
        )

    @staticmethod
    def _url_metric(fn: lambda_.IFunction, name: str, period: Duration) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/Lambda",
            metric_name=name,
            dimensions_map={"FunctionName": fn.function_name},
            period=period,
            statistic="Sum",
            label=name,
        )
