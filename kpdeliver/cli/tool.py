"""`kpdeliver push` and `kpdeliver pull`: drive the live annotation tool of the client config's
`tool:` section (Label Studio). No Prefect: both are a handful of REST calls.

    kpdeliver push --config client.yaml [--prelabels model.json]   one project per annotator
    kpdeliver pull --config client.yaml                            finished work -> annotations/<annotator>/
    kpdeliver deliver --config client.yaml                         as with hand-dropped exports
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from kpdeliver.cli.output import fail, plural, show_table

app = typer.Typer()
console = Console(highlight=False, markup=False)  # what a server sent is never read as markup


def _open(config_path: Path):
    """(config, batch store, client) or a clear one-line error."""
    from kpdeliver.cli.output import load_checked_config
    from kpdeliver.storage import open_store
    from kpdeliver.tools.label_studio import LabelStudioClient

    cfg = load_checked_config(config_path)  # every problem at once; another client's locations refused
    if cfg.tool is None:
        fail(
            f"{config_path}: no tool: section (kind, url, token_env, users); "
            "see docs/operations.md, 'Label Studio in the loop'"
        )
    try:
        token = cfg.tool.token()
    except KeyError as e:
        fail(f"environment variable {e.args[0]} is not set; it must hold the {cfg.tool.kind.value} API token")
    store = open_store(cfg.source, cfg.storage.model_dump(exclude_none=True))
    return cfg, store, LabelStudioClient(cfg.tool.url, token)


def _read_prelabels(path: Path, batch, schema):
    from kpdeliver.codecs import CodecError
    from kpdeliver.codecs.registry import decode_bytes
    from kpdeliver.collect.local import read_input
    from kpdeliver.tools.label_studio.push import prelabels_on_batch

    try:
        decoded = decode_bytes(
            path.name, read_input(path, "pre-labels file"), schema=schema, source=str(path)
        )
    except (CodecError, OSError, ValueError) as e:
        fail(f"pre-labels {path} cannot be read: {e}")
    return prelabels_on_batch(decoded.dataset, batch, source=str(path))


@app.command()
def push(
    config: Path = typer.Option(..., "--config", "-c", help="client YAML with a tool: section"),
    prelabels: Path | None = typer.Option(None, help="labels (any supported format) loaded as predictions"),
) -> None:
    """Create or update one Label Studio project per annotator with their assigned images
    (primary, overlap, gold). Safe to repeat: only new images are added."""
    from kpdeliver.assign.assignments import assign_annotators
    from kpdeliver.codecs.resolve import resolve_schema
    from kpdeliver.ingest.batch import ingest_images
    from kpdeliver.model import Dataset, Instances
    from kpdeliver.report.guide import tool_instructions
    from kpdeliver.tools.label_studio import push_batch
    from kpdeliver.tools.label_studio.guide import set_instructions

    cfg, store, client = _open(config)
    schema = resolve_schema(cfg.schema_name)
    images = ingest_images(store).images
    if not len(images):
        fail(f"source {cfg.source} has no images under images/")
    batch = Dataset(schema, images, Instances.empty(schema.num_keypoints))
    labels = _read_prelabels(prelabels, batch, schema) if prelabels else None
    with client:  # a ToolError is said by the command line's one mapping (cli/runtime.py)
        pushed = push_batch(
            client,
            cfg,
            assign_annotators(images, cfg.annotators, cfg.assignment),
            schema=schema,
            prelabels=labels,
        )
        set_instructions(
            client,
            [p.project for p in pushed],
            tool_instructions(schema, client=cfg.client, dataset=cfg.dataset),
        )
    t = Table(title=f"pushed {cfg.client}/{cfg.dataset} to {cfg.tool.url}")
    for col in ("annotator", "project", "tasks added", "kept", "role changed", "pre-labels", "note"):
        t.add_column(col, justify="left" if col in ("annotator", "note") else "right")
    for p in pushed:
        note = "created" if p.created else ("config updated" if p.config_updated else "")
        if p.not_assigned_any_more:
            note += f" {plural(len(p.not_assigned_any_more), 'task')} no longer assigned (left in the tool)"
        t.add_row(
            p.annotator,
            f"{p.project} {p.title}",
            str(p.tasks_added),
            str(p.tasks_kept),
            str(p.tasks_updated),
            str(p.predictions),
            note.strip(),
        )
    show_table(console, t)
    console.print(
        "changed" if any(p.changed for p in pushed) else "nothing to change: the tool is up to date"
    )


@app.command()
def pull(
    config: Path = typer.Option(..., "--config", "-c", help="client YAML with a tool: section"),
) -> None:
    """Write the annotators' finished work from the tool into the batch's annotations/ (drafts
    and skipped tasks are counted, not collected). Safe to repeat."""
    from kpdeliver.tools.label_studio import pull_batch
    from kpdeliver.tools.label_studio.untrusted import shown

    cfg, store, client = _open(config)
    with client:  # a ToolError or StorageError is said by the command line's one mapping (cli/runtime.py)
        report = pull_batch(client, cfg, store)
    t = Table(title=f"pulled {cfg.client}/{cfg.dataset} from {cfg.tool.url}")
    for col in ("annotator", "project", "finished", "drafts", "skipped", "unmapped e-mails"):
        t.add_column(col, justify="left" if col in ("annotator", "unmapped e-mails") else "right")
    for p in report.projects:
        unmapped = ", ".join(f"{shown(e, limit=80)} ({n})" for e, n in sorted(p.unmapped.items()))
        t.add_row(
            p.annotator,
            str(p.project) if p.project > 0 else "not pushed",
            str(p.finished),
            str(p.drafts),
            str(p.skipped),
            unmapped,
        )
    show_table(console, t)
    for key in report.written:
        console.print(f"written   {store.location(key)}")
    for key in report.removed:
        console.print(f"removed   {store.location(key)} (no finished work left in the tool)")
    if not report.changed:
        console.print(f"nothing new: {plural(len(report.unchanged), 'export')} unchanged")
