"""The taskfleet stack: wires one construct per capability and declares the outputs."""

from __future__ import annotations

import re
from typing import Any

from aws_cdk import CfnOutput, Duration, Stack, Tags
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from constructs import Construct

from .api import Api
from .api_access import ApiAccess
from .automations import AutomationTriggers
from .cache import CacheBucket
from .config import DeploymentConfig
from .ecs_runners import EcsRunners
from .functions import OrchestratorFunctions
from .observability import AlarmTopic, Observability
from .queues import ClusterQueues
from .runner_access import TAG_PRESENT, RunnerAccess
from .state import StateTable


class TaskfleetStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: DeploymentConfig, **kwargs: Any) -> None:
        super().__init__(scope, id, description=f"taskfleet workflow orchestrator ({config.name})", **kwargs)
        Tags.of(self).add("taskfleet:deployment", config.name)
        self.config = config
        self.state = StateTable(self, "State", deletion_protection=config.deletion_protection)
        self.queues = ClusterQueues(self, "Queues", config=config)
        self.functions = OrchestratorFunctions(self, "Functions", config=config, state=self.state)
        self.api = Api(self, "Api", config=config, functions=self.functions)
        self.sweeper_schedule = events.Rule(
            self,
            "SweeperSchedule",
            description="taskfleet sweeper: repair leases and tickets every minute",
            schedule=events.Schedule.rate(Duration.minutes(1)),
            # No retries: the next sweep is at most a minute away and does the same work.
            targets=[
                targets.LambdaFunction(self.functions.sweeper, retry_attempts=0, max_event_age=Duration.minutes(1))
            ],
        )
        self.access = RunnerAccess(self, "RunnerAccess", config=config, api=self.api, functions=self.functions)
        self.cache = CacheBucket(self, "Cache", config=config)
        for policy in self.access.policies.values():
            self.cache.grant_runners(policy)
        self.cache.grant_runners(self.access.runtime_policy, TAG_PRESENT)
        self.api_access = ApiAccess(self, "ApiAccess", config=config, api=self.api)
        self.alarm_topic = AlarmTopic(self, "Alarms", config=config)
        self.runners = None
        if any(c.runs_on_ecs for c in config.clusters):
            self.runners = EcsRunners(
                self,
                "Runners",
                config=config,
                api_url=self.api.url,
                access=self.access,
                alarm_topic=self.alarm_topic.topic,
                cache_bucket=self.cache.bucket.bucket_name,
            )
        self.observability = Observability(
            self,
            "Observability",
            config=config,
            topic=self.alarm_topic.topic,
            functions=self.functions,
            api=self.api,
            queues=self.queues,
            runners=self.runners,
        )
        self.automations = AutomationTriggers(
            self, "Automations", config=config, functions=self.functions, topic=self.alarm_topic.topic
        )
        self.observability.dashboard.add_widgets(self.automations.dashboard_widget())
        self._outputs()

    def _outputs(self) -> None:
        CfnOutput(self, "ApiUrl", value=self.api.url, description="TASKFLEET_URL for clients and runners")
        for kind, policy in self.api_access.policies.items():
            CfnOutput(
                self,
                f"{_camel(kind)}PolicyArn",
                value=policy.managed_policy_arn,
                description=f"IAM managed policy for API {kind}s (docs/deploy.md, 'Who may call what')",
            )
        CfnOutput(
            self,
            "RuntimeRunnerPolicyArn",
            value=self.access.runtime_policy.managed_policy_arn,
            description="IAM managed policy for runners of clusters created at run time: tag the runner's role "
            "or user taskfleet-cluster=<slug>",
        )
        CfnOutput(self, "TableName", value=self.state.table.table_name)
        CfnOutput(
            self,
            "CacheBucketName",
            value=self.cache.bucket.bucket_name,
            description="the job caches' bucket: AmazonS3Cache(<it>), TASKFLEET_CACHE_BUCKET for `taskfleet runner`",
        )
        CfnOutput(self, "DashboardUrl", value=self.observability.dashboard_url)
        CfnOutput(self, "AlarmTopicArn", value=self.alarm_topic.topic.topic_arn)
        # A cluster's lanes (its queues, one per task identifier) are created at run time: no output names them.
        for slug, dlq in self.queues.dlqs.items():
            key = _camel(slug)
            CfnOutput(self, f"DlqUrl{key}", value=dlq.queue_url, description=f"cluster '{slug}' DLQ")
            if slug in self.functions.runner_urls:
                CfnOutput(
                    self,
                    f"RunnerUrl{key}",
                    value=self.functions.runner_urls[slug].url,
                    description=f"cluster '{slug}': its runners' URL (they learn it from GET /clusters/{slug})",
                )
            CfnOutput(
                self,
                f"RunnerPolicyArn{key}",
                value=self.access.policies[slug].managed_policy_arn,
                description=f"IAM managed policy for runners of cluster '{slug}'",
            )
        for slug, role in self.access.roles.items():
            CfnOutput(
                self,
                f"OnPremRoleArn{_camel(slug)}",
                value=role.role_arn,
                description=f"role for on-prem runners of cluster '{slug}'",
            )
        for slug, user in self.access.users.items():
            CfnOutput(
                self,
                f"OnPremUserName{_camel(slug)}",
                value=user.user_name,
                description=f"IAM user for on-prem runners of cluster '{slug}' (create its access key)",
            )
        if self.runners is not None:
            CfnOutput(self, "EcsClusterName", value=self.runners.cluster.cluster_name)


def _camel(slug: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", slug) if part)
