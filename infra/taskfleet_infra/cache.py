"""The job caches' bucket: what tasks store with `context.job_cache` (sdk/taskfleet/cache.py,
`AmazonS3Cache`), objects `jobs/<job id>/<group>/.../<key>`.

- SSE-S3 encryption, all public access blocked, bucket-owner-enforced object ownership (no ACLs), a bucket
  policy that refuses requests without TLS (and TLS below 1.2), no versioning (a cache entry's old values
  are worth nothing, and versions would outlive the expiry);
- a lifecycle rule: objects expire `cache_expiry_days` after they were written (0: never), and
  incomplete multipart uploads are aborted after a day;
- runners may read and write objects under `jobs/` only, and list only below it (`grant_runners`);
  the ECS runners get the bucket's name as TASKFLEET_CACHE_BUCKET, which `taskfleet runner` turns into
  `AmazonS3Cache(bucket)`.

No server access logs (cdk-nag AwsSolutions-S1, acknowledged): see the reason below.
"""

from __future__ import annotations

from aws_cdk import CfnElement, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from .config import DeploymentConfig
from .nag import acknowledge

# What `AmazonS3Cache` uses by default (sdk/taskfleet/cache.py DEFAULT_S3_PREFIX): the runners' grants name it.
CACHE_PREFIX = "jobs"
# Parts of multipart uploads a runner died in the middle of: billed until aborted.
ABORT_MULTIPART_DAYS = 1
OBJECT_ACTIONS = ["s3:GetObject", "s3:PutObject"]


class CacheBucket(Construct):
    def __init__(self, scope: Construct, id: str, *, config: DeploymentConfig) -> None:
        super().__init__(scope, id)
        rules = [
            s3.LifecycleRule(
                id="abort-incomplete-uploads",
                abort_incomplete_multipart_upload_after=Duration.days(ABORT_MULTIPART_DAYS),
            )
        ]
        if config.cache_expiry_days:
            rules.append(s3.LifecycleRule(id="expire-cache", expiration=Duration.days(config.cache_expiry_days)))
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=False,
            lifecycle_rules=rules,
            # As the table: kept with deletion protection; a throw-away stack deletes it, which CloudFormation
            # does only once it is empty (docs/deploy.md, "Tearing down").
            removal_policy=RemovalPolicy.RETAIN if config.deletion_protection else RemovalPolicy.DESTROY,
        )
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "The bucket holds transient intermediate task data that expires on its own; every request to it "
            "comes from the deployment's runner roles, whose S3 data events CloudTrail records when enabled. "
            "Server access logs would write about one log object per few cache requests into a second bucket.",
        )

    @property
    def objects_arn(self) -> str:
        return self.bucket.arn_for_objects(f"{CACHE_PREFIX}/*")

    def grant_runners(self, policy: iam.ManagedPolicy, conditions: dict[str, dict[str, str]] | None = None) -> None:
        """Read and write objects under `jobs/`, list below `jobs/` only; nothing else of the bucket."""
        policy.add_statements(
            iam.PolicyStatement(
                sid="JobCacheObjects",
                actions=OBJECT_ACTIONS,
                resources=[self.objects_arn],
                conditions=conditions,
            ),
            iam.PolicyStatement(
                sid="JobCacheList",
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions={
                    **(conditions or {}),
                    "StringLike": {"s3:prefix": [f"{CACHE_PREFIX}/*"]},
                },
            ),
        )
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::<{self._bucket_logical_id()}.Arn>/{CACHE_PREFIX}/*]",
            "Job ids and cache keys are chosen at run time; the grant covers the objects under the cache "
            f"prefix {CACHE_PREFIX}/ of this deployment's cache bucket only, and only reading and writing them.",
        )

    def _bucket_logical_id(self) -> str:
        child = self.bucket.node.default_child
        assert isinstance(child, CfnElement)
        return Stack.of(self).get_logical_id(child)
