"""The `runner:` section of a client config: where the delivery's tasks run. It changes how fast
a release is built, never what it holds (the input fingerprint leaves it out).

```yaml
runner:
  kind: threads            # default: Prefect's thread pool in the flow's process
  max_workers: 4           # threads only; default: one per core
  shard_size: 500          # images per shard of the mapped steps (ingest, staging)

runner: {kind: dask, address: "tcp://scheduler:8786"}   # an external Dask scheduler
runner: {kind: dask, workers: 2}                         # a LocalCluster of 2 worker processes
```

It sits on the ground floor (no kpdeliver imports) so `kpdeliver.config` can hold it.
"""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RunnerKind(str, Enum):
    threads = "threads"
    dask = "dask"


class RunnerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: RunnerKind = RunnerKind.threads
    address: str | None = Field(
        None, pattern=r"^(tcp|tls|inproc|ucx)://\S+$", description="an external Dask scheduler (kind: dask)"
    )
    workers: int | None = Field(None, ge=1, le=256, description="LocalCluster worker processes (kind: dask)")
    threads_per_worker: int = Field(1, ge=1, le=64, description="threads in each LocalCluster worker")
    max_workers: int | None = Field(
        None, ge=1, le=256, description="threads of the pool (kind: threads); default one per core"
    )
    shard_size: int = Field(500, ge=1, le=1_000_000, description="images per shard of the mapped steps")

    @model_validator(mode="after")
    def _fits_kind(self) -> RunnerSettings:
        if self.kind is RunnerKind.dask:
            if self.address and self.workers:
                raise ValueError(
                    "give a Dask runner either address (an external scheduler) or workers "
                    "(a local cluster), not both"
                )
            if self.max_workers:
                raise ValueError("max_workers is for kind: threads; a Dask runner takes address or workers")
        elif self.address or self.workers:
            raise ValueError("address and workers are for kind: dask")
        return self
