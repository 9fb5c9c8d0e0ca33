"""Push a batch's work to Label Studio: one project per annotator.

Open-source Label Studio has users but no per-task assignment (that is an Enterprise feature),
so an assignment becomes a project: `{client}/{dataset} — {annotator}` (the title template of
the `tool:` config) holds exactly the images `assign_annotators` gives that annotator — their
primary images, their overlap second opinions and every gold image. Annotators see only their
own project when the admin shares it with them; nobody can label someone else's copy by mistake.

Images are served by a local-files import storage: the server's LOCAL_FILES_DOCUMENT_ROOT is
the batch folder's parent (or `tool.document_root`), and each task references
`/data/local-files/?d=<batch>/images/<file>`. The storage is connected, not synced: kpdeliver
imports the tasks itself so each task's data carries the batch file name (`file_name`), which
is the key that makes a push idempotent — a second push adds only images that have no task yet
and changes nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import quote

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
        return bool(self.created or self.config_updated or self.storage_created or self.tasks_added or self.tasks_updated)


def local_files_ref(file_name: str, *, batch_dir: Path, document_root: Path) -> str:
    """The task data URL Label Studio serves a batch image under."""
    rel = (batch_dir / "images" / file_name).relative_to(document_root).as_posix()
    return f"/data/local-files/?d={quote(rel, safe='/')}"


def batch_dirs(config: ClientConfig) -> tuple[Path, Path]:
    """(batch folder, document root); only local batches can be served as local files."""
    if "://" in config.source:
        raise ToolError(f"source {config.source} is not a local folder: kpdeliver pushes local batches to Label Studio "
                        "through local-files storage only (S3 import storage is not supported yet)")
    batch = Path(config.source).resolve()
    root = Path(config.tool.document_root).resolve() if config.tool and config.tool.document_root else batch.parent
    if not batch.is_relative_to(root):
        raise ToolError(f"batch folder {batch} is not under the document root {root} (LOCAL_FILES_DOCUMENT_ROOT)")
    return batch, root


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


def push_annotator(client: LabelStudioClient, config: ClientConfig, annotator: str, mine: pa.Table, *,
                   label_config: str, description: str, batch: Path, root: Path,
                   prelabels: dict[str, list[dict]]) -> ProjectPush:
    """Create or update one annotator's project so it holds exactly their assigned images."""
    title = config.tool.project_title(client=config.client, dataset=config.dataset, annotator=annotator)
    project = client.project_by_title(title)
    report = ProjectPush(annotator, project.id if project else -1, title)
    if project is None:
        project = client.create_project(title, label_config, description)
        report.project, report.created = project.id, True
    elif project.label_config.strip() != label_config.strip():
        client.update_project(project.id, label_config=label_config, description=description)
        report.config_updated = True

    images_dir = str(batch / "images")
    if not any(s.get("path") == images_dir for s in client.local_storages(project.id)):
        client.create_local_storage(project.id, images_dir, title=f"{config.client}/{config.dataset} images")
        report.storage_created = True

    existing = {t["data"]["file_name"]: t for t in client.tasks(project.id)
                if isinstance(t.get("data"), dict) and isinstance(t["data"].get("file_name"), str)}
    wanted = dict(zip(mine["file_name"].to_pylist(), mine["role"].to_pylist()))
    new = []
    for name, role in sorted(wanted.items()):
        task = existing.get(name)
        if task is None:
            item = {"data": {"image": local_files_ref(name, batch_dir=batch, document_root=root),
                             "file_name": name, "role": role}}
            if name in prelabels:
                item["predictions"] = [{"model_version": PRELABEL_VERSION, "result": prelabels[name]}]
                report.predictions += 1
            new.append(item)
        elif task["data"].get("role") != role:
            client.update_task_data(task["id"], {**task["data"], "role": role})
            report.tasks_updated += 1
        else:
            report.tasks_kept += 1
    report.tasks_added = client.import_tasks(project.id, new)
    report.not_assigned_any_more = sorted(n for n in existing if n not in wanted)
    return report


def push_batch(client: LabelStudioClient, config: ClientConfig, assignments: pa.Table, *, schema: KeypointSchema,
               prelabels: Dataset | None = None) -> list[ProjectPush]:
    """Push every annotator's assignment (`assign_annotators` rows) to their project;
    `prelabels` (on the batch's images, see `prelabels_on_batch`) become predictions of new tasks."""
    if config.tool is None:
        raise ToolError("the client config has no tool: section")
    batch, root = batch_dirs(config)
    label_config = labeling_config(schema)
    description = project_description(schema, batch=f"{config.client}/{config.dataset} ({PurePosixPath(batch).name})")
    regions = _prelabel_results(prelabels)
    return [push_annotator(client, config, a, assignments.filter(pc.equal(assignments["annotator"], a)),
                           label_config=label_config, description=description, batch=batch, root=root,
                           prelabels=regions)
            for a in config.annotators]
