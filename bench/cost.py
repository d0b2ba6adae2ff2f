"""The per-task AWS cost model: request counts and item sizes -> list-price dollars.

Prices (us-east-1, shared/reference/aws-facts.md): DynamoDB on demand $0.625 per million write units
(1 KB each, an item's size rounded up) and $0.125 per million read units (4 KB, strongly consistent);
SQS FIFO $0.50 per million requests (per 64 KiB chunk); Lambda $0.20 per million requests plus
$0.0000133334 per GB-s on arm64; HTTP API $1.00 per million requests.

What fronts each request decides its price: the SDK's routes go through the HTTP API; the runners'
hot path (/runner/*) goes to the runner function's URL (IAM-authorized), which has no charge of its own.
Lambda duration is an estimate (stated below), since the local stack's timings are moto's, not AWS's.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

DDB_WRITE_UNIT = 0.625e-6
DDB_READ_UNIT = 0.125e-6
SQS_FIFO_REQUEST = 0.50e-6
LAMBDA_REQUEST = 0.20e-6
LAMBDA_GB_SECOND_ARM = 0.0000133334
HTTP_API_REQUEST = 1.00e-6
LAMBDA_MEMORY_GB = 0.25  # the functions' configured memory
LAMBDA_MS_PER_CALL = 30.0  # estimated duration of a runner call on AWS (a handful of ~5 ms DynamoDB calls)


def attribute_size(value: dict[str, Any]) -> int:  # noqa: PLR0911 - one return per DynamoDB type, as in the sizing rules
    """Bytes DynamoDB bills for one attribute value (its documented sizing rules, approximately)."""
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return len(v.lstrip("-").replace(".", "")) // 2 + 2
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("NS", "SS"):
        return sum(attribute_size({kind[0]: x}) for x in v)
    if kind == "L":
        return 3 + sum(1 + attribute_size(x) for x in v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attribute_size(x) for k, x in v.items())
    return len(str(v))


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def item_sizes(stack: Any) -> dict[tuple[str, str], int]:
    """Size in bytes of every item in the local stack's table now."""
    client = stack.boto_client("dynamodb")
    sizes: dict[tuple[str, str], int] = {}
    for page in client.get_paginator("scan").paginate(TableName=stack.name):
        for item in page["Items"]:
            sizes[(item["PK"]["S"], item["SK"]["S"])] = item_size(item)
    return sizes


def model(
    requests: dict[str, int], writes_per_item: Counter[tuple[str, str]], sizes: dict[tuple[str, str], int], tasks: int
) -> dict[str, Any]:
    """Dollars per million tasks by service, and AWS requests per task (the waiting client's polls apart)."""
    polls = requests.get("api:GET /jobs", 0)  # the benchmark's own waiting: one job read each
    write_units = sum(n * max(1, math.ceil(sizes.get(key, 1024) / 1024)) for key, n in writes_per_item.items())
    reads = requests.get("dynamodb:GetItem", 0) - polls + requests.get("dynamodb:Query", 0)
    batch_gets = requests.get("dynamodb:BatchGetItem", 0)
    sqs = sum(v for k, v in requests.items() if k.startswith("sqs:"))
    runner_calls = sum(v for k, v in requests.items() if k.startswith("api:") and "/runner" in k)
    sdk_calls = sum(v for k, v in requests.items() if k.startswith("api:") and "/runner" not in k) - polls
    lambda_calls = runner_calls + sdk_calls
    breakdown = {
        "dynamodb_writes": write_units * DDB_WRITE_UNIT,
        "dynamodb_reads": (reads + batch_gets) * DDB_READ_UNIT,
        "sqs": sqs * SQS_FIFO_REQUEST,
        "lambda_requests": lambda_calls * LAMBDA_REQUEST,
        "lambda_duration": lambda_calls * LAMBDA_MEMORY_GB * LAMBDA_MS_PER_CALL / 1000 * LAMBDA_GB_SECOND_ARM,
        "http_api": sdk_calls * HTTP_API_REQUEST,
    }
    aws_requests = sum(v for k, v in requests.items() if k.startswith(("dynamodb:", "sqs:", "api:"))) - 2 * polls
    return {
        "usd_per_million": sum(breakdown.values()) / tasks * 1e6,
        "breakdown": {k: v / tasks * 1e6 for k, v in breakdown.items()},
        "requests_per_task": aws_requests / tasks,
        "client_polls_per_task": polls / tasks,
        "write_units_per_task": write_units / tasks,
    }
