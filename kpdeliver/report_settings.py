"""The `report:` section of a client config: how the client's QA report presents the release.

```yaml
report:
  annotators: anonymous    # default: named
```

It sits on the ground floor (no kpdeliver imports) so `kpdeliver.config` can hold it. Left at its
defaults it is not part of the input fingerprint, so configs written before it existed keep theirs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ReportSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    annotators: Literal["named", "anonymous"] = Field(
        "named",
        description="how the QA report names annotators: `named` (their folder names) or `anonymous` "
        "(`Annotator 1`, `Annotator 2`, … in name order, in every table, picture and message)",
    )
