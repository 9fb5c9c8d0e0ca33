"""What it takes to build an S3 client (endpoint, region, profile, retries, multipart sizes): plain
settings that hold no secret and import no boto3, so stores pickle safely."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from kpdeliver.storage.base import StorageError

MiB = 1024 * 1024
MAX_SINGLE_COPY = 5 * 1024 * MiB  # CopyObject's limit; larger objects are copied part by part
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 presigned URLs live at most 7 days


@dataclass(frozen=True)
class S3Settings:
    """What it takes to rebuild a client. Holds no secret, so stores pickle safely."""

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    retries_mode: str = field(default_factory=lambda: os.environ.get("AWS_RETRY_MODE", "standard"))
    max_attempts: int = field(default_factory=lambda: int(os.environ.get("AWS_MAX_ATTEMPTS", "8")))
    multipart_threshold: int = 16 * MiB
    multipart_chunksize: int = 16 * MiB
    copy_threshold: int = MAX_SINGLE_COPY

    def __post_init__(self) -> None:
        if self.retries_mode not in ("standard", "adaptive"):
            raise StorageError(f"retries mode must be standard or adaptive, not {self.retries_mode!r}")
        if self.multipart_chunksize < 5 * MiB:
            raise StorageError("S3 multipart parts must be at least 5 MiB")


def env_endpoint() -> str | None:
    """The S3 endpoint the environment names (AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL), if any."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
