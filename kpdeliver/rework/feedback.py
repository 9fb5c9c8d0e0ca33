"""A client's feedback on a release: the items they reject, each with a reason.

The file is CSV (a header with `reason` and `file_name` and/or `annotation_id`) or JSON (a list
of such objects, or `{"items": [...]}`). Every row is checked against the release it answers: a
file name must be one of its images, an annotation id one of its labels (delivered or held back).
Any unknown id, or a row without a reason, refuses the whole file, naming each, so nothing of it
is lost half-done. A known row becomes one rework item per annotator whose labels it names.
"""

from __future__ import annotations

import csv
import io

import orjson
import pyarrow as pa

from kpdeliver.rework.items import ITEM_SCHEMA

FEEDBACK_CHECK = "client.feedback"


class FeedbackError(ValueError):
    """A feedback file that cannot be used; the message names every bad row."""


def parse_feedback(name: str, data: bytes) -> list[dict]:
    """The rows of a feedback file as {line, file_name, annotation_id, reason} (line: 1-based, data rows)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise FeedbackError(f"{name} is not UTF-8 text: {e.reason}") from None
    if name.lower().endswith(".json") or text.lstrip().startswith(("[", "{")):
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError as e:
            raise FeedbackError(f"{name} is not valid JSON: {e}") from None
        rows = doc.get("items") if isinstance(doc, dict) else doc
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise FeedbackError(
                f"{name}: expected a list of objects with reason and file_name or annotation_id"
            )
    else:
        reader = csv.DictReader(io.StringIO(text))
        if (
            not reader.fieldnames
            or "reason" not in reader.fieldnames
            or not ({"file_name", "annotation_id"} & set(reader.fieldnames))
        ):
            raise FeedbackError(f"{name}: the CSV header must name reason and file_name or annotation_id")
        rows = list(reader)
    return [
        {
            "line": n,
            "file_name": _text(r.get("file_name")),
            "annotation_id": _text(r.get("annotation_id")),
            "reason": _text(r.get("reason")),
        }
        for n, r in enumerate(rows, 1)
    ]


def _text(value) -> str:
    return "" if value is None else str(value).strip()


def _label_owners(
    annotations: pa.Table, quarantine: pa.Table
) -> tuple[dict[str, tuple[str, str]], dict[str, set[str]]]:
    """(annotation id -> (annotator, file name), file name -> annotators) over the release's labels."""
    by_id: dict[str, tuple[str, str]] = {}
    by_file: dict[str, set[str]] = {}
    for table in (annotations, quarantine):
        for i, who, name in zip(
            table["annotation_id"].to_pylist(),
            table["annotator"].to_pylist(),
            table["file_name"].to_pylist(),
            strict=True,
        ):
            if who and name and who != "gold":
                by_id.setdefault(str(i), (who, name))
                by_file.setdefault(name, set()).add(who)
    return by_id, by_file


def feedback_items(
    name: str, rows: list[dict], *, images: pa.Table, annotations: pa.Table, quarantine: pa.Table
) -> pa.Table:
    """The rework items (ITEM_SCHEMA, origin `feedback`) of checked feedback rows; FeedbackError
    naming every unknown id and every row without a reason or an item."""
    by_id, by_file = _label_owners(annotations, quarantine)
    known_files = {f for f in images["file_name"].to_pylist() if f}
    problems: list[str] = []
    out: list[tuple[str, str, int | None, str]] = []
    for r in rows:
        where = f"row {r['line']}"
        if not r["reason"]:
            problems.append(f"{where} has no reason")
        if r["annotation_id"]:
            if r["annotation_id"] not in by_id:
                problems.append(f"{where}: unknown annotation id {r['annotation_id']}")
                continue
            who, file_name = by_id[r["annotation_id"]]
            if r["file_name"] and r["file_name"] != file_name:
                problems.append(
                    f"{where}: annotation id {r['annotation_id']} is on {file_name}, not {r['file_name']}"
                )
                continue
            out += [(who, file_name, int(r["annotation_id"]), r["reason"])]
        elif r["file_name"]:
            if r["file_name"] not in known_files:
                problems.append(f"{where}: unknown file name {r['file_name']}")
                continue
            owners = sorted(by_file.get(r["file_name"], ()))
            if not owners:
                problems.append(f"{where}: {r['file_name']} has no annotator's label in this release")
            out += [(who, r["file_name"], None, r["reason"]) for who in owners]
        else:
            problems.append(f"{where} names neither a file_name nor an annotation_id")
    if problems:
        raise FeedbackError(f"{name}: " + "; ".join(problems) + "; nothing was done")
    n = len(out)
    return pa.table(
        {
            "annotator": [o[0] for o in out],
            "file_name": [o[1] for o in out],
            "annotation_id": pa.array([o[2] for o in out], pa.int64()),
            "origin": ["feedback"] * n,
            "check": [FEEDBACK_CHECK] * n,
            "keypoint": pa.nulls(n, pa.string()),
            "reason": [f"client feedback ({name}): {o[3]}" for o in out],
            "reference": [""] * n,
        },
        schema=ITEM_SCHEMA,
    )
