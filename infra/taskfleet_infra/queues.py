"""The dead-letter queue of each configured cluster; the cluster's lanes are created at run time.

A cluster has no single queue (docs/architecture.md, "Queue protocol"): a FIFO queue cannot be filtered
on receive, so a runner that shared one with runners of other task classes saw the head of the queue,
hid what it could not run and never reached its own work behind it. Instead every task identifier (name
and version) used in a cluster has its own FIFO queue, its *lane* `<prefix>-<slug>--<key>.fifo`, which
the functions create on first use (a submit, a report, a runner's registration, a redrive) and record
in the table; no template can list them. The stack declares only what is fixed per cluster: its DLQ,
`<prefix>-<slug>-dlq.fifo`, which all its lanes redrive to.

The DLQ's attributes are those the functions give the DLQ of a cluster created at run time
(functions/taskfleet_functions/dal/queues.py `ensure_dlq`): FIFO, retention 14 days (the maximum),
SSE with SQS-managed keys (no KMS cost, no key policy to manage); the stack adds a queue policy denying
non-TLS requests. Lanes (created by the functions) are FIFO in high-throughput mode, with the lease as
visibility timeout, 14 days of retention, SSE, and redrive to this DLQ after 100 receives, which only a
ticket whose claims kept failing reaches (no runner receives a ticket it cannot run); the sweeper drains
the DLQs every minute and sends tickets of live tasks back to their lanes.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .config import DeploymentConfig
from .nag import acknowledge

RETENTION = Duration.days(14)


class ClusterQueues(Construct):
    """`dlqs`: each configured cluster's dead-letter queue, by slug."""

    def __init__(self, scope: Construct, id: str, *, config: DeploymentConfig) -> None:
        super().__init__(scope, id)
        self.dlqs: dict[str, sqs.Queue] = {}
        for cluster in config.clusters:
            slug = cluster.slug
            # Construct id unchanged since the DLQ sat beside a per-cluster queue: the same logical id, so
            # an update keeps the (named) queue instead of replacing it.
            dlq = sqs.Queue(
                self,
                f"{slug}-dlq",
                queue_name=config.dlq_name(slug),
                fifo=True,
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                retention_period=RETENTION,
            )
            acknowledge(
                dlq,
                "AwsSolutions-SQS3",
                "This queue is a dead-letter queue: the RedrivePolicy of every lane of the cluster names it, "
                "but the lanes are created at run time by the functions, so no resource of the template "
                "shows the relation to cdk-nag.",
            )
            self.dlqs[slug] = dlq
