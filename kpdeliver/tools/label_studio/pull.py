"""Pull annotators' finished work from Label Studio into the batch, as file exports.

Each annotator project is exported as a snapshot (annotations, drafts and annotators in full).
Only finished annotations count — submitted, not skipped (`was_cancelled`); drafts and skipped
tasks are counted in the report and left in the tool. Each annotation's `completed_by` e-mail is
mapped to an annotator through `tool.users`, and the work is written to
`annotations/<annotator>/label-studio-<project id>.json`, so collect, validation and deep QA
read it exactly like an export someone dropped there by hand.

What is written keeps the tool's ids for the audit trail: the task id is the export's image id
(collect keeps it as `source_image_id`), and each box gets the id `kp-<annotation id × 1000 +
box number>` (collect keeps it as `source_id`; the region's own id stays in `ls_id`). Image
references become the batch file name stored in the task data, the form collect matches.

A pull is repeatable: files are written only when their bytes change (every file is put
atomically, and only after every project was exported, so a killed pull leaves each file whole,
old or new), and a file whose project has no finished work left is removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlparse

from kpdeliver.collect.exports import ANNOTATIONS_PREFIX
from kpdeliver.config import ClientConfig
from kpdeliver.storage import ObjectStore
from kpdeliver.tools.label_studio.client import LabelStudioClient, ToolError
from kpdeliver.tools.label_studio.rework import rework_projects
from kpdeliver.tools.label_studio.untrusted import dump_json, objects, positive_id

EXPORT_NAME = re.compile(r"^label-studio-(\d+)\.json$")
BOX_ID_BASE = 1000  # boxes per annotation that ids can tell apart


@dataclass
class ProjectPull:
    annotator: str
    title: str
    project: int = -1
    finished: int = 0
    skipped: int = 0
    drafts: int = 0
    unmapped: dict[str, int] = field(default_factory=dict)  # e-mail -> finished annotations not used


@dataclass
class PullReport:
    projects: list[ProjectPull]
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.written or self.removed)


def export_key(annotator: str, project: int) -> str:
    return f"{ANNOTATIONS_PREFIX}{annotator}/label-studio-{project}.json"


def batch_file_name(data: dict) -> str:
    """The batch file name of a task: `file_name` as kpdeliver pushed it, else recovered from a
    local-files URL (`?d=<batch>/images/<file>`) or an upload (`/data/upload/<n>/<8hex>-<file>`)."""
    if isinstance(data.get("file_name"), str):
        return data["file_name"]
    ref = str(data.get("image", ""))
    if "/data/local-files/" in ref:
        path = unquote(parse_qs(urlparse(ref).query).get("d", [""])[0])
        return path.split("/images/", 1)[1] if "/images/" in path else path.rsplit("/", 1)[-1]
    m = re.search(r"/data/upload/\d+/[0-9a-f]{8}-(.+)$", ref)
    return unquote(m.group(1)) if m else ref


def _email(by) -> str:
    return str(by.get("email", "")).strip().lower() if isinstance(by, dict) else ""


def audit_regions(result: list, annotation_id: int) -> list[dict]:
    """The result with each box renamed `kp-<annotation id × 1000 + n>` (children, choices and
    relations follow), the tool's region id kept in `ls_id`."""
    boxes = [r for r in result if isinstance(r, dict) and r.get("type") == "rectanglelabels"]
    rename = {str(b.get("id")): f"kp-{annotation_id * BOX_ID_BASE + n}" for n, b in enumerate(boxes, 1)}
    out = []
    for r in result:
        if not isinstance(r, dict):
            continue
        r = dict(r)
        if r.get("type") == "rectanglelabels" or (r.get("type") == "choices" and str(r.get("id")) in rename):
            r["ls_id"], r["id"] = r.get("id"), rename.get(str(r.get("id")), r.get("id"))
        for ref in ("parentID", "from_id", "to_id"):
            if str(r.get(ref)) in rename:
                r[ref] = rename[str(r[ref])]
        out.append(r)
    return out


def split_by_annotator(
    tasks: list[dict], users: dict[str, str], report: ProjectPull
) -> dict[str, list[dict]]:
    """annotator -> tasks holding only that annotator's finished annotations."""
    by_who: dict[str, list[dict]] = {}
    tasks = objects(tasks)
    for task in sorted(tasks, key=lambda t: positive_id(t.get("id"), "a task id")):
        data = task["data"] if isinstance(task.get("data"), dict) else {}
        report.drafts += len(objects(task.get("drafts")))
        name = batch_file_name(data)
        mine: dict[str, list[dict]] = {}
        for ann in objects(task.get("annotations")):
            if ann.get("was_cancelled"):
                report.skipped += 1
                continue
            email = _email(ann.get("completed_by"))
            who = users.get(email)
            if who is None:
                report.unmapped[email or "(no e-mail)"] = report.unmapped.get(email or "(no e-mail)", 0) + 1
                continue
            report.finished += 1
            ann_id = positive_id(ann.get("id"), f"task {task['id']}: an annotation id")
            mine.setdefault(who, []).append(
                {
                    "id": ann_id,
                    "completed_by": {"email": email},
                    "updated_at": ann.get("updated_at"),
                    "ground_truth": bool(ann.get("ground_truth")),
                    "result": audit_regions(objects(ann.get("result")), ann_id),
                }
            )
        for who, anns in mine.items():
            by_who.setdefault(who, []).append(
                {
                    "id": task["id"],
                    "annotations": anns,
                    "data": {
                        "image": name,
                        "file_name": name,
                        "ls_image": data.get("image"),
                        "role": data.get("role"),
                    },
                }
            )
    return by_who


def pull_batch(client: LabelStudioClient, config: ClientConfig, store: ObjectStore) -> PullReport:
    """Export every annotator project of the config and write the finished work into the batch."""
    if config.tool is None:
        raise ToolError("the client config has no tool: section")
    report = PullReport([])
    files: dict[str, bytes] = {}
    pulled: set[int] = set()
    for annotator in config.annotators:
        title = config.tool.project_title(client=config.client, dataset=config.dataset, annotator=annotator)
        entry = ProjectPull(annotator, title)
        report.projects.append(entry)
        project = client.project_by_title(title)
        if project is None:
            continue  # nothing pushed for this annotator yet; the report shows project -1
        entry.project = project.id
        pulled.add(project.id)
        for who, tasks in split_by_annotator(
            client.export_snapshot(project.id), config.tool.users, entry
        ).items():
            files[export_key(who, project.id)] = dump_json(tasks)
    for annotator, project, key_of in rework_projects(
        client, config
    ):  # rework rounds: tools/label_studio/rework.py
        entry = ProjectPull(annotator, project.title, project.id)
        report.projects.append(entry)
        pulled.add(project.id)
        for who, tasks in split_by_annotator(
            client.export_snapshot(project.id), config.tool.users, entry
        ).items():
            files[key_of(who)] = dump_json(tasks)

    for key, data in sorted(files.items()):
        if store.exists(key) and store.get(key) == data:
            report.unchanged.append(key)
        else:
            store.put(key, data)
            report.written.append(key)
    for key in store.list(ANNOTATIONS_PREFIX):
        m = EXPORT_NAME.match(key.rsplit("/", 1)[-1])
        if m and int(m.group(1)) in pulled and key not in files:
            store.delete(key)
            report.removed.append(key)
    return report
