"""Push a batch's work to Label Studio: one project per annotator.

Open-source Label Studio has users but no per-task assignment (that is an Enterprise feature),
so an assignment becomes a project: `{client}/{dataset} — {annotator}` (the title template of
the `tool:` config) holds exactly the images `assign_annotators` gives that annotator — their
primary images, their overlap second opinions and every gold image. Each project's title names
its annotator, so nobody labels someone else's copy by mistake. It is no access control: in
Label Studio Community every member of the organisation sees and can open every project;
restricting who sees what takes Enterprise workspaces and roles (docs/label-studio.md).

Images are read by an import storage (`storage.py`): local-files for a batch folder (under the
server's LOCAL_FILES_DOCUMENT_ROOT, checked with the server before any project is created), S3
for a batch on `s3://` (presigned URLs, credentials from the environment). The storage is
connected, not synced: kpdeliver imports the tasks itself so each task's data carries the batch
file name (`file_name`), which is the key that makes a push idempotent — a second push adds only
images that have no task yet and changes nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from kpdeliver.codecs import label_studio as ls_codec
from kpdeliver.collect.exports import rekey_onto_batch
from kpdeliver.config import ClientConfig
from kpdeliver.model import Dataset
from kpdeliver.schema import KeypointSchema
from kpdeliver.tools.label_studio.client import LabelStudioClient, ToolError
from kpdeliver.tools.label_studio.labeling_config import labeling_config, project_description
from kpdeliver.tools.label_studio.storage import BatchImages, batch_dirs, batch_images, local_files_ref

__all__ = [
    "PRELABEL_VERSION",
    "ProjectPush",
    "batch_dirs",
    "checked_images",
    "connect_images",
    "image_task",
    "local_files_ref",
    "prelabels_on_batch",
    "push_annotator",
    "push_batch",
]

PRELABEL_VERSION = "kpdeliver-prelabels"


@dataclass
class ProjectPush:
    annotator: str
    project: int
    title: str
    created: bool = False
    config_updated: bool = False
    storage_created: bool = False
    tasks_added: int = 0
    tasks_updated: int = 0  # role of an image changed (e.g. it became gold)
    tasks_kept: int = 0
    predictions: int = 0
    not_assigned_any_more: list[str] = field(default_factory=list)  # left in the tool, never deleted

    @property
    def changed(self) -> bool:
        return bool(
            self.created
            or self.config_updated
            or self.storage_created
            or self.tasks_added
            or self.tasks_updated
        )


def prelabels_on_batch(labels: Dataset, batch: Dataset, *, source: str) -> Dataset:
    """Pre-labels from any export, moved onto the batch's images (matched by file name the way
    collect matches exports); instances on images the batch does not have are dropped."""
    ins = rekey_onto_batch(labels, batch, source=source)
    return batch.replace(instances=ins.take(np.flatnonzero(ins.image_id >= 0)))


def _prelabel_results(prelabels: Dataset | None) -> dict[str, list[dict]]:
    """file name -> prediction regions (the codec's encoding, so decode reads them back)."""
    if prelabels is None or not len(prelabels.instances):
        return {}
    tasks = orjson.loads(ls_codec.encode(prelabels, as_predictions=True, model_version=PRELABEL_VERSION))
    return {t["data"]["image"]: t["predictions"][0]["result"] for t in tasks if t["predictions"][0]["result"]}


def connect_images(
    client: LabelStudioClient, config: ClientConfig, images: BatchImages, project: int
) -> bool:
    """Connect the batch's storage (local-files or S3) to a project unless it is; True when created."""
    return images.connect(client, project, title=f"{config.client}/{config.dataset} images")


def image_task(
    images: BatchImages,
    name: str,
    *,
    role: str,
    regions: list[dict] | None = None,
    model_version: str = PRELABEL_VERSION,
    **data: str,
) -> dict:
    """A new task of a batch image as the storage serves it (`file_name` is the key pull and
    collect read), with `regions` as a prediction and `data`'s extra fields."""
    task: dict = {"data": {"image": images.ref(name), "file_name": name, "role": role, **data}}
    if regions:
        task["predictions"] = [{"model_version": model_version, "result": regions}]
    return task


def push_annotator(
    client: LabelStudioClient,
    config: ClientConfig,
    annotator: str,
    mine: pa.Table,
    *,
    label_config: str,
    description: str,
    images: BatchImages,
    prelabels: dict[str, list[dict]],
) -> ProjectPush:
    """Create or update one annotator's project so it holds exactly their assigned images."""
    if config.tool is None:
        raise ToolError("the client config has no tool: section")
    title = config.tool.project_title(client=config.client, dataset=config.dataset, annotator=annotator)
    project = client.project_by_title(title)
    report = ProjectPush(annotator, project.id if project else -1, title)
    if project is None:
        project = client.create_project(title, label_config, description)
        report.project, report.created = project.id, True
    elif project.label_config.strip() != label_config.strip():
        client.update_project(project.id, label_config=label_config, description=description)
        report.config_updated = True

    report.storage_created = connect_images(client, config, images, project.id)

    existing = {
        t["data"]["file_name"]: t
        for t in client.tasks(project.id)
        if isinstance(t.get("data"), dict) and isinstance(t["data"].get("file_name"), str)
    }
    wanted = dict(zip(mine["file_name"].to_pylist(), mine["role"].to_pylist()))
    new = []
    for name, role in sorted(wanted.items()):
        task = existing.get(name)
        if task is None:
            new.append(image_task(images, name, role=role, regions=prelabels.get(name)))
            report.predictions += bool(prelabels.get(name))
        elif task["data"].get("role") != role:
            # the image as pushed: the task list shows it resolved (an S3 task's as a server URL)
            client.update_task_data(task["id"], {**task["data"], "image": images.ref(name), "role": role})
            report.tasks_updated += 1
        else:
            report.tasks_kept += 1
    report.tasks_added = client.import_tasks(project.id, new)
    report.not_assigned_any_more = sorted(n for n in existing if n not in wanted)
    return report


def push_batch(
    client: LabelStudioClient,
    config: ClientConfig,
    assignments: pa.Table,
    *,
    schema: KeypointSchema,
    prelabels: Dataset | None = None,
) -> list[ProjectPush]:
    """Push every annotator's assignment (`assign_annotators` rows) to their project;
    `prelabels` (on the batch's images, see `prelabels_on_batch`) become predictions of new tasks."""
    if config.tool is None:
        raise ToolError("the client config has no tool: section")
    label_config = labeling_config(schema)
    images = checked_images(client, config, label_config)
    batch_name = PurePosixPath(config.source.rstrip("/")).name
    description = project_description(schema, batch=f"{config.client}/{config.dataset} ({batch_name})")
    regions = _prelabel_results(prelabels)
    return [
        push_annotator(
            client,
            config,
            a,
            assignments.filter(pc.equal(assignments["annotator"], a)),
            label_config=label_config,
            description=description,
            images=images,
            prelabels=regions,
        )
        for a in config.annotators
    ]


def checked_images(client: LabelStudioClient, config: ClientConfig, label_config: str) -> BatchImages:
    """The batch's images as the server will read them, validated by the server before any
    project is created: an existing project of this batch (else any project) carries the
    validation; on an empty server a scratch project does and is removed again."""
    images = batch_images(config)
    titles = (
        {
            config.tool.project_title(client=config.client, dataset=config.dataset, annotator=a)
            for a in config.annotators
        }
        if config.tool
        else set()
    )
    projects = client.projects()
    probe = next((p for p in projects if p.title in titles), projects[0] if projects else None)
    if probe is not None:
        return images.check(client, probe.id)
    scratch = client.create_project("kpdeliver storage check (removed at once)", label_config)
    try:
        return images.check(client, scratch.id)
    finally:
        client.delete_project(scratch.id)
