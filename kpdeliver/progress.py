"""Progress of long stages (ingest, collect, validation, staging, publishing, verify, archive), told
to whoever listens: the CLI draws bars in a terminal, logs a line now and then otherwise; a Prefect
flow logs to its run. The domain only calls `step`; it never knows how progress is shown.

The listener is a context variable, so a stage deep in the domain reports without a parameter
threaded through every call, and Prefect's task threads (which copy the context) report too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sized
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol, TypeVar

from kpdeliver.words import plural

T = TypeVar("T")


class ProgressListener(Protocol):
    def started(self, stage: str, total: int | None) -> None:
        """`stage` begins; `total` items (None when unknown)."""

    def advanced(self, stage: str, done: int) -> None:
        """`done` more items of `stage` are finished."""

    def finished(self, stage: str) -> None: ...


_listener: ContextVar[ProgressListener | None] = ContextVar("kpdeliver_progress", default=None)


@contextmanager
def reporting(listener: ProgressListener) -> Iterator[ProgressListener]:
    """Send the progress of every stage run inside the block to `listener`."""
    token = _listener.set(listener)
    try:
        yield listener
    finally:
        _listener.reset(token)


def listening() -> bool:
    return _listener.get() is not None


class Stage:
    """One running stage: `advance()` per item (or per batch of items)."""

    def __init__(self, name: str, total: int | None) -> None:
        self.name, self.listener = name, _listener.get()
        if self.listener is not None:
            self.listener.started(name, total)

    def advance(self, n: int = 1) -> None:
        if self.listener is not None and n:
            self.listener.advanced(self.name, n)


def tracked(name: str, items: Iterable[T], total: int | None = None) -> Iterator[T]:
    """`items`, one at a time, each counted as done once the loop body has run on it."""
    if total is None and isinstance(items, Sized):
        total = len(items)
    with stage(name, total) as s:
        for item in items:
            yield item
            s.advance()


@contextmanager
def stage(name: str, total: int | None = None) -> Iterator[Stage]:
    """A stage told to the current listener (nothing happens without one)."""
    s = Stage(name, total)
    try:
        yield s
    finally:
        if s.listener is not None:
            s.listener.finished(name)


class LogProgress:
    """Plain log lines: when a stage starts, at most every `every` seconds while it runs, and when it
    ends, with counts and the rate (for logs, pipes and Prefect's run logs)."""

    def __init__(self, logger: logging.Logger | logging.LoggerAdapter, every: float = 10.0) -> None:
        self.log, self.every = logger, every
        self.state: dict[str, list] = {}  # stage -> [total, done, started, last logged]
        self.lock = threading.Lock()

    def started(self, stage: str, total: int | None) -> None:
        now = time.monotonic()
        with self.lock:
            self.state[stage] = [total, 0, now, now]
        self.log.info("%s: started%s", stage, f" ({plural(total, 'item')})" if total is not None else "")

    def advanced(self, stage: str, done: int) -> None:
        now = time.monotonic()
        with self.lock:
            s = self.state.setdefault(stage, [None, 0, now, now])
            s[1] += done
            if now - s[3] < self.every:
                return
            s[3] = now
            line = self._line(stage, s, now)
        self.log.info("%s", line)

    def finished(self, stage: str) -> None:
        now = time.monotonic()
        with self.lock:
            s = self.state.pop(stage, [None, 0, now, now])
        self.log.info("%s", self._line(stage, s, now, done=True))

    @staticmethod
    def _line(stage: str, s: list, now: float, done: bool = False) -> str:
        total, count, start = s[0], s[1], s[2]
        elapsed = max(now - start, 1e-9)
        of = f"/{total:,}" if total is not None else ""
        noun = "item" if (total if total is not None else count) == 1 else "items"
        pct = f" ({100 * count / total:.0f}%)" if total else ""
        return f"{stage}: {'done, ' if done else ''}{count:,}{of} {noun}{pct}, {count / elapsed:,.1f}/s, {elapsed:.1f} s"
