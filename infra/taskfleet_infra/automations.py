"""Automations on AWS (docs/architecture.md, "Automations"): the EventBridge Scheduler group the
automations function creates one schedule per cron schedule in, the role the schedules invoke it with,
an EventBridge rule for object-created events of the buckets named in cdk.json, and the dead-letter queue
(with an alarm) where a firing goes that could not be delivered after its retries."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .config import DeploymentConfig
from .functions import OrchestratorFunctions
from .nag import acknowledge


class AutomationTriggers(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: DeploymentConfig,
        functions: OrchestratorFunctions,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        function = functions.automations
        group_name = f"{config.queue_prefix}-automations"  # at most 35 characters (a group name: 64)
        self.group = scheduler.CfnScheduleGroup(self, "ScheduleGroup", name=group_name)
        self.dlq = sqs.Queue(
            self,
            "TriggerDlq",
            queue_name=f"{config.queue_prefix}-automations-dlq",  # standard, not FIFO: no lane or DLQ pattern
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(self.dlq, "AwsSolutions-SQS3", "This queue is itself the dead-letter queue of the triggers.")
        # EventBridge Scheduler assumes this role to invoke the automations function (for this account only).
        self.role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description="taskfleet automations: EventBridge Scheduler invokes the automations function",
        )
        # the function itself (the schedules target it unqualified): not grant_invoke, which adds `:*`
        self.role.add_to_policy(
            iam.PolicyStatement(sid="Invoke", actions=["lambda:InvokeFunction"], resources=[function.function_arn])
        )
        self.dlq.grant_send_messages(self.role)
        schedules = stack.format_arn(service="scheduler", resource="schedule", resource_name=f"{group_name}/*")
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="Schedules", actions=["scheduler:CreateSchedule", "scheduler:DeleteSchedule"], resources=[schedules]
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="PassSchedulerRole",
                actions=["iam:PassRole"],
                resources=[self.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
            )
        )
        acknowledge(
            function.role or function,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/{group_name}/*]",
            "Automations are created through the API, so their schedules are named at run time; the pattern "
            "covers this deployment's schedule group only.",
        )
        for key, value in (
            ("TASKFLEET_SCHEDULER_GROUP", group_name),
            ("TASKFLEET_SCHEDULER_ROLE_ARN", self.role.role_arn),
            ("TASKFLEET_TRIGGER_DLQ_ARN", self.dlq.queue_arn),
            ("TASKFLEET_AUTOMATION_BUCKETS", ",".join(config.automation_buckets)),
        ):
            function.add_environment(key, value)
        # Schedules and the S3 rule invoke the function asynchronously: a firing whose handling fails (after
        # Lambda's own retries) goes to the same DLQ, so the alarm sees it (a target DLQ catches only
        # deliveries that fail).
        function.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.dlq), retry_attempts=2, max_event_age=Duration.hours(6)
        )
        self.rule: events.Rule | None = None
        if config.automation_buckets:
            self.rule = events.Rule(
                self,
                "ObjectCreated",
                description="taskfleet automations: objects created in the buckets of automation_buckets",
                event_pattern=events.EventPattern(
                    source=["aws.s3"],
                    detail_type=["Object Created"],
                    detail={"bucket": {"name": list(config.automation_buckets)}},
                ),
                targets=[
                    targets.LambdaFunction(
                        function, dead_letter_queue=self.dlq, retry_attempts=8, max_event_age=Duration.hours(2)
                    )
                ],
            )
        self.alarm = cloudwatch.Alarm(
            self,
            "TriggerDlqDepth",
            metric=self.dlq.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description="An automation's firing (a schedule or an object-created event) could not be "
            "delivered to the automations function after its retries: it is in the triggers DLQ.",
        )
        self.config = config
        action = cw_actions.SnsAction(topic)
        self.alarm.add_alarm_action(action)
        self.alarm.add_ok_action(action)

    def dashboard_widget(self) -> cloudwatch.IWidget:
        return cloudwatch.GraphWidget(
            title="automations: firings dead-lettered (not delivered after retries)",
            width=8,
            left=[
                self.dlq.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(1), statistic="Maximum", label="dead-lettered"
                )
            ],
        )
