"""The `tool:` section of a client config: the live annotation tool kpdeliver drives.

```yaml
tool:
  kind: label-studio
  url: http://127.0.0.1:8080
  token_env: LABEL_STUDIO_TOKEN          # the token itself never sits in the config
  project: "{client}/{dataset} — {annotator}"
  users: {ada@example.com: ann_a, bo@example.com: ann_b}
  document_root: /data/batches           # the server's LOCAL_FILES_DOCUMENT_ROOT (default: the batch's parent)
```

It sits on the ground floor (no kpdeliver imports) so `kpdeliver.config` can hold it while the
client code in `kpdeliver.tools` stays above the codecs.
"""
from __future__ import annotations

import os
import string
from enum import Enum
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

PROJECT_FIELDS = frozenset({"client", "dataset", "annotator"})


class ToolKind(str, Enum):
    label_studio = "label-studio"


class ToolSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ToolKind = ToolKind.label_studio
    url: str = Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$", description="base URL of the tool")
    token_env: str = Field("LABEL_STUDIO_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                           description="environment variable that holds the API token")
    project: str = Field("{client}/{dataset} — {annotator}", min_length=1,
                         description="project title; one project per annotator")
    users: dict[str, str] = Field(default_factory=dict, description="tool user e-mail -> annotator name")
    document_root: Optional[str] = Field(None, description="the server's LOCAL_FILES_DOCUMENT_ROOT "
                                         "(default: the batch folder's parent)")

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
            raise ValueError(f"unknown field(s) {sorted(used - PROJECT_FIELDS)} in the project title; "
                             f"use {sorted(PROJECT_FIELDS)}")
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
