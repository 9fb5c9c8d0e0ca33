"""Row rules as Great Expectations suites: schema conformance, visibility, bounds.

`validate_dataset(dataset, settings)` runs them and returns every failing item as a finding.
Great Expectations is imported on first use of these names, so `expectations.frames`,
`expectations.located` and `expectations.worker` load without it.
"""
from __future__ import annotations

import gc
import importlib

__all__ = ["SuiteError", "ValidationReport", "validate_dataset"]


def import_gx():
    """`expectations.validate`, importing Great Expectations with the cyclic GC paused: its import
    builds thousands of pydantic models and the GC's passes over them meanwhile are about a
    fifth of the import's 3 s."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return importlib.import_module("expectations.validate")
    finally:
        if enabled:
            gc.enable()


def __getattr__(name: str):
    if name in __all__:
        return getattr(import_gx(), name)
    raise AttributeError(f"module 'expectations' has no attribute {name!r}")
