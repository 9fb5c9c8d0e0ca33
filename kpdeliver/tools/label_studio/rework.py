"""Rework in Label Studio: one rework project per annotator and round.

`{annotator's project title} — rework r0001` holds the images of that round going back to that
annotator, served by the same storage as their project (local-files for a batch folder, S3 with
presigned URLs for a batch on `s3://`, validated by the server first, as `push` does). Each task carries their own
labels as a prediction (they accept or edit it) and the finding's words as `data.rework`, shown
above the image by a `Header` in the labeling config. `kpdeliver pull` exports these projects
too, into `annotations/<annotator>/rework/<round>/`, where collect takes the reworked labels in
place of the annotator's earlier labels of those images.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from kpdeliver.codecs.label_studio.encoder import encode as ls_encode
from kpdeliver.config import ClientConfig
from kpdeliver.model import Dataset
from kpdeliver.rework.packages import annotator_labels, texts_by_image
from kpdeliver.schema import KeypointSchema
from kpdeliver.tools.label_studio.client import LabelStudioClient, Project, ToolError
from kpdeliver.tools.label_studio.labeling_config import labeling_config, project_description
from kpdeliver.tools.label_studio.push import checked_images, connect_images, image_task

REWORK_VERSION = "kpdeliver-rework"
_ROUND = re.compile(r"^r\d{4,}$")


@dataclass
class ReworkPush:
    annotator: str
    project: int
    title: str
    tasks_added: int = 0


def rework_title(config: ClientConfig, annotator: str, round_: str) -> str:
    assert config.tool is not None
    return f"{config.tool.project_title(client=config.client, dataset=config.dataset, annotator=annotator)} — rework {round_}"


def rework_labeling_config(schema: KeypointSchema) -> str:
    """The annotator's labeling config with the finding's words (`$rework`) above the image."""
    return labeling_config(schema).replace("<View>\n", '<View>\n  <Header value="$rework"/>\n', 1)


def _predictions(part: Dataset) -> dict[str, list[dict]]:
    """file name -> the annotator's labels as prediction regions (what the codec reads back)."""
    if not len(part.instances):
        return {}
    tasks = orjson.loads(ls_encode(part, as_predictions=True, model_version=REWORK_VERSION))
    return {t["data"]["image"]: t["predictions"][0]["result"] for t in tasks if t["predictions"][0]["result"]}


def push_rework(
    client: LabelStudioClient, config: ClientConfig, labels: Dataset, items: pa.Table, round_: str
) -> list[ReworkPush]:
    """A rework project per annotator of `items` (ITEM_SCHEMA) for this round, with their labels
    preloaded and the finding's words on each task. A task already in the project is not added again."""
    if config.tool is None:
        raise ToolError("the client config has no tool: section")
    label_config = rework_labeling_config(labels.schema)
    images = checked_images(client, config, label_config)
    out = []
    for annotator in sorted(set(items["annotator"].to_pylist())):
        mine = items.filter(pc.equal(items["annotator"], annotator))
        names = sorted(set(mine["file_name"].to_pylist()))
        title = rework_title(config, annotator, round_)
        project = client.project_by_title(title) or client.create_project(
            title,
            label_config,
            project_description(
                labels.schema,
                batch=f"{config.client}/{config.dataset} rework {round_}: fix what each task says",
            ),
        )
        connect_images(client, config, images, project.id)
        have = {
            t["data"].get("file_name") for t in client.tasks(project.id) if isinstance(t.get("data"), dict)
        }
        texts, regions = texts_by_image(mine), _predictions(annotator_labels(labels, annotator, names))
        new = [
            image_task(
                images,
                name,
                role="rework",
                regions=regions.get(name),
                model_version=REWORK_VERSION,
                rework=texts[name],
            )
            for name in names
            if name not in have
        ]
        out.append(ReworkPush(annotator, project.id, title, client.import_tasks(project.id, new)))
    return out


def rework_projects(
    client: LabelStudioClient, config: ClientConfig
) -> Iterator[tuple[str, Project, Callable[[str], str]]]:
    """(annotator, rework project, export key of a person's work in it) for every rework round in the tool."""
    projects = client.projects()
    for annotator in config.annotators:
        prefix = rework_title(config, annotator, "")
        for project in sorted(projects, key=lambda p: p.title):
            round_ = project.title[len(prefix) :] if project.title.startswith(prefix) else ""
            if _ROUND.match(round_):
                yield annotator, project, partial(rework_export_key, round_=round_, project=project.id)


def rework_export_key(who: str, *, round_: str, project: int) -> str:
    """Where pull writes a person's work in a rework project: collect takes it as rework of that round."""
    return f"annotations/{who}/rework/{round_}/label-studio-{project}.json"
