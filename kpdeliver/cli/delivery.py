"""`kpdeliver deliver`, which runs the Prefect flow, and `kpdeliver assign` (`kpdeliver demo` and
`sample`, which run it too, are in `sample.py`). Each checks its config completely (kpdeliver check)
before Prefect starts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from kpdeliver.cli.output import load_checked_config, progress_shown, show_table

if TYPE_CHECKING:
    from kpdeliver.release.result import DeliveryResult

app = typer.Typer()
console = Console(
    soft_wrap=True, highlight=False, markup=False
)  # user text printed as written, paths never wrap


def run_delivery(config, work: Path) -> DeliveryResult:
    from kpdeliver.cli.runtime import configure_prefect

    configure_prefect(work)
    from flows.delivery import delivery_run

    console.print(Text(f"delivering {config.client}/{config.dataset} (Prefect flow)"))
    with progress_shown():
        return delivery_run(config)


def print_summary(summary: DeliveryResult) -> None:
    c = summary.counts
    t = Table(title=f"release v{summary.version:04d} — verdict: {summary.verdict}", show_header=True)
    t.add_column("what")
    t.add_column("delivered", justify="right")
    t.add_column("quarantined", justify="right")
    t.add_column("other", justify="right")
    t.add_row(
        "images",
        str(c.get("images_delivered")),
        str(c.get("images_quarantined")),
        f"{c.get('images_rejected_at_ingest')} refused at ingest",
    )
    t.add_row(
        "instances",
        str(c.get("instances_delivered")),
        str(c.get("instances_quarantined")),
        f"{c.get('instances_review_only')} review-only (overlap)",
    )
    t.add_row("findings", str(c.get("findings")), "", f"splits {c.get('splits')}")
    show_table(console, t)
    by_check = summary.qa.get("findings_by_check", {})
    if by_check:
        f = Table(title="findings by check")
        for col in ("check", "error", "warning", "info"):
            f.add_column(col, justify="left" if col == "check" else "right")
        for check, n in by_check.items():
            f.add_row(check, *(str(n[s]) if n[s] else "" for s in ("error", "warning", "info")))
        show_table(console, f)
    for reason in summary.qa.get("reasons", []):
        console.print(Text.assemble(("sign-off:", "red"), f" {reason}"))
    if summary.duplicate_of_published:
        console.print(
            Text(
                "inputs identical to this published release: no new version written (one "
                "published unsigned is signed afterwards with: kpdeliver sign RELEASE --key KEY.pem)",
                style="yellow",
            )
        )
    console.print(f"release:  {summary.release}")
    console.print(f"findings: {summary.findings}")
    console.print(f"report:   {summary.report}")


@app.command()
def deliver(
    config: Path = typer.Option(..., "--config", "-c", help="client YAML"),
    work: Path = typer.Option(Path(".work"), help="folder for Prefect's home and temporary files"),
) -> None:
    """Run a full delivery for one client config and publish a release."""
    cfg = load_checked_config(config)
    summary = run_delivery(cfg, work)
    print_summary(summary)


@app.command()
def assign(
    config: Path = typer.Option(..., "--config", "-c", help="client YAML"),
) -> None:
    """Assign the batch's images to annotators and write their CVAT / Label Studio / Supervisely task
    packages under the source's tasks/ prefix (no Prefect needed)."""
    from kpdeliver.assign.assignments import assign_annotators, task_packages
    from kpdeliver.codecs.resolve import resolve_schema
    from kpdeliver.ingest.batch import ingest_images
    from kpdeliver.model import Dataset, Instances
    from kpdeliver.storage import open_store

    cfg = load_checked_config(config)
    store = open_store(cfg.source, cfg.storage.model_dump(exclude_none=True))
    images = ingest_images(store).images
    table = assign_annotators(images, cfg.annotators, cfg.assignment)
    schema = resolve_schema(cfg.schema_name)
    files = task_packages(Dataset(schema, images, Instances.empty(schema.num_keypoints)), table)
    for key, data in files.items():
        store.put(key, data)
    t = Table(title=f"assignments for {cfg.client}/{cfg.dataset}")
    for col in ("annotator", "primary", "overlap", "gold"):
        t.add_column(col, justify="left" if col == "annotator" else "right")
    rows = table.to_pylist()
    for a in cfg.annotators:
        t.add_row(
            a,
            *(
                str(sum(r["annotator"] == a and r["role"] == role for r in rows))
                for role in ("primary", "overlap", "gold")
            ),
        )
    show_table(console, t)
    console.print(f"task packages written under {store.location('tasks')}")
