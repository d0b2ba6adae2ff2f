"""Automations on AWS: the schedule group, the role EventBridge Scheduler invokes the automations function
with, the S3 object-created rule for cdk.json's buckets, the triggers' DLQ and its alarm, and the
automations function's own rights (infra/taskfleet_infra/automations.py)."""

from __future__ import annotations

from .conftest import Synth, as_list, function_by_handler, render, role_statements

HANDLER = "taskfleet_functions.handlers.automations.lambda_handler"


def test_one_schedule_group_and_a_scheduler_role_that_may_only_invoke_the_automations_function(synth: Synth) -> None:
    (group,) = synth.of_type("AWS::Scheduler::ScheduleGroup").values()
    assert group["Properties"]["Name"] == f"{synth.config.queue_prefix}-automations"
    function_id, _ = function_by_handler(synth, HANDLER)
    roles = {
        k: r
        for k, r in synth.of_type("AWS::IAM::Role").items()
        if "scheduler.amazonaws.com" in str(r["Properties"]["AssumeRolePolicyDocument"])
    }
    ((role_id, role),) = roles.items()
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert "aws:SourceAccount" in trust["Condition"]["StringEquals"]
    granted = {
        (a, render(r))
        for st in role_statements(synth, role_id)
        for a in as_list(st["Action"])
        for r in as_list(st["Resource"])
    }
    invoke = {r for a, r in granted if a == "lambda:InvokeFunction"}
    assert invoke == {f"<{function_id}.Arn>"}  # the function only: no `:*` (no other version or alias)
    assert {a for a, _ in granted} <= {
        "lambda:InvokeFunction",
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
    }


def test_the_automations_function_manages_schedules_of_its_group_only_and_passes_only_the_scheduler_role(
    synth: Synth,
) -> None:
    _, function = function_by_handler(synth, HANDLER)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    sts = role_statements(synth, role_id)
    schedules = [st for st in sts if any(str(a).startswith("scheduler:") for a in as_list(st["Action"]))]
    assert sorted(a for st in schedules for a in as_list(st["Action"])) == [
        "scheduler:CreateSchedule",
        "scheduler:DeleteSchedule",
    ]
    assert all(
        render(r).endswith(f":schedule/{synth.config.queue_prefix}-automations/*")
        for st in schedules
        for r in as_list(st["Resource"])
    )
    (pass_role,) = [st for st in sts if "iam:PassRole" in as_list(st["Action"])]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    env = function["Properties"]["Environment"]["Variables"]
    assert env["TASKFLEET_SCHEDULER_GROUP"] == f"{synth.config.queue_prefix}-automations"
    assert env["TASKFLEET_AUTOMATION_BUCKETS"] == ",".join(synth.config.automation_buckets)


def test_object_created_events_of_the_configured_buckets_reach_the_function_and_failures_go_to_the_dlq(
    full_synth: Synth,
) -> None:
    s = full_synth
    rules = [r for r in s.of_type("AWS::Events::Rule").values() if "EventPattern" in r["Properties"]]
    (rule,) = rules
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == ["tfci-uploads", "tfci-raw.data"]
    (target,) = rule["Properties"]["Targets"]
    function_id, _ = function_by_handler(s, HANDLER)
    assert render(target["Arn"]) == f"<{function_id}.Arn>"
    dlq_ids = [
        k for k, q in s.of_type("AWS::SQS::Queue").items() if q["Properties"].get("QueueName") == "tfci-automations-dlq"
    ]
    assert render(target["DeadLetterConfig"]["Arn"]) == f"<{dlq_ids[0]}.Arn>"
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 8


def test_a_deployment_without_buckets_has_no_s3_rule_and_every_deployment_alarms_on_the_triggers_dlq(
    synth: Synth,
) -> None:
    rules = [r for r in synth.of_type("AWS::Events::Rule").values() if "EventPattern" in r["Properties"]]
    assert len(rules) == (1 if synth.config.automation_buckets else 0)
    dlq_id = next(
        k
        for k, q in synth.of_type("AWS::SQS::Queue").items()
        if str(q["Properties"].get("QueueName")).endswith("-automations-dlq")
    )
    alarms = [
        a
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
        if any(d.get("Value") == {"Fn::GetAtt": [dlq_id, "QueueName"]} for d in a["Properties"].get("Dimensions", []))
    ]
    assert len(alarms) == 1 and alarms[0]["Properties"]["Threshold"] == 1
    assert alarms[0]["Properties"]["AlarmActions"]  # it notifies the alarm topic
