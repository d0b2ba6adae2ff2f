"""Cron automations' schedules: EventBridge Scheduler on AWS; on the local stack, nothing here (the local
stack fires schedules itself, taskfleet_local)."""

from __future__ import annotations

import contextlib
import json
from typing import Any, Protocol


class Schedules(Protocol):
    def create(self, name: str, expression: str, zone: str, payload: dict[str, Any]) -> None: ...

    def delete(self, name: str) -> None: ...


class NoSchedules:
    """The local stack: schedules live only in the automation items, and the local stack fires them."""

    def create(self, name: str, expression: str, zone: str, payload: dict[str, Any]) -> None:
        pass

    def delete(self, name: str) -> None:
        pass


class EventBridgeSchedules:
    """One EventBridge Scheduler schedule per cron schedule, in the stack's schedule group. Each invokes the
    automations function with `payload` plus the scheduled time; a delivery that fails after its retries
    goes to the triggers DLQ (with an alarm). The target is the automations function itself: its ARN comes
    from its own Lambda context (an environment variable naming it would make the template circular)."""

    def __init__(self, client: Any, *, group: str, target_arn: str | None, role_arn: str, dlq_arn: str) -> None:
        self.client, self.group, self.target_arn, self.role_arn, self.dlq_arn = (
            client,
            group,
            target_arn,
            role_arn,
            dlq_arn,
        )

    def create(self, name: str, expression: str, zone: str, payload: dict[str, Any]) -> None:
        if not self.target_arn:
            raise RuntimeError("the automations function's ARN is not known yet (set from the Lambda context)")
        event = {**payload, "scheduled_time": "<aws.scheduler.scheduled-time>"}
        self.client.create_schedule(
            Name=name,
            GroupName=self.group,
            ScheduleExpression=expression,
            ScheduleExpressionTimezone=zone,
            FlexibleTimeWindow={"Mode": "OFF"},
            State="ENABLED",
            Target={
                "Arn": self.target_arn,
                "RoleArn": self.role_arn,
                "Input": json.dumps(event),
                "DeadLetterConfig": {"Arn": self.dlq_arn},
                "RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 10},
            },
        )

    def delete(self, name: str) -> None:
        with contextlib.suppress(self.client.exceptions.ResourceNotFoundException):
            self.client.delete_schedule(Name=name, GroupName=self.group)
