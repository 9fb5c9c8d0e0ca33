"""What a delivery run tells the operator when it ends, in Prefect's own places: the final state's
name and message (`Published v0003 · conditional` and a one-line summary; `Failed` and the run's
one-sentence reason), one markdown artifact keyed `<client>-<dataset>-delivery` (release, verdict,
sign-off reasons, counts, report), and the log's last line (Prefect's `Finished in state …`, which
carries the state's name and message). The flow returns its DeliveryResult, with `report_link` set."""

from __future__ import annotations

import functools
import inspect
import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from prefect.artifacts import create_markdown_artifact
from prefect.states import Completed, Failed, State

from kpdeliver.config import ConfigError
from kpdeliver.release.result import DeliveryResult
from kpdeliver.storage import StorageError, open_store

REPORT = "qa/report.html"
LINK_SECONDS = 7 * 24 * 3600  # the longest an S3 presigned URL lives


@dataclass(frozen=True)
class Subject:
    """Whose delivery a run is; `storage` (the config's store options) when the run can presign."""

    client: str
    dataset: str
    storage: dict | None = None

    @property
    def artifact_key(self) -> str:
        # Prefect keys allow lowercase letters, digits and dashes only
        return re.sub(r"[^a-z0-9-]+", "-", f"{self.client}-{self.dataset}-delivery".lower()).strip("-")


def state_name(summary: dict) -> str:
    """`Published v0003 · conditional`, or `Already published v0003 · pass` for identical inputs."""
    done = "Already published" if summary.get("duplicate_of_published") else "Published"
    return f"{done} v{int(summary['version']):04d} · {summary.get('verdict')}"


def report_link(summary: dict, storage: dict | None) -> str:
    """The report's presigned link (7 days) when the release is on S3, else its path."""
    release = str(summary["release"])
    if storage is None or not release.startswith("s3://"):
        return str(summary["report"])
    try:
        return str(open_store(release, storage).presign(REPORT, LINK_SECONDS))  # type: ignore[attr-defined]
    except (StorageError, AttributeError):
        return str(summary["report"])


def _count(counts: dict, key: str) -> str:
    value = counts.get(key)
    return f"{value:,}" if isinstance(value, int) else "?"


def state_message(summary: dict) -> str:
    """One line: the verdict, where the release is, what it holds, where its report is."""
    c = summary.get("counts", {})
    reasons = len(summary.get("qa", {}).get("reasons", []))
    duplicate = " (inputs identical: no new version)" if summary.get("duplicate_of_published") else ""
    return (
        f"verdict {summary.get('verdict')}: release {summary['release']}{duplicate}; "
        f"{_count(c, 'images_delivered')} images and {_count(c, 'instances_delivered')} instances delivered, "
        f"{_count(c, 'images_quarantined')} images quarantined, {_count(c, 'findings')} findings, "
        f"{reasons} sign-off reason{'' if reasons == 1 else 's'}; report {summary.get('report_link') or summary['report']}"
    )


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def success_markdown(subject: Subject, summary: dict) -> str:
    c = summary.get("counts", {})
    link = summary.get("report_link") or summary["report"]
    report = f"[report.html]({link})" if "://" in link else f"`{link}`"
    lines = [
        f"# {subject.client}/{subject.dataset}: {state_name(summary)}",
        "",
        "| | |",
        "|---|---|",
        f"| release | `{_cell(summary['release'])}` |",
        f"| version | v{int(summary['version']):04d}{' (inputs identical: no new version)' if summary.get('duplicate_of_published') else ''} |",
        f"| verdict | **{_cell(summary.get('verdict'))}** |",
        f"| report | {report} |",
        f"| findings | `{_cell(summary.get('findings'))}` |",
        "",
        "## Counts",
        "",
        "| what | delivered | quarantined | other |",
        "|---|---:|---:|---|",
        f"| images | {_count(c, 'images_delivered')} | {_count(c, 'images_quarantined')} | "
        f"{_count(c, 'images_rejected_at_ingest')} refused at ingest |",
        f"| instances | {_count(c, 'instances_delivered')} | {_count(c, 'instances_quarantined')} | "
        f"{_count(c, 'instances_review_only')} review-only (overlap) |",
        f"| findings | {_count(c, 'findings')} | | |",
        "",
        "## Sign-off reasons",
        "",
    ]
    reasons = summary.get("qa", {}).get("reasons", [])
    lines += [f"- {_cell(r)}" for r in reasons] or ["none: every sign-off rule passed"]
    return "\n".join(lines) + "\n"


def failure_markdown(subject: Subject, message: str) -> str:
    return (
        f"# {subject.client}/{subject.dataset}: failed\n\nNothing was published by this run.\n\n"
        f"**Reason:** {message}\n"
    )


def _say(subject: Subject, markdown: str, description: str) -> None:
    create_markdown_artifact(markdown=markdown, key=subject.artifact_key, description=description)


def succeeded(subject: Subject, result: DeliveryResult) -> State:
    """The run's Completed state named by its outcome, its artifact written; `result` is the run's."""
    if result.report_link is None:  # a parent run reuses its delivery subflow's link
        result = replace(result, report_link=report_link(asdict(result), subject.storage))
    summary = asdict(result)
    name, message = state_name(summary), state_message(summary)
    _say(subject, success_markdown(subject, summary), f"{name}: {message}")
    return Completed(name=name, message=message, data=result)


def failed(subject: Subject, state: State) -> State:
    """A Failed state keeps its one sentence; the run's artifact says it too."""
    message = state.message or "the run failed"
    _say(subject, failure_markdown(subject, message), f"Failed: {message}")
    return state


class RefusedConfigLogs(logging.Filter):
    """A run refused for its config ends Failed with the refusal's sentence; Prefect would also log
    the ConfigError it re-raises with a traceback ("Engine execution exited with unexpected
    exception"), in the run's log and the worker's output. That record is left out."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.levelno >= logging.ERROR
            and record.exc_info
            and isinstance(record.exc_info[1], ConfigError)
        )


def quiet_refusals() -> None:
    """Install RefusedConfigLogs on Prefect's flow-run logger (once per process)."""
    logger = logging.getLogger("prefect.flow_runs")
    if not any(isinstance(f, RefusedConfigLogs) for f in logger.filters):
        logger.addFilter(RefusedConfigLogs())


def reports_outcome(about: Callable[..., Subject]):
    """Decorates a delivery flow function (returning its DeliveryResult, or a Failed state for a
    store failure): the run ends in the state of `succeeded`/`failed`. A config refused at the
    start (ConfigError) fails the run with its sentence, no traceback; calling the flow raises it."""

    def decorate(flow_fn):
        @functools.wraps(flow_fn)
        def run(*args, **kwargs):
            quiet_refusals()
            subject = about(*args, **kwargs)
            try:
                result = flow_fn(*args, **kwargs)
            except ConfigError as e:  # Prefect's last log line says it, once
                result = Failed(message=" ".join(str(e).split()), data=e)
            if isinstance(result, State):
                return failed(subject, result)
            return succeeded(subject, result)

        run.__signature__ = inspect.signature(flow_fn, eval_str=True)
        return run

    return decorate
