"""`Bulk`: a task argument Prefect hands over without looking inside.

Prefect walks every task argument (to find the futures it waits for, then to resolve them), and
Dask's graph parser walks them again. For the plain data the flow builds itself (the batch's
keys and checksums per shard, each shard's copies and label files, the staged listing of every
file) that walk was about 4 s of CPU in a 20,000-image delivery, and it finds nothing: this data
holds no future. `Bulk` is neither a collection, a dataclass nor a model, so every walker passes
it through whole (Prefect's `quote` does the same on threads, but Dask's transport unpacks it)."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Bulk(Generic[T]):
    """Plain data (never a future or a state) passed to a task as one opaque value: `bulk.value`."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __repr__(self) -> str:
        size = len(self.value) if hasattr(self.value, "__len__") else "?"
        return f"Bulk({type(self.value).__name__} of {size})"
