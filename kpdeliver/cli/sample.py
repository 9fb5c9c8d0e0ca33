"""`kpdeliver sample --config client.yaml --n 50`: the free sample a prospect receives; and
`kpdeliver demo`, a synthetic batch delivered and sampled.

Chooses `n` images that show the range of the batch (`kpdeliver.assign.sample.choose_sample`:
pose clusters, occluded and out-of-frame points, crowd levels, image sizes, the hard cases),
writes them with every annotator's and the gold labels of those images as a batch of their own
under `<work>/sample/<client>/<dataset>-sample/batch-<digest of the chosen images>/` (a fresh folder:
earlier samples' batch folders are removed, so a sample publishes exactly its own images; labels
re-encoded as COCO from the canonical model, and the items refused at decode on those images
written back in their raw form, so the sample holds back and counts them as the batch does),
and runs the whole delivery on it: a release of its own dataset, `<dataset>-sample`, with its
report and sign-off, for the vendor. The prospect's package is built from that release
(`kpdeliver.report.sample_package`): `<out>/index.html` (the sample page), `coco/sample.json` and
the YOLO tree, with no annotator name, verdict or internal path.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import typer
from rich.table import Table

from kpdeliver.cli.delivery import console, print_summary, run_delivery
from kpdeliver.cli.output import fail, load_checked_config, show_table

if TYPE_CHECKING:
    from kpdeliver.release.result import DeliveryResult

app = typer.Typer()

SAMPLE_SUFFIX = "-sample"


def sample_dataset_name(dataset: str) -> str:
    """`<dataset>-sample`, within the 63 characters a dataset name may have."""
    return dataset[: 63 - len(SAMPLE_SUFFIX)] + SAMPLE_SUFFIX


def fresh_batch_folder(parent: Path, digest: str) -> Path:
    """`<parent>/batch-<digest>`, empty: the batch folders of earlier samples (and anything left in this
    one by an interrupted run) are removed, so a sample publishes exactly its own images."""
    for old in parent.glob("batch*") if parent.is_dir() else ():
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink()
    folder = parent / f"batch-{digest}"
    folder.mkdir(parents=True)
    return folder


def refused_items(rejected, who: str, image_ids: np.ndarray) -> list[dict]:
    """`who`'s items refused at decode on the sample's images, as COCO annotations that are refused again
    for the same reason: a COCO item as it came in, on its image's sample id; any other raw form
    (XML, a text line) kept under `refused_raw`, without keypoints."""
    import orjson

    out = []
    for row in rejected.to_pylist():
        if row["annotator"] != who or row["image_id"] is None or row["image_id"] not in image_ids:
            continue
        try:
            raw = orjson.loads(row["raw"] or "null")
        except orjson.JSONDecodeError:
            raw = None
        item = (
            raw
            if isinstance(raw, dict)
            else {"id": row["annotation_id"], "category_id": 1, "refused_raw": row["raw"]}
        )
        out.append({**item, "image_id": int(row["image_id"])})
    return out


def write_sample_batch(store, collected, file_names: list[str], folder: Path) -> None:
    """The chosen images and their labels as a batch: images/…, annotations/<annotator>/sample.json,
    gold/sample.json; the items refused at decode on those images are written back in."""
    import orjson

    from kpdeliver.codecs.coco.encoder import encode
    from kpdeliver.storage import LocalStore

    out = LocalStore(str(folder))
    ds = collected.dataset
    chosen = np.isin(ds.images.file_name, file_names)
    images = ds.images.take(np.flatnonzero(chosen))
    for name, key in zip(images.file_name.tolist(), images.source.tolist(), strict=True):
        out.put(f"images/{name}", store.get(key))
    people = sorted(
        set(ds.instances.annotator.tolist())
        | set(collected.rejected["annotator"].to_pylist()) - {None, "gold"}
    )
    for who, labels in [(a, ds) for a in people] + (
        [("gold", collected.gold)] if collected.gold is not None else []
    ):
        ins = labels.instances
        mine = np.isin(ins.image_id, images.id) & ((ins.annotator == who) if who != "gold" else True)
        refused = refused_items(collected.rejected, who, images.id)
        if mine.any() or refused:
            doc = orjson.loads(
                encode(labels.replace(images=images, instances=ins.take(np.flatnonzero(mine))))
            )
            doc["annotations"] += refused
            out.put(f"{'gold' if who == 'gold' else f'annotations/{who}'}/sample.json", orjson.dumps(doc))


@app.command()
def demo(
    work: Path = typer.Option(Path(".work/demo"), help="where the synthetic batch and releases go"),
    seed: int = typer.Option(0, help="seed of the synthetic batch"),
    images: int | None = typer.Option(None, help="number of images (default: the generator's)"),
    sample: int = typer.Option(
        12,
        "--sample",
        min=0,
        help="images of the free sample made after the delivery "
        "(its release and the prospect's package); 0: none",
    ),
) -> None:
    """Generate a synthetic client batch with realistic annotator mistakes, deliver it and make its free sample."""
    from kpdeliver.synth import make_demo_batch

    root = work.resolve()
    if images:
        make_demo_batch(root, seed=seed, n_images=images)
    else:
        make_demo_batch(root, seed=seed)
    cfg = load_checked_config(root / "client.yaml")
    console.print(f"synthetic batch written to {cfg.source}")
    summary = run_delivery(cfg, root)
    print_summary(summary)
    if sample:  # a process of its own: a second flow in this one would leave Prefect's event client
        # talking to the first run's stopped API server until it gives up
        import subprocess
        import sys

        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "from kpdeliver.cli import main; main()",
                "sample",
                "--config",
                str(root / "client.yaml"),
                "--n",
                str(sample),
                "--seed",
                str(seed),
                "--work",
                str(root),
            ],
            check=False,
        )
        if done.returncode:
            raise typer.Exit(done.returncode)


def sample_package_folder(work: Path, client: str, dataset: str) -> Path:
    """Where the prospect's package goes by default: `<work>/sample/<client>/<dataset>-sample/package/`."""
    return work / "sample" / client / sample_dataset_name(dataset) / "package"


@app.command()
def sample(
    config: Path = typer.Option(..., "--config", "-c", help="client YAML"),
    n: int = typer.Option(50, "--n", min=1, help="how many images the sample holds (at most)"),
    seed: int = typer.Option(0, "--seed", help="the same seed chooses the same images"),
    work: Path = typer.Option(
        Path(".work"), help="folder for the sample batch, Prefect's home and temporary files"
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="folder of the prospect's package (default: <work>/sample/<client>/<dataset>-sample/package)",
    ),
) -> None:
    """Choose a sample of the batch that shows its range, deliver it as `<dataset>-sample` and write the
    prospect's package: the sample page, COCO JSON and the YOLO tree."""
    make_sample(load_checked_config(config), n=n, seed=seed, work=work, out=out)


def make_sample(cfg, *, n: int, seed: int, work: Path, out: Path | None = None) -> Path:
    """The sample release and the prospect's package of `cfg`'s batch; the sample page's path."""
    from kpdeliver.assign.sample import choose_sample
    from kpdeliver.codecs.resolve import resolve_schema
    from kpdeliver.collect.exports import collect_exports
    from kpdeliver.ingest.batch import ingest_images
    from kpdeliver.model import Dataset, Instances
    from kpdeliver.storage import open_store

    store = open_store(cfg.source, cfg.storage.model_dump(exclude_none=True))
    schema = resolve_schema(cfg.schema_name)
    with console.status("reading the batch and choosing the sample…"):
        images = ingest_images(store).images
        collected = collect_exports(
            store, Dataset(schema, images, Instances.empty(schema.num_keypoints)), cfg.annotators
        )
        if not len(collected.dataset.instances):
            fail(f"no labels found under {cfg.source}/annotations/: a sample is chosen by its poses")
        choice = choose_sample(collected.dataset, n, seed=seed, gold=collected.gold)
        name = sample_dataset_name(cfg.dataset)
        folder = fresh_batch_folder((work / "sample" / cfg.client / name).resolve(), choice.digest)
        write_sample_batch(store, collected, choice.file_names, folder)
    t = Table(title=f"sample of {cfg.client}/{cfg.dataset}: {len(choice.file_names)} of {len(images)} images")
    for col in ("what", "images in the sample", "images in the batch"):
        t.add_column(col, justify="left" if col == "what" else "right")
    for tag, count in choice.tags.items():
        t.add_row(tag, str(count), str(choice.batch_tags[tag]))
    show_table(console, t)
    chosen = set(choice.file_names)
    sample_cfg = cfg.model_copy(
        update={
            "dataset": name,
            "source": str(folder),
            "assignment": cfg.assignment.model_copy(
                update={"gold": [g for g in cfg.assignment.gold if g in chosen]}
            ),
        }
    )
    summary = run_delivery(sample_cfg, work)
    print_summary(summary)
    return write_package(
        sample_cfg,
        summary,
        choice,
        n_batch=len(images),
        schema=schema,
        folder=folder,
        out=(out or sample_package_folder(work, cfg.client, cfg.dataset)).resolve(),
        client=cfg.client,
        dataset=cfg.dataset,
    )


def write_package(
    sample_cfg,
    summary: DeliveryResult,
    choice,
    *,
    n_batch: int,
    schema,
    folder: Path,
    out: Path,
    client: str,
    dataset: str,
) -> Path:
    """The prospect's package of the published sample release, in a fresh folder `out`."""
    from kpdeliver.release.layout import release_prefix
    from kpdeliver.report.sample_package import build_sample_package
    from kpdeliver.storage import LocalStore, open_store

    if out.is_dir() and not out.is_symlink():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    releases = open_store(sample_cfg.releases, sample_cfg.storage.model_dump(exclude_none=True))
    page = build_sample_package(
        release=releases,
        prefix=release_prefix(sample_cfg.client, sample_cfg.dataset, summary.version),
        batch=LocalStore(str(folder)),
        out=LocalStore(str(out)),
        schema=schema,
        choice=choice,
        n_batch=n_batch,
        client=client,
        dataset=dataset,
    )
    console.print(f"sample page: {out / page}")
    console.print(f"sample package (COCO JSON, YOLO tree): {out}")
    return out / page
