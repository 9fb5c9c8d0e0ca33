"""A small REST client for the parts of Label Studio's API kpdeliver drives (checked against
Label Studio 1.23): projects, local-files import storage, task import, predictions, and
snapshot exports. Plain httpx, no SDK: the SDK pulls the whole Label Studio model layer.

Nothing a server answers is trusted (`untrusted`): its text is cleaned before a person sees it,
the ids it gives are checked before they go into a URL, and NaN in its JSON is read, not a crash.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from kpdeliver.tools.label_studio.untrusted import REDACTED, ToolError, load_json, objects, positive_id, shown

# A snapshot export with predictions and annotators in full (the plain export gives ids only).
FULL_SERIALIZATION = {
    "predictions": {"only_id": False},
    "annotations__completed_by": {"only_id": False},
    "drafts": {"only_id": False},
}


def _hidden(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def _reason(body: bytes) -> str:
    """The messages of a DRF error answer (`validation_errors`, else `detail`), else its text."""
    try:
        doc = load_json(body)
    except ValueError:
        return body.decode(errors="replace")
    if not isinstance(doc, dict):
        return body.decode(errors="replace")
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(doc.get("validation_errors") or doc.get("detail"))
    return " ".join(found) or body.decode(errors="replace")


@dataclass(frozen=True)
class Project:
    id: int
    title: str
    label_config: str


class LabelStudioClient:
    """One authenticated session with a Label Studio server."""

    def __init__(
        self, url: str, token: str, *, timeout: float = 60.0, transport: httpx.BaseTransport | None = None
    ):
        self.url = url.rstrip("/")
        self._token = token
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Token {token}"},
            timeout=timeout,
            transport=transport,
            follow_redirects=True,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LabelStudioClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing

    def _request(self, method: str, path: str, *, hide: tuple[str, ...] = (), **kwargs) -> httpx.Response:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise ToolError(
                f"Label Studio at {self.url} cannot be reached ({method} {path}: "
                f"{shown(_hidden(str(e), hide), self._token)})"
            ) from None
        if resp.status_code in (401, 403):
            raise ToolError(
                f"Label Studio at {self.url} refused the token ({method} {path}: HTTP {resp.status_code})"
            )
        return resp

    def call(self, method: str, path: str, *, hide: tuple[str, ...] = (), **kwargs) -> Any:
        """The answer's JSON (or bytes); ToolError otherwise. `hide`: secrets the request carries,
        cut out of any message (with the token) before it is shortened."""
        resp = self._request(method, path, hide=hide, **kwargs)
        if resp.status_code >= 400:
            raise ToolError(
                f"Label Studio {method} {path}: HTTP {resp.status_code}: "
                f"{shown(_hidden(resp.content.decode(errors='replace'), hide), self._token)}"
            )
        if not resp.content:
            return None
        if "json" not in resp.headers.get("content-type", ""):
            return resp.content
        try:
            return load_json(resp.content)
        except ValueError as e:
            raise ToolError(
                f"Label Studio {method} {path}: the answer is not JSON ({shown(e, self._token)})"
            ) from None

    def _object(self, body: Any, what: str) -> dict:
        if not isinstance(body, dict):
            raise ToolError(
                f"Label Studio at {self.url} answered {what} with {type(body).__name__}, not an object"
            )
        return body

    def _pages(self, path: str, params: dict, key: str = "results") -> Iterator[dict]:
        """Every item of a page-numbered list (DRF `results`, or `tasks` for the task list)."""
        page = 1
        while True:
            try:
                body = self.call("GET", path, params={**params, "page": page, "page_size": 100})
            except ToolError as e:
                if "HTTP 404" in str(e) and page > 1:  # DRF answers 404 past the last page
                    return
                raise
            items = body.get(key, []) if isinstance(body, dict) else body
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise ToolError(f"Label Studio GET {path}: page {page} is not a list of objects")
            yield from items
            more = body.get("next") if isinstance(body, dict) and "next" in body else len(items) == 100
            if not more or not items:
                return
            page += 1

    # ------------------------------------------------------------------ server

    def health(self) -> bool:
        try:
            body = self.call("GET", "/health")
        except ToolError:
            return False
        return isinstance(body, dict) and body.get("status") == "UP"

    def users(self) -> list[dict]:
        return objects(self.call("GET", "/api/users/"))

    def task_url(self, project: int, task: int) -> str:
        """The page that opens one task in the data manager."""
        return f"{self.url}/projects/{positive_id(project, 'project id')}/data?task={positive_id(task, 'task id')}"

    # ------------------------------------------------------------------ projects

    def projects(self) -> list[Project]:
        return [self._project(p) for p in self._pages("/api/projects/", {})]

    @staticmethod
    def _project(body: dict) -> Project:
        title, label_config = body.get("title"), body.get("label_config", "")
        if not isinstance(title, str) or not isinstance(label_config, str):
            raise ToolError(
                f"Label Studio gave project {shown(body.get('id'), limit=60)} without a text title "
                "and labeling config"
            )
        return Project(positive_id(body.get("id"), "a project id"), title, label_config)

    def project_by_title(self, title: str) -> Project | None:
        found = [p for p in self.projects() if p.title == title]
        if len(found) > 1:
            raise ToolError(
                f"Label Studio has {len(found)} projects titled {title!r} (ids {[p.id for p in found]}); "
                "kpdeliver keys projects by title: rename or remove the extra ones"
            )
        return found[0] if found else None

    def create_project(self, title: str, label_config: str, description: str = "") -> Project:
        body = self.call(
            "POST",
            "/api/projects/",
            json={"title": title, "label_config": label_config, "description": description},
        )
        return self._project(
            {"title": title, "label_config": label_config, **self._object(body, "a new project")}
        )

    def update_project(self, project: int, **fields) -> None:
        self.call("PATCH", f"/api/projects/{positive_id(project, 'project id')}/", json=fields)

    def delete_project(self, project: int) -> None:
        self.call("DELETE", f"/api/projects/{positive_id(project, 'project id')}/")

    # ------------------------------------------------------------------ storage and tasks

    def local_storages(self, project: int) -> list[dict]:
        project = positive_id(project, "project id")
        return objects(self.call("GET", "/api/storages/localfiles/", params={"project": project}))

    def create_local_storage(self, project: int, path: str, title: str) -> dict:
        """Connect a folder (under the server's LOCAL_FILES_DOCUMENT_ROOT). Not synced: kpdeliver
        imports its own tasks so each carries the batch's file name."""
        return self.call(
            "POST",
            "/api/storages/localfiles/",
            json={
                "project": project,
                "path": path,
                "title": title,
                "use_blob_urls": True,
                "regex_filter": "",
            },
        )

    def storage_refusal(self, kind: str, body: dict, *, hide: tuple[str, ...] = ()) -> str | None:
        """None when the server would connect this import storage (`kind`: localfiles, s3), else its
        reason, cleaned and whole (a local-files refusal names LOCAL_FILES_DOCUMENT_ROOT).
        Validation only: nothing is created."""
        path = f"/api/storages/{kind}/validate"
        resp = self._request("POST", path, json=body, hide=hide)
        if resp.status_code < 400:
            return None
        # a refusal is HTTP 400, but some (an S3 prefix holding nothing) come as HTTP 500
        said = shown(_hidden(_reason(resp.content), hide), self._token, limit=2000)
        return said if resp.status_code == 400 else f"HTTP {resp.status_code}: {said}"

    def s3_storages(self, project: int) -> list[dict]:
        project = positive_id(project, "project id")
        return objects(self.call("GET", "/api/storages/s3/", params={"project": project}))

    def create_s3_storage(
        self, project: int, *, title: str, bucket: str, prefix: str, credentials: dict[str, str], **options
    ) -> dict:
        """Connect `s3://bucket/prefix` (not synced, as the local-files storage). `credentials`
        (the aws_* fields) go to the server only and never into a message; `options`: presign,
        presign_ttl, region_name, s3_endpoint."""
        body = {
            "project": positive_id(project, "project id"),
            "title": title,
            "bucket": bucket,
            "prefix": prefix,
            "use_blob_urls": True,
            "regex_filter": "",
            "recursive_scan": True,
            **options,
            **credentials,
        }
        return self.call("POST", "/api/storages/s3/", json=body, hide=tuple(credentials.values()))

    def tasks(self, project: int) -> list[dict]:
        return list(self._pages("/api/tasks/", {"project": project, "fields": "all"}, key="tasks"))

    def import_tasks(self, project: int, tasks: list[dict]) -> int:
        if not tasks:
            return 0
        project = positive_id(project, "project id")
        body = self.call(
            "POST",
            f"/api/projects/{project}/import",
            params={"commit_to_project": "true"},
            content=orjson.dumps(tasks),
            headers={"Content-Type": "application/json"},
        )
        count = body.get("task_count") if isinstance(body, dict) else None
        return count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else len(tasks)

    def update_task_data(self, task: int, data: dict) -> None:
        self.call("PATCH", f"/api/tasks/{positive_id(task, 'task id')}/", json={"data": data})

    def create_prediction(
        self, task: int, result: list[dict], *, model_version: str, score: float | None = None
    ) -> dict:
        payload = {"task": task, "result": result, "model_version": model_version}
        if score is not None:
            payload["score"] = score
        return self.call("POST", "/api/predictions/", json=payload)

    def create_annotation(
        self, task: int, result: list[dict], *, completed_by: int | None = None, was_cancelled: bool = False
    ) -> dict:
        payload: dict[str, Any] = {"result": result, "was_cancelled": was_cancelled}
        if completed_by is not None:
            payload["completed_by"] = completed_by
        return self.call("POST", f"/api/tasks/{positive_id(task, 'task id')}/annotations/", json=payload)

    # ------------------------------------------------------------------ export

    def export_snapshot(self, project: int, *, poll: float = 0.5, timeout: float = 600.0) -> list[dict]:
        """Every task of the project with its annotations, drafts and predictions in full.

        A snapshot is made, waited for, downloaded and deleted again, so repeated pulls do not
        pile exports up in the tool."""
        project = positive_id(project, "project id")
        snap = self.call(
            "POST",
            f"/api/projects/{project}/exports/",
            json={
                "title": "kpdeliver pull",
                "serialization_options": FULL_SERIALIZATION,
                # skipped ones too, so a pull can count them
                "annotation_filter_options": {"usual": True, "ground_truth": True, "skipped": True},
            },
        )
        snap = self._object(snap, "an export request")
        export_id = positive_id(snap.get("id"), "an export id")
        try:
            deadline = time.monotonic() + timeout
            while snap.get("status") not in ("completed", "failed"):
                if time.monotonic() > deadline:
                    raise ToolError(
                        f"Label Studio export {export_id} of project {project} not ready after {timeout:g} s"
                    )
                time.sleep(poll)
                snap = self._object(
                    self.call("GET", f"/api/projects/{project}/exports/{export_id}"), "an export"
                )
            if snap["status"] == "failed":
                raise ToolError(f"Label Studio export {export_id} of project {project} failed")
            data = self.call(
                "GET", f"/api/projects/{project}/exports/{export_id}/download", params={"exportType": "JSON"}
            )
        finally:
            try:
                self.call("DELETE", f"/api/projects/{project}/exports/{export_id}")
            except ToolError:
                pass  # a leftover snapshot is harmless; the pull itself succeeded or already failed
        try:
            doc = load_json(bytes(data)) if isinstance(data, (bytes, bytearray)) else data
        except ValueError as e:
            raise ToolError(
                f"Label Studio export {export_id} of project {project} is not JSON ({shown(e)})"
            ) from None
        if not isinstance(doc, list):
            raise ToolError(f"Label Studio export {export_id} of project {project} is not a list of tasks")
        return doc
