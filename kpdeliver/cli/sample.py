"""`kpdeliver sample --config client.yaml --n 50`: the free sample a prospect receives.

Chooses `n` images that show the range of the batch (`kpdeliver.assign.sample.choose_sample`:
pose clusters, occluded and out-of-frame points, crowd levels, image sizes, the hard cases),
writes them with every annotator's and the gold labels of those images as a batch of their own
under `<work>/sample/<client>/<dataset>-sample/batch-<digest of the chosen images>/` (a fresh folder:
earlier samples' batch folders are removed, so a sample publishes exactly its own images; labels
re-encoded as COCO from the canonical model, so items refused at decode are not in the sample),
and runs the whole delivery
on it: a release of its own dataset, `<dataset>-sample`, with its report and sign-off.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import typer
from rich.table import Table

from kpdeliver.cli.delivery import console, print_summary, run_delivery
from kpdeliver.cli.output import fail, load_checked_config, show_table

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


def write_sample_batch(store, collected, file_names: list[str], folder: Path) -> None:
    """The chosen images and their labels as a batch: images/…, annotations/<annotator>/sample.json,
    gold/sample.json."""
    from kpdeliver.codecs import coco
    from kpdeliver.storage import LocalStore

    out = LocalStore(str(folder))
    ds = collected.dataset
    chosen = np.isin(ds.images.file_name, file_names)
    images = ds.images.take(np.flatnonzero(chosen))
    for name, key in zip(images.file_name.tolist(), images.source.tolist()):
        out.put(f"images/{name}", store.get(key))
    for who, labels in [(a, ds) for a in sorted(set(ds.instances.annotator.tolist()))] + \
            ([("gold", collected.gold)] if collected.gold is not None else []):
        ins = labels.instances
        mine = np.isin(ins.image_id, images.id) & ((ins.annotator == who) if who != "gold" else True)
        if mine.any():
            part = labels.replace(images=images, instances=ins.take(np.flatnonzero(mine)))
            out.put(f"{'gold' if who == 'gold' else f'annotations/{who}'}/sample.json", coco.encode(part))


@app.command()
def sample(
    config: Path = typer.Option(..., "--config", "-c", help="client YAML"),
    n: int = typer.Option(50, "--n", min=1, help="how many images the sample holds (at most)"),
    seed: int = typer.Option(0, "--seed", help="the same seed chooses the same images"),
    work: Path = typer.Option(Path(".work"), help="folder for the sample batch, Prefect's home and temporary files"),
) -> None:
    """Choose a sample of the batch that shows its range and deliver it as `<dataset>-sample`."""
    from kpdeliver.assign.sample import choose_sample
    from kpdeliver.codecs.resolve import resolve_schema
    from kpdeliver.collect.exports import collect_exports
    from kpdeliver.ingest.batch import ingest_images
    from kpdeliver.model import Dataset, Instances
    from kpdeliver.storage import open_store

    cfg = load_checked_config(config)  # every problem at once, the source included
    store = open_store(cfg.source, cfg.storage.model_dump(exclude_none=True))
    schema = resolve_schema(cfg.schema_name)
    with console.status("reading the batch and choosing the sample…"):
        images = ingest_images(store).images
        collected = collect_exports(store, Dataset(schema, images, Instances.empty(schema.num_keypoints)), cfg.annotators)
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
    sample_cfg = cfg.model_copy(update={
        "dataset": name, "source": str(folder),
        "assignment": cfg.assignment.model_copy(update={"gold": [g for g in cfg.assignment.gold if g in chosen]})})
    print_summary(run_delivery(sample_cfg, work))
