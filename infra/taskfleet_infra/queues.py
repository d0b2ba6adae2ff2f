"""One SQS FIFO queue (and its dead-letter queue) per configured cluster.

Queues of clusters created at run time (`POST /clusters`) are created by the clusters function itself
(`sqs:CreateQueue` on the `<prefix>-*` names) with the same attributes; see functions/.../dal/queues.py.

The attributes, and why:
- FIFO, high-throughput mode (DeduplicationScope=messageGroup, FifoThroughputLimit=perMessageGroupId):
  300 requests/s per action otherwise; the orchestrator uses one message group per task.
- ContentBasedDeduplication off: the orchestrator sets `task_id:attempt` as the deduplication id.
- Visibility timeout = the lease (default 60 s): a claimed ticket stays hidden as long as the lease is
  alive (heartbeats extend both); if the runner dies, the ticket reappears when the lease expires, so the
  next receiver can take the task over at once.
- Retention 14 days (the maximum): a cluster whose runners are all off (an on-prem cluster over a long
  weekend) keeps its tickets.
- DLQ after 100 receives: a runner that cannot run a ticket (another task set shares the cluster) hides it
  for about 2 s, so a runner that can run it gets it soon, and while it sees only such tickets it backs off
  its own polling (0.5 s, 1 s, ... up to 20 s); see docs/architecture.md, "Queue protocol". A ticket may
  thus be received many times before the right runner sees it; only a ticket received 100 times lands in
  the DLQ, which the sweeper drains back (tickets of live tasks are sent again).
- SSE with SQS-managed keys (no KMS cost, no key policy to manage) and a queue policy denying non-TLS
  requests.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .config import DeploymentConfig

RETENTION = Duration.days(14)
MAX_RECEIVE_COUNT = 100


@dataclass(frozen=True)
class ClusterQueue:
    slug: str
    queue: sqs.Queue
    dlq: sqs.Queue


class ClusterQueues(Construct):
    def __init__(self, scope: Construct, id: str, *, config: DeploymentConfig) -> None:
        super().__init__(scope, id)
        self.by_slug: dict[str, ClusterQueue] = {}
        for cluster in config.clusters:
            slug = cluster.slug
            dlq = sqs.Queue(
                self,
                f"{slug}-dlq",
                queue_name=config.dlq_name(slug),
                fifo=True,
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                retention_period=RETENTION,
            )
            queue = sqs.Queue(
                self,
                slug,
                queue_name=config.queue_name(slug),
                fifo=True,
                content_based_deduplication=False,
                deduplication_scope=sqs.DeduplicationScope.MESSAGE_GROUP,
                fifo_throughput_limit=sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
                visibility_timeout=Duration.seconds(config.lease_seconds),
                retention_period=RETENTION,
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=MAX_RECEIVE_COUNT),
            )
            self.by_slug[slug] = ClusterQueue(slug, queue, dlq)
