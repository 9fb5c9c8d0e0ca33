"""Where Label Studio reads a batch's images from: the push's storage part.

A local batch is served by a local-files import storage: the server's LOCAL_FILES_DOCUMENT_ROOT
holds the batch folder, and each task references `/data/local-files/?d=<batch>/images/<file>`
relative to it. A batch on `s3://bucket/prefix` is read through an S3 import storage on
`prefix/images`: each task references `s3://bucket/prefix/images/<file>`, which the server turns
into a presigned URL (or proxies) when an annotator opens the task. Its credentials are read from
the environment variables `tool.s3` names, sent to the server when the storage is created, and
never written into a file or a message.

Either storage is connected, not synced: kpdeliver imports the tasks itself, each carrying the
batch file name (`file_name`), so pull, collect and the task links work the same for both.

Before any project is made, `check` asks the server to validate the storage (the validate
endpoints create nothing): a local batch outside the server's document root, a bucket the server
cannot reach, or missing credentials stop the push with one sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote, urlsplit

from kpdeliver.config import ClientConfig
from kpdeliver.tool_settings import ToolS3
from kpdeliver.tools.label_studio.client import LabelStudioClient, ToolError

_SERVER_ROOT = re.compile(r'LOCAL_FILES_DOCUMENT_ROOT="(.*?)"')


def local_files_ref(file_name: str, *, batch_dir: Path, document_root: Path) -> str:
    """The task data URL Label Studio serves a batch image under."""
    rel = (batch_dir / "images" / file_name).relative_to(document_root).as_posix()
    return f"/data/local-files/?d={quote(rel, safe='/')}"


def batch_dirs(config: ClientConfig) -> tuple[Path, Path]:
    """(batch folder, document root) of a local batch."""
    if "://" in config.source:
        raise ToolError(f"source {config.source} is not a local folder")
    batch = Path(config.source).resolve()
    root = (
        Path(config.tool.document_root).resolve()
        if config.tool and config.tool.document_root
        else batch.parent
    )
    if not batch.is_relative_to(root):
        raise ToolError(
            f"batch folder {batch} is not under the document root {root} (LOCAL_FILES_DOCUMENT_ROOT)"
        )
    return batch, root


@dataclass(frozen=True)
class LocalImages:
    """A local batch folder, served by the server's local-files storage."""

    batch: Path
    root: Path
    root_given: bool = False  # tool.document_root was set (else the batch's parent was assumed)

    @property
    def images_dir(self) -> str:
        return str(self.batch / "images")

    def ref(self, file_name: str) -> str:
        return local_files_ref(file_name, batch_dir=self.batch, document_root=self.root)

    def check(self, client: LabelStudioClient, project: int) -> LocalImages:
        """These images with the server's own document root; ToolError when it cannot serve them."""
        said = client.storage_refusal("localfiles", {"project": project, "path": "/"}) or ""
        found = _SERVER_ROOT.search(said)
        if found is None:
            raise ToolError(
                f"Label Studio did not say which LOCAL_FILES_DOCUMENT_ROOT it serves ({said[:200]})"
            )
        server_root = Path(found.group(1))
        if not self.batch.is_relative_to(server_root) or self.batch == server_root:
            raise ToolError(
                f"Label Studio serves local files from {server_root} (its LOCAL_FILES_DOCUMENT_ROOT), "
                f"which does not hold the batch folder {self.batch}: start it with a root above the "
                f"batch (make ls-start LS_ROOT={self.batch.parent} LS_PORT=...); nothing was created"
            )
        if self.root_given and server_root != self.root:
            raise ToolError(
                f"tool.document_root is {self.root} but Label Studio's LOCAL_FILES_DOCUMENT_ROOT is "
                f"{server_root}; set one to the other (nothing was created)"
            )
        refused = client.storage_refusal(
            "localfiles", {"project": project, "path": self.images_dir, "use_blob_urls": True}
        )
        if refused:
            raise ToolError(
                f"Label Studio cannot serve {self.images_dir}: {refused[:300]} (nothing was created)"
            )
        return replace(self, root=server_root)

    def connect(self, client: LabelStudioClient, project: int, title: str) -> bool:
        """Connect the storage to the project unless it is; True when it was created."""
        if any(s.get("path") == self.images_dir for s in client.local_storages(project)):
            return False
        client.create_local_storage(project, self.images_dir, title=title)
        return True


@dataclass(frozen=True)
class S3Images:
    """A batch on S3, read by the server through an S3 import storage on `<prefix>/images`."""

    bucket: str
    prefix: str  # the images' key prefix, without a trailing slash
    settings: ToolS3
    endpoint_url: str | None = None
    region: str | None = None

    def ref(self, file_name: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}/{file_name}"

    def credentials(self) -> dict[str, str]:
        try:
            return self.settings.credentials()
        except KeyError as e:
            raise ToolError(
                f"environment variable {e.args[0]} is not set; it must hold the S3 credential Label "
                "Studio reads the batch with (tool.s3 names it; null lets the server use its own)"
            ) from None

    def fields(self) -> dict:
        out: dict = {"presign": self.settings.presign, "presign_ttl": self.settings.presign_ttl}
        if self.endpoint_url:
            out["s3_endpoint"] = self.endpoint_url
        if self.region:
            out["region_name"] = self.region
        return out

    def check(self, client: LabelStudioClient, project: int) -> S3Images:
        credentials = self.credentials()
        body = {
            "project": project,
            "bucket": self.bucket,
            "prefix": self.prefix,
            **self.fields(),
            **credentials,
        }
        refused = client.storage_refusal("s3", body, hide=tuple(credentials.values()))
        if refused:
            raise ToolError(
                f"Label Studio cannot read s3://{self.bucket}/{self.prefix} ({refused[:300]}): check "
                "the bucket, that images/ holds the batch, tool.s3's endpoint as the server reaches it, "
                "and the credentials; nothing was created"
            )
        return self

    def connect(self, client: LabelStudioClient, project: int, title: str) -> bool:
        if any(
            s.get("bucket") == self.bucket and str(s.get("prefix", "")).strip("/") == self.prefix
            for s in client.s3_storages(project)
        ):
            return False
        client.create_s3_storage(
            project,
            title=title,
            bucket=self.bucket,
            prefix=self.prefix,
            credentials=self.credentials(),
            **self.fields(),
        )
        return True


BatchImages = LocalImages | S3Images


def batch_images(config: ClientConfig) -> BatchImages:
    """Where the server reads this config's batch images."""
    if config.tool is None:
        raise ToolError("the client config has no tool: section")
    if config.source.startswith("s3://"):
        parts = urlsplit(config.source)
        prefix = "/".join(p for p in (parts.path.strip("/"), "images") if p)
        s3 = config.tool.s3
        return S3Images(
            parts.netloc, prefix, s3, endpoint_url=s3.endpoint_url, region=s3.region or config.storage.region
        )
    if "://" in config.source and not config.source.startswith("file://"):
        raise ToolError(
            f"source {config.source} is neither a local folder nor s3://: Label Studio cannot read it"
        )
    batch, root = batch_dirs(config.model_copy(update={"source": config.source.removeprefix("file://")}))
    return LocalImages(batch, root, root_given=bool(config.tool.document_root))
