"""SQS FIFO adapter: lanes (a queue per task identifier in a cluster) and each cluster's DLQ, created on
demand; ticket sends in batches of 10."""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# Retention: the maximum, so a ticket outlives any realistic backlog. Redrive after 100 receives: no
# runner receives a ticket it cannot run (lanes), so only a ticket whose claims kept failing gets there;
# the sweeper sends DLQ'd tickets of live tasks back (docs/architecture.md, "Queue protocol").
RETENTION_SECONDS = 14 * 24 * 3600
MAX_RECEIVE_COUNT = 100
_SEND_RETRIES = 6
MAX_VISIBILITY = 12 * 3600  # SQS's longest visibility timeout


@dataclass(frozen=True)
class Ticket:
    job_id: str
    task_id: str
    name: str
    version: str
    attempt: int
    # (parent id, parent attempt, index) of a subtask whose item is created by its first claim
    # (docs/architecture.md, "Deferred subtasks"); runners pass it back with the claim
    ref: tuple[str, int, int] | None = None

    def body(self) -> str:
        data: dict[str, Any] = {
            "job": self.job_id,
            "task": self.task_id,
            "name": self.name,
            "version": self.version,
            "attempt": self.attempt,
        }
        if self.ref is not None:
            data["ref"] = list(self.ref)
        return json.dumps(data, separators=(",", ":"))

    @staticmethod
    def parse(body: str) -> Ticket:
        data = json.loads(body)
        ref = data.get("ref")
        return Ticket(
            str(data["job"]),
            str(data["task"]),
            str(data["name"]),
            str(data["version"]),
            int(data.get("attempt", 0)),
            (str(ref[0]), int(ref[1]), int(ref[2])) if ref else None,
        )


def tls_only_policy(queue_arn: str) -> str:
    """A queue policy that refuses every request not made over TLS (as the stack's queues have)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": {"AWS": "*"},
                    "Action": "sqs:*",
                    "Resource": queue_arn,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


class Queues:
    def __init__(self, client: Any, *, visibility_seconds: int) -> None:
        self.client = client
        self.visibility_seconds = visibility_seconds

    def ensure_dlq(self, dlq_name: str) -> str:
        """Create the cluster's DLQ if missing (all its lanes share it); return its URL."""
        return self._get_or_create(
            dlq_name,
            {"FifoQueue": "true", "MessageRetentionPeriod": str(RETENTION_SECONDS), "SqsManagedSseEnabled": "true"},
        )

    def ensure_lane(self, queue_name: str, dlq_url: str, tags: dict[str, str]) -> str:
        """Create a lane (a task identifier's queue in a cluster) if missing; return its URL."""
        dlq_arn = self.client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        lane_arn = f"{dlq_arn.rsplit(':', 1)[0]}:{queue_name}"
        return self._get_or_create(
            queue_name,
            {
                "Policy": tls_only_policy(lane_arn),
                "FifoQueue": "true",
                "ContentBasedDeduplication": "false",
                "DeduplicationScope": "messageGroup",
                "FifoThroughputLimit": "perMessageGroupId",
                "VisibilityTimeout": str(self.visibility_seconds),
                "MessageRetentionPeriod": str(RETENTION_SECONDS),
                "SqsManagedSseEnabled": "true",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}),
            },
            tags,
        )

    def backlog(self, queue_url: str) -> int:
        """Tickets waiting or in flight in one queue (SQS's approximate counts)."""
        attributes = self.client.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(v) for v in attributes.values())

    def _get_or_create(self, name: str, attributes: dict[str, str], tags: dict[str, str] | None = None) -> str:
        try:
            return str(self.client.get_queue_url(QueueName=name)["QueueUrl"])
        except self.client.exceptions.QueueDoesNotExist:
            extra = {"tags": tags} if tags else {}
            return str(self.client.create_queue(QueueName=name, Attributes=attributes, **extra)["QueueUrl"])

    def delete(self, *urls: str) -> None:
        for url in urls:
            with contextlib.suppress(self.client.exceptions.QueueDoesNotExist):
                self.client.delete_queue(QueueUrl=url)

    def send(self, queue_url: str, tickets: Iterable[Ticket], *, dedup_suffix: str = "") -> int:
        """Send tickets, 10 per SendMessageBatch. Group = task (never serializes a job); dedup id =
        task:attempt (SQS drops a re-send within 5 minutes)."""
        batch: list[dict[str, str]] = []
        sent = 0
        for ticket in tickets:
            batch.append(
                {
                    "Id": str(len(batch)),
                    "MessageBody": ticket.body(),
                    "MessageGroupId": ticket.task_id,
                    "MessageDeduplicationId": f"{ticket.task_id}:{ticket.attempt}{dedup_suffix}",
                }
            )
            if len(batch) == 10:
                sent += self._send_batch(queue_url, batch)
                batch = []
        if batch:
            sent += self._send_batch(queue_url, batch)
        return sent

    def _send_batch(self, queue_url: str, entries: list[dict[str, str]]) -> int:
        for attempt in range(_SEND_RETRIES + 1):
            resp = self.client.send_message_batch(QueueUrl=queue_url, Entries=entries)
            failed = resp.get("Failed") or []
            if not failed:
                return len(entries)
            retry_ids = {f["Id"] for f in failed if not f.get("SenderFault")}
            if len(retry_ids) < len(failed) or attempt == _SEND_RETRIES:
                raise RuntimeError(f"SendMessageBatch failed: {failed[:3]}")
            entries = [e for e in entries if e["Id"] in retry_ids]
            time.sleep(min(1.0, 0.02 * 2**attempt) * random.random())
        return 0

    def receive(
        self, queue_url: str, *, max_messages: int = 10, wait: int = 0, visibility: int | None = None
    ) -> list[dict[str, Any]]:
        """`visibility`: hide what is received this long (else the queue's visibility timeout, the lease)."""
        options: dict[str, Any] = {}
        if visibility is not None:
            options["VisibilityTimeout"] = max(0, min(int(visibility), MAX_VISIBILITY))
        resp = self.client.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
            **options,
        )
        return list(resp.get("Messages", []))

    def change_visibility(self, queue_url: str, receipt: str, seconds: int) -> None:
        """Hide a received ticket this long from now (0: visible again at once); SQS allows at most 12 hours."""
        self.client.change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=max(0, min(int(seconds), MAX_VISIBILITY))
        )

    def delete_messages(self, queue_url: str, receipts: list[str]) -> None:
        for start in range(0, len(receipts), 10):
            chunk = receipts[start : start + 10]
            self.client.delete_message_batch(
                QueueUrl=queue_url, Entries=[{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(chunk)]
            )
