"""`kpdeliver convert`, `inspect` and `schemas`.

These commands start fast: everything is imported inside the command, and nothing here reaches
Prefect, Great Expectations, pandas or rich (`convert --to yolo` is benchmarked as a whole process;
rich draws only `inspect`'s and `schemas`' tables).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from kpdeliver.codecs.registry import FORMATS
from kpdeliver.collector import gc_paused
from kpdeliver.words import plural

app = typer.Typer()


# the formats the registry knows (a new format's folder appears here without touching the CLI)
OutFormat = Enum("OutFormat", {f.replace("-", "_"): f for f in FORMATS}, type=str)  # type: ignore[misc]
InFormat = Enum("InFormat", {"auto": "auto", **{f.replace("-", "_"): f for f in FORMATS}}, type=str)  # type: ignore[misc]
DETECTED = InFormat("auto")


def _schema(name: str | None):
    from kpdeliver.codecs.resolve import resolve_schema
    from kpdeliver.schema import SchemaError

    if name is None:
        return None
    try:
        return resolve_schema(name)
    except SchemaError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


@app.command()
def convert(
    input: Path = typer.Argument(
        ...,
        help="Annotation file or folder (COCO, CVAT XML, Label Studio, YOLO folder, Supervisely project).",
    ),
    to: OutFormat = typer.Option(..., "--to", help="Output format."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    schema: str | None = typer.Option(
        None,
        "--schema",
        help="Built-in schema name or schema YAML/CVAT XML path; default: the file's own keypoints.",
    ),
    from_: InFormat = typer.Option(DETECTED, "--from", help="Input format (default: detected)."),
    images: Path | None = typer.Option(
        None,
        "--images",
        help="Folder of the images (for sizes the input lacks; "
        "a YOLO output gets them linked or copied into images/<split>/).",
    ),
    sizes: Path | None = typer.Option(
        None,
        "--sizes",
        help="Image sizes the input lacks: CSV file_name,width,height or JSON {name: [w, h]}.",
    ),
    outside: str = typer.Option(
        "clip", "--outside", help="YOLO: v=1 points outside the frame are 'clip'ped or 'zero'ed."
    ),
    cvat_mode: str = typer.Option("images", "--cvat-mode", help="CVAT output: 'images' or 'video' (tracks)."),
    category: str | None = typer.Option(
        None,
        "--category",
        help="COCO input with several keypoint categories: "
        "the one to convert (default: each into a sub-folder named by it).",
    ),
) -> None:
    """Convert keypoint annotations between formats (nothing is validated or dropped silently)."""
    from kpdeliver.codecs import CodecError

    if outside not in ("clip", "zero"):
        typer.echo("error: --outside must be 'clip' or 'zero'", err=True)
        raise typer.Exit(2)
    fmt = None if from_ is DETECTED else from_.value
    parsed_schema = _schema(schema)
    try:
        with gc_paused():  # no cycles, hundreds of thousands of objects
            _convert_all(
                input,
                out,
                to=to.value,
                schema=parsed_schema,
                fmt=fmt,
                images=images,
                sizes=sizes,
                outside=outside,
                cvat_mode=cvat_mode,
                category=category,
            )
    except (CodecError, ValueError, OSError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


def _convert_all(
    input: Path,
    out: Path,
    *,
    to: str,
    schema,
    fmt,
    images: Path | None,
    sizes: Path | None,
    outside: str,
    cvat_mode: str,
    category: str | None,
) -> None:
    """Convert `input` into `out`; a COCO input with several keypoint categories (and no `category`
    chosen) into one sub-folder per category."""
    from kpdeliver.codecs.coco.categories import SeveralCategories
    from kpdeliver.collect.local import read_size_table

    size_map = read_size_table(sizes) if sizes else None
    try:
        _convert_one(
            input,
            out,
            to=to,
            schema=schema,
            fmt=fmt,
            images=images,
            sizes=size_map,
            outside=outside,
            cvat_mode=cvat_mode,
            category=category,
        )
    except SeveralCategories as several:  # each category is its own schema: one output each
        typer.echo(f"{several}: writing each into a sub-folder of {out}")
        for name in several.categories:
            _convert_one(
                input,
                out / _folder_name(name),
                to=to,
                schema=schema,
                fmt=fmt,
                images=images,
                sizes=size_map,
                outside=outside,
                cvat_mode=cvat_mode,
                category=name,
            )


def _folder_name(category: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", category).strip("._") or "category"


def _convert_one(
    input: Path,
    out: Path,
    *,
    to: str,
    schema,
    fmt,
    images,
    sizes,
    outside: str,
    cvat_mode: str,
    category: str | None,
) -> None:
    """Convert one input (one category) into `out` and print what was written and held back."""
    from kpdeliver.collect.files import read_annotations, write_dataset
    from kpdeliver.collect.non_finite import hold_non_finite
    from kpdeliver.collect.writable import hold_orphans, odd_flags

    decoded = hold_orphans(
        hold_non_finite(
            read_annotations(input, schema=schema, fmt=fmt, images_dir=images, sizes=sizes, category=category)
        )
    )
    flags = odd_flags(decoded.dataset, to)
    if flags.num_rows:
        decoded.merge_findings(flags)
    written = write_dataset(decoded.dataset, out, to=to, outside=outside, cvat_mode=cvat_mode)
    written += _place_yolo_images(decoded, input, out, to=to, images=images)
    _echo_conversion(decoded, flags, input, out, to=to, written=written)


def _place_yolo_images(decoded, input: Path, out: Path, *, to: str, images) -> int:
    """With a YOLO output, put the images into the tree; the number of image files written."""
    from kpdeliver.codecs.yolo_pose import DATA_YAML_NAMES
    from kpdeliver.collect.yolo_tree import place_images

    # a YOLO tree is trained on with its images: the given ones, or a YOLO input's own
    yolo_input = input.is_dir() and any((input / n).is_file() for n in DATA_YAML_NAMES)
    image_src = images or (input if yolo_input else None)
    if to == "yolo" and image_src is not None:
        placed, missing = place_images(decoded.dataset, out, image_src)
        if missing:
            typer.echo(
                f"warning: {plural(len(missing), 'image')} not found under {image_src} (e.g. {missing[0]!r}); "
                "their labels have no image in the tree",
                err=True,
            )
        return len(placed)
    if to == "yolo":
        typer.echo(
            "note: labels only; give --images DIR to put the images into the tree for training", err=True
        )
    return 0


def _echo_conversion(decoded, flags, input: Path, out: Path, *, to: str, written: int) -> None:
    """Print what was converted, unpaired side names, and what was held back or flagged."""
    from kpdeliver.schema import unpaired_side_names

    ds = decoded.dataset
    typer.echo(
        f"{input} -> {out} ({to}): {plural(len(ds.images), 'image')}, {plural(len(ds.instances), 'instance')}, "
        f"schema {ds.schema.name} ({plural(ds.schema.num_keypoints, 'keypoint')}), {plural(written, 'file')} written"
    )
    unpaired = unpaired_side_names(ds.schema)
    if unpaired:
        typer.echo(
            f"warning: left/right names in no flip pair, flip_idx keeps them in place: {unpaired} "
            "(state the pairs as flip_pairs in a schema YAML)"
        )
    if decoded.findings.num_rows or decoded.rejected.num_rows:
        typer.echo(
            f"{plural(decoded.findings.num_rows, 'finding')}, {plural(decoded.rejected.num_rows, 'item')} held back "
            f"(`kpdeliver inspect {input}` lists them)"
        )
        for message in decoded.rejected["reason"].to_pylist()[:10]:
            typer.echo(f"  held back: {message}")
        for message in flags["message"].to_pylist()[:10]:
            typer.echo(f"  warning: {message}")


@app.command()
def inspect(
    path: Path = typer.Argument(..., help="Annotation file or folder."),
    schema: str | None = typer.Option(
        None, "--schema", help="Read against this schema instead of the file's own."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the reports as JSON."),
) -> None:
    """Say which format and schema a file or folder holds, its counts, visibility histogram and oddities."""
    from kpdeliver.collect.inspect import inspect_path

    if not path.exists():
        typer.echo(f"error: {path}: no such file or folder", err=True)
        raise typer.Exit(2)
    reports = inspect_path(path, schema=_schema(schema))
    if as_json:
        import orjson

        typer.echo(orjson.dumps([r.to_dict() for r in reports], option=orjson.OPT_INDENT_2).decode())
    else:
        _print_reports(reports)
    if all(r.error for r in reports):  # refused, as `validate` refuses an unusable input
        if as_json:  # stdout stays JSON; the refusal is said in words on stderr
            for r in reports:
                typer.echo(f"error: {r.path}: cannot read: {r.error}", err=True)
        raise typer.Exit(2)


def _print_reports(reports) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from kpdeliver.cli.output import show_table

    console = Console(soft_wrap=False, highlight=False)
    table = Table(title="kpdeliver inspect")
    for col in ("file", "format", "schema", "K", "images", "instances", "labeled pts", "visibility"):
        table.add_column(col, overflow="fold")
    for r in reports:
        vis = " ".join(f"{k}:{v}" for k, v in r.visibility.items())
        table.add_row(
            Text(r.path),
            r.format,
            r.schema or "-",
            str(r.num_keypoints or "-"),
            str(r.images),
            str(r.instances),
            str(r.labeled_points),
            vis or ("ERROR" if r.error else "-"),
        )
    show_table(console, table)
    for r in reports:
        if r.error:
            console.print(Text.assemble((f"{r.path}: cannot read:", "red"), f" {r.error}"), soft_wrap=True)
        elif r.oddities:
            console.print(Text(r.path, style="bold"), soft_wrap=True)
            for o in r.oddities:
                console.print(f"  - {o}", markup=False, highlight=False)


@app.command()
def schemas() -> None:
    """List the built-in keypoint schemas with their keypoint counts and sources."""
    from rich.console import Console
    from rich.table import Table

    from kpdeliver.cli.output import show_table
    from kpdeliver.schema import BUILTIN_SCHEMAS

    table = Table(title="built-in keypoint schemas")
    for col in ("name", "category", "keypoints", "edges", "left/right pairs", "source"):
        table.add_column(col, overflow="fold")
    for s in BUILTIN_SCHEMAS.values():
        table.add_row(
            s.name, s.category, str(s.num_keypoints), str(len(s.skeleton)), str(len(s.flip_pairs)), s.source
        )
    show_table(Console(highlight=False), table)
    typer.echo("Custom schemas: --schema path/to/schema.yaml, or a CVAT XML whose <meta> defines a skeleton.")
