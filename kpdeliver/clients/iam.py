"""A client's least-privilege S3 policy (IAM JSON): its own prefixes only (`kpdeliver iam`)."""

from __future__ import annotations

from kpdeliver.config import ClientConfig, ConfigError
from kpdeliver.preflight import STAGING
from kpdeliver.storage import join_key


def _s3_parts(location: str, what: str) -> tuple[str, str]:
    if not location.startswith("s3://"):
        raise ConfigError(
            f"field '{what}': {location} is not on S3; an IAM policy covers s3:// locations only"
        )
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    return bucket, "/".join(p for p in prefix.split("/") if p)


def iam_policy(config: ClientConfig) -> dict:
    """The least S3 access one client's runs need, and nothing outside its prefixes: its source read
    (plus `tasks/` written, for task packages), its release and staging folders read and written
    (deleting only in staging: a published release is immutable). Listing is allowed on these
    prefixes only (s3:prefix condition); multipart uploads (16 MiB and more) can be aborted."""
    src_bucket, src = _s3_parts(config.source, "source")
    rel_bucket, rel = _s3_parts(config.releases, "releases")
    if not src:
        raise ConfigError(
            f"field 'source': {config.source} is a whole bucket; give the client's batch prefix "
            "inside it, or its policy would reach other clients' batches"
        )
    client = config.client
    releases = join_key(rel, client)
    staging = join_key(rel, STAGING, client)

    def objects(bucket: str, *prefixes: str) -> list[str]:
        return [f"arn:aws:s3:::{bucket}/{p}/*" for p in prefixes]

    def listing(sid: str, bucket: str, *prefixes: str) -> dict:
        return {
            "Sid": sid,
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{bucket}"],
            "Condition": {"StringLike": {"s3:prefix": [form for p in prefixes for form in (p, f"{p}/*")]}},
        }

    multipart = ["s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            listing("ListOwnSource", src_bucket, src),
            {
                "Sid": "ReadOwnSource",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": objects(src_bucket, src),
            },
            {
                "Sid": "WriteOwnTaskPackages",
                "Effect": "Allow",
                "Action": ["s3:PutObject", *multipart],
                "Resource": objects(src_bucket, join_key(src, "tasks")),
            },
            listing("ListOwnReleases", rel_bucket, releases, staging),
            {
                "Sid": "ReadWriteOwnReleases",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", *multipart],
                "Resource": objects(rel_bucket, releases, staging),
            },
            {
                "Sid": "CleanOwnStagingOnly",
                "Effect": "Allow",
                "Action": ["s3:DeleteObject"],
                "Resource": objects(rel_bucket, staging),
            },
        ],
    }
