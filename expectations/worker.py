"""Great Expectations in a second process, for the `validate` command.

Importing GX takes about 2 s (lean: see `expectations.import_gx`), longer than reading a
100,000-instance file. `prestart()` or `GXWorker()` starts `python -m expectations.worker`,
which imports GX meanwhile; `validate(...)` sends the dataset's tables one piece at a time (a
pickle each over a wide pipe), the worker validates each piece as it arrives and drops it, so
neither process holds a whole points table of a million instances; then the worker returns every
check's failing rows, and this process locates the findings while it writes the validation
results. Flows use the in-process `validate_dataset`: they import GX once and run many validations.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import subprocess
import sys
from itertools import chain
from typing import TYPE_CHECKING

from expectations.results import RuleResults
from kpdeliver.errors import ValidationError

if TYPE_CHECKING:  # `prestart` runs before anything heavy is imported
    from kpdeliver.config import ValidationSettings
    from kpdeliver.model import Dataset


class WorkerError(ValidationError, RuntimeError):
    """The validation worker died (its traceback is on stderr)."""


_PRESTARTED: subprocess.Popen | None = None
_PIPE_BYTES = 1 << 20  # Linux's default cap for an unprivileged pipe; 16x fewer switches than 64 KiB


def _spawn() -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "expectations.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stdout is not None  # both opened as pipes above
    try:  # the frames are about 120 MB for 100,000 instances: a wide pipe moves them in a tenth of the time
        fcntl.fcntl(proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    except (AttributeError, OSError):  # not Linux, or a lower cap: the default pipe works, slower
        pass
    return proc


def prestart() -> None:
    """Start the worker now, before the command's own imports: importing GX is the longest step
    of `validate`. The next `GXWorker()` adopts it. A worker nobody adopts reads EOF and exits."""
    global _PRESTARTED
    if _PRESTARTED is None:
        _PRESTARTED = _spawn()


class GXWorker:
    """A worker process with GX imported; one `validate` call per dataset, then `close()`
    (or use it as a context manager, which kills it when the block raises)."""

    def __init__(self) -> None:
        global _PRESTARTED
        self._proc, _PRESTARTED = _PRESTARTED or _spawn(), None

    def validate(self, dataset: Dataset, settings: ValidationSettings, *, source: str) -> RuleResults:
        """The findings of `expectations.validate_dataset` for `dataset`, and its results summary."""
        from expectations.frames import iter_frames  # pandas: not at CLI start-up
        from expectations.located import locate

        header = {
            "category_ids": [c.id for c in dataset.categories],
            "settings": settings,
            "schema_name": dataset.schema.name,
        }
        stdin, stdout = self._proc.stdin, self._proc.stdout
        assert stdin is not None and stdout is not None  # pipes (_spawn)
        try:
            for message in chain([header], iter_frames(dataset), [None]):  # one frame alive at a time
                pickle.dump(message, stdin, protocol=pickle.HIGHEST_PROTOCOL)
                del message
            stdin.flush()
            failing, summary = pickle.load(stdout)
        except (BrokenPipeError, EOFError):
            raise WorkerError(f"the validation worker failed (exit code {self._proc.wait()})") from None
        return RuleResults(locate(dataset, failing, source=source), summary)

    def close(self) -> None:
        """Wait for the worker to leave."""
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        if code := self._proc.wait():
            raise WorkerError(f"the validation worker failed (exit code {code})")

    def __enter__(self) -> GXWorker:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._proc.kill()
            self._proc.wait()


def main() -> None:
    """Worker loop, until EOF: a header, then (key, frame) messages up to None; each table's suite
    runs as its frame arrives; then the failing rows and the validation results' summary out."""
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything GX prints goes to stderr, never into the replies
    from expectations import import_gx

    v = import_gx(without_sql=True)
    while True:
        try:
            req = pickle.load(sys.stdin.buffer)
        except EOFError:
            break
        runner = v.SuiteRunner(
            v.make_context(),
            category_ids=req["category_ids"],
            settings=req["settings"],
            schema_name=req["schema_name"],
        )
        while (item := pickle.load(sys.stdin.buffer)) is not None:
            runner.run(*item)
            del item  # the frame: only its failing rows are kept
        results, failing = runner.finish()
        pickle.dump((failing, v.results_summary(results)), replies, protocol=pickle.HIGHEST_PROTOCOL)
        replies.flush()
    os._exit(0)  # everything is written; tearing down GX's thousands of objects would take 0.4 s


if __name__ == "__main__":
    main()
