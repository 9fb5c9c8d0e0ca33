"""`kpdeliver rework`: send a release's held-back items and error findings (and a client's
rejections) back to the annotators who made them. No Prefect.

    kpdeliver rework --config client.yaml [--release v0003] [--from feedback.csv] [--files]

With a `tool:` section (and without --files) each annotator gets a rework project in Label
Studio; otherwise task packages are written under the batch's tasks/rework/<round>/<annotator>/.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from kpdeliver.cli.output import fail, load_checked_config, plural

app = typer.Typer()
console = Console(soft_wrap=True, highlight=False, markup=False)


def _version(wanted: str | None, published: list[int], where: str) -> int:
    if not published:
        fail(f"no release is published under {where}: deliver first, then rework")
    if wanted is None:
        return published[-1]
    text = wanted.strip().lower().removeprefix("v")
    if not text.isdigit() or int(text) not in published:
        fail(
            f"release {wanted} is not published under {where} (published: "
            f"{', '.join(f'v{v:04d}' for v in published)})"
        )
    return int(text)


def _release_qa(cfg, wanted: str | None):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kpdeliver.release.layout import release_prefix
    from kpdeliver.release.publish import published_versions
    from kpdeliver.rework.send import ReleaseQA
    from kpdeliver.storage import join_key, open_store

    releases = open_store(cfg.releases, cfg.storage.model_dump(exclude_none=True))
    version = _version(
        wanted,
        published_versions(releases, cfg.client, cfg.dataset),
        releases.location(join_key(cfg.client, cfg.dataset)),
    )
    prefix = release_prefix(cfg.client, cfg.dataset, version)
    tables = [
        pq.read_table(pa.BufferReader(releases.get(join_key(prefix, name))))
        for name in (
            "qa/quarantine.parquet",
            "qa/findings.parquet",
            "index/images.parquet",
            "index/annotations.parquet",
        )
    ]
    return ReleaseQA(version, *tables)


def _feedback(path: Path, release):
    from kpdeliver.codecs import CodecError
    from kpdeliver.collect.local import read_input
    from kpdeliver.rework.feedback import FeedbackError, feedback_items, parse_feedback

    try:
        rows = parse_feedback(path.name, read_input(path, "feedback file"))
        return feedback_items(
            path.name,
            rows,
            images=release.images,
            annotations=release.annotations,
            quarantine=release.quarantine,
        )
    except (OSError, ValueError, CodecError) as e:  # FeedbackError is a ValueError
        fail(str(e) if isinstance(e, FeedbackError) else f"feedback file {path} cannot be read: {e}")


def _collected(cfg, store):
    from kpdeliver.codecs.resolve import resolve_schema
    from kpdeliver.collect.exports import collect_exports
    from kpdeliver.ingest.batch import ingest_images
    from kpdeliver.model import Dataset, Instances

    schema = resolve_schema(cfg.schema_name)
    images = ingest_images(store).images
    return collect_exports(
        store,
        Dataset(schema, images, Instances.empty(schema.num_keypoints)),
        cfg.annotators,
        category=cfg.category,
    )


def _send_live(cfg, config_path: Path, collected, plan) -> str:
    from kpdeliver.cli.tool import _open
    from kpdeliver.tools.label_studio import ToolError
    from kpdeliver.tools.label_studio.rework import push_rework

    _, _, client = _open(config_path)
    try:
        with client:
            pushed = push_rework(client, cfg, collected.dataset, plan.items, plan.round)
    except ToolError as e:
        fail(str(e))
    for p in pushed:
        console.print(f"{p.annotator}: {p.tasks_added} task(s) added to project {p.project} {p.title}")
    return "label-studio"


def _send_files(store, collected, plan) -> str:
    from kpdeliver.rework.packages import package_prefix, return_prefix, rework_packages

    for key, data in rework_packages(collected.dataset, plan.items, plan.round).items():
        store.put(key, data)
    for who in sorted({a for a, _ in plan.pairs}):
        console.print(
            f"{who}: package {store.location(package_prefix(plan.round, who))} — return the edited "
            f"export under {store.location(return_prefix(plan.round, who))}"
        )
    return "files"


@app.command()
def rework(
    config: Path = typer.Option(..., "--config", "-c", help="client YAML"),
    release: str | None = typer.Option(
        None, "--release", help="the release whose findings go back (default: the newest), e.g. v0003"
    ),
    feedback: Path | None = typer.Option(
        None, "--from", help="the client's feedback: CSV or JSON of file_name or annotation_id with a reason"
    ),
    files: bool = typer.Option(
        False, "--files", help="write task packages even when the config has a tool: section"
    ),
) -> None:
    """Send every held-back item and error finding of a release (and the items a client rejected)
    back to the annotator who made them, with the finding's words. Safe to repeat: an item out for
    rework is not sent twice."""
    from kpdeliver.cli.runtime import failures_said
    from kpdeliver.rework.ledger import Ledger
    from kpdeliver.rework.send import plan_round, record_round
    from kpdeliver.storage import open_store

    cfg = load_checked_config(config)
    with failures_said():
        qa = _release_qa(cfg, release)
        rejected = (
            _feedback(feedback, qa) if feedback is not None else None
        )  # checked before anything is done
        store = open_store(cfg.source, cfg.storage.model_dump(exclude_none=True))
        collected = _collected(cfg, store)
        ledger = Ledger.load(store)
        plan = plan_round(ledger, qa, collected, rejected)
        _print_plan(plan, qa.version)
        if not plan.items.num_rows:
            console.print("nothing to send: every item of this release is out for rework or already sent")
            return
        route = (
            _send_live(cfg, config, collected, plan)
            if cfg.tool is not None and not files
            else _send_files(store, collected, plan)
        )
        record_round(ledger, plan, route=route, feedback_name=feedback.name if feedback else None)
        ledger.save(store)
    console.print(f"rework {plan.round} recorded in {store.location('tasks/rework/ledger.json')}")


def _print_plan(plan, version: int) -> None:
    t = Table(title=f"rework {plan.round} of v{version:04d}")
    for col in ("annotator", "images", "reasons", "checks"):
        t.add_column(col, justify="left" if col in ("annotator", "checks") else "right")
    rows = plan.items.to_pylist()
    for who in sorted({r["annotator"] for r in rows}):
        mine = [r for r in rows if r["annotator"] == who]
        t.add_row(
            who,
            str(len({r["file_name"] for r in mine})),
            str(len(mine)),
            ", ".join(sorted({str(r["check"]) for r in mine})),
        )
    console.print(t)
    for (who, name), why in sorted(plan.not_sent.items()):
        console.print(f"not sent: {who} {name}: {why}")
    if plan.unsendable:
        console.print(
            f"{plural(plan.unsendable, 'reason')} name no annotator's label of a batch image "
            "(ingest refusals, labels of unknown images): not sent"
        )
