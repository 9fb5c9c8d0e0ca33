"""Row rules as Great Expectations suites: schema conformance, visibility, bounds.

`validate_dataset(dataset, settings)` runs them and returns every failing item as a finding.
Great Expectations is imported on first use of these names, so `expectations.frames`,
`expectations.located` and `expectations.worker` load without it.
"""

from __future__ import annotations

import gc
import importlib
import importlib.abc
import importlib.util
import sys

__all__ = ["SuiteError", "ValidationReport", "validate_dataset"]

# Imported at GX's start-up for expectations our suites never use (KL divergence, KS tests and
# their charts): 2.4 of its 4.2 s. A lean import defers them until first touched.
_DEFERRED = frozenset({"scipy.stats", "altair"})


class _Deferred(importlib.abc.MetaPathFinder):
    """Finds `_DEFERRED` modules as the other finders would, behind `importlib.util.LazyLoader`:
    the module object exists at once and runs its code on its first attribute access."""

    def find_spec(self, name, path, target=None):
        if name not in _DEFERRED:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


def import_gx(*, without_sql: bool = False):
    """`expectations.validate`, importing Great Expectations with the cyclic GC paused (its import
    builds thousands of pydantic models, and the GC's passes over them are about a fifth of the
    import) and the `_DEFERRED` modules behind `LazyLoader`: from 4.2 s to 2.5 s.

    `LazyLoader` is not thread-safe on Python 3.11 when two threads touch a deferred module first
    at once; nothing in kpdeliver touches them (deep QA takes chi-square quantiles from
    scipy.special), and GX touches them only for expectations our suites never use.
    `without_sql` is for a process that never runs Prefect (the `validate` worker): SQLAlchemy is
    not imported at all (GX treats it as optional), which takes the import under 2 s."""
    enabled = gc.isenabled()
    gc.disable()
    finder = _Deferred()
    sys.meta_path.insert(0, finder)
    if without_sql:
        sys.modules.setdefault("sqlalchemy", None)  # type: ignore[arg-type]  # None: `import sqlalchemy` raises ImportError
    try:
        return importlib.import_module("expectations.validate")
    finally:
        sys.meta_path.remove(finder)
        if enabled:
            gc.enable()


def __getattr__(name: str):
    if name in __all__:
        return getattr(import_gx(), name)
    raise AttributeError(f"module 'expectations' has no attribute {name!r}")
