"""The `tool:` section of a client config: the live annotation tool kpdeliver drives.

```yaml
tool:
  kind: label-studio
  url: http://127.0.0.1:8080
  token_env: LABEL_STUDIO_TOKEN          # the token itself never sits in the config
  project: "{client}/{dataset} — {annotator}"
  users: {ada@example.com: ann_a, bo@example.com: ann_b}
  document_root: /data/batches           # the server's LOCAL_FILES_DOCUMENT_ROOT (default: the batch's parent)
  s3:                                    # only for batches on s3://: Label Studio's S3 import storage
    endpoint_url: http://minio:9000      # as the server reaches it (unset: the server's S3_ENDPOINT, else AWS)
    access_key_env: LS_S3_ACCESS_KEY_ID  # names of variables; their values go to the server, never to a file
    secret_key_env: LS_S3_SECRET_ACCESS_KEY
```

It sits on the ground floor (no kpdeliver imports) so `kpdeliver.config` can hold it while the
client code in `kpdeliver.tools` stays above the codecs.
"""

from __future__ import annotations

import os
import string
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, field_validator

PROJECT_FIELDS = frozenset({"client", "dataset", "annotator"})


class ToolKind(str, Enum):
    label_studio = "label-studio"


_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class ToolS3(BaseModel):
    """How Label Studio reads a batch that lives on S3: an S3 import storage per project, with
    presigned URLs, credentials taken from this process's environment when the push runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="S3 endpoint as the Label Studio server reaches it; unset: "
        "the server's own S3_ENDPOINT, else AWS S3",
    )
    region: str | None = Field(None, description="S3 region (default: the config's storage.region)")
    access_key_env: str | None = Field(
        "AWS_ACCESS_KEY_ID",
        pattern=_ENV_NAME,
        description="environment variable with the access key id Label Studio "
        "reads the batch with; null: the server uses its own credentials",
    )
    secret_key_env: str | None = Field(
        "AWS_SECRET_ACCESS_KEY",
        pattern=_ENV_NAME,
        description="environment variable with the secret access key",
    )
    session_token_env: str | None = Field(
        "AWS_SESSION_TOKEN",
        pattern=_ENV_NAME,
        description="environment variable with a session token (sent only when set)",
    )
    presign: bool = Field(
        True,
        description="annotators' browsers fetch images by presigned URL "
        "(false: Label Studio proxies the bytes)",
    )
    presign_ttl: int = Field(15, ge=1, le=10080, description="minutes a presigned URL stays valid")

    def credentials(self) -> dict[str, str]:
        """The storage's aws_* fields from the environment; KeyError names a required variable that is unset."""
        out = {}
        for field_name, env, required in (
            ("aws_access_key_id", self.access_key_env, True),
            ("aws_secret_access_key", self.secret_key_env, True),
            ("aws_session_token", self.session_token_env, False),
        ):
            value = os.environ.get(env, "").strip() if env else ""
            if value:
                out[field_name] = value
            elif env and required:
                raise KeyError(env)
        return out


class ToolSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ToolKind = ToolKind.label_studio
    url: str = Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$", description="base URL of the tool")
    token_env: str = Field(
        "LABEL_STUDIO_TOKEN", pattern=_ENV_NAME, description="environment variable that holds the API token"
    )
    project: str = Field(
        "{client}/{dataset} — {annotator}",
        min_length=1,
        description="project title; one project per annotator",
    )
    users: dict[str, str] = Field(default_factory=dict, description="tool user e-mail -> annotator name")
    document_root: str | None = Field(
        None, description="the server's LOCAL_FILES_DOCUMENT_ROOT (default: the batch folder's parent)"
    )
    s3: ToolS3 = Field(
        default_factory=ToolS3, description="Label Studio's S3 import storage, for batches on s3://"
    )

    @field_validator("url")
    @classmethod
    def _no_trailing_slash(cls, v: str) -> str:
        return v.rstrip("/")

    @field_validator("project")
    @classmethod
    def _known_fields(cls, v: str) -> str:
        used = {name for _, name, _, _ in string.Formatter().parse(v) if name is not None}
        if "annotator" not in used:
            raise ValueError("the project title must contain {annotator} (one project per annotator)")
        if used - PROJECT_FIELDS:
            raise ValueError(
                f"unknown field(s) {sorted(used - PROJECT_FIELDS)} in the project title; "
                f"use {sorted(PROJECT_FIELDS)}"
            )
        return v

    @field_validator("users")
    @classmethod
    def _emails_lowercase(cls, v: dict[str, str]) -> dict[str, str]:
        return {email.strip().lower(): name for email, name in v.items()}

    def project_title(self, *, client: str, dataset: str, annotator: str) -> str:
        return self.project.format(client=client, dataset=dataset, annotator=annotator)

    def token(self) -> str:
        """The API token from the environment; KeyError names the variable when it is unset."""
        value = os.environ.get(self.token_env, "").strip()
        if not value:
            raise KeyError(self.token_env)
        return value
