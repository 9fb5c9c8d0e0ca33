"""The one root of kpdeliver's exceptions, and one subclass per stage.

Every failure kpdeliver raises on purpose is a `KpdeliverError`; its message is already the one
sentence a person reads (it names the file, item, key or call) and `exit_code` the command's exit
status. The command line and the flow turn any of them into that sentence and code in one place
(`said`); anything else is a bug. Each stage's own exceptions keep their names and, where callers
catch them so, their `ValueError`/`RuntimeError` base as a second base.

This module is the ground floor: it imports nothing of kpdeliver.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SENTENCE_MAX = 500


class KpdeliverError(Exception):
    """A failure kpdeliver expects and says in one sentence; `exit_code` is the command's status."""

    exit_code = 2

    def sentence(self) -> str:
        """The one sentence a person reads (multi-line only for a list of a config's problems)."""
        return str(self)


class IngestError(KpdeliverError):
    """Ingest: a batch's image cannot be taken in (refused with an `ingest.*` finding)."""


class DecodeError(KpdeliverError):
    """Collect and convert: an input (an export, a keypoint schema, a size-capped file) cannot be
    read or decoded at all."""


class ValidationError(KpdeliverError):
    """Validate: the row rules could not run (a broken suite or a dead worker, not bad data)."""


class ReleaseError(KpdeliverError):
    """Release: a release cannot be packaged, signed, published, catalogued or shared."""


class ConfigError(KpdeliverError, ValueError):
    """The client config cannot be used. `problems` holds every problem found, one plain sentence
    each; the message is that sentence when there is one, else a heading and the whole list."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class ToolError(KpdeliverError, RuntimeError):
    """The annotation tool refused, could not be reached, or answered what cannot be used; the
    message names the call."""


def one_line(text: str) -> str:
    """`text` on one line of at most 500 characters, without the control characters (escape
    sequences included) a server's message may carry."""
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if len(text) <= SENTENCE_MAX else text[: SENTENCE_MAX - 1] + "…"


def said(exc: BaseException) -> tuple[str, int]:
    """The one place a failure becomes what a person reads: its sentence and the exit code."""
    if isinstance(exc, KpdeliverError):
        return exc.sentence() or type(exc).__name__, exc.exit_code
    return one_line(str(exc)) or type(exc).__name__, 2


__all__ = [
    "ConfigError",
    "DecodeError",
    "IngestError",
    "KpdeliverError",
    "ReleaseError",
    "ToolError",
    "ValidationError",
    "one_line",
    "said",
]
