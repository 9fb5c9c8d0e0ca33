"""What is out for rework: `tasks/rework/ledger.json` beside the batch.

One entry per (round, annotator, image) sent: the release whose findings sent it, the route
(files or label-studio), the feedback file it answers (if any) and the reasons. An entry is out
until a rework export of its round (or a later one) brings labels of that image back from that
annotator (`annotations/<annotator>/rework/<round>/`). An image is not sent again while it is out,
nor twice for the same release's findings.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from kpdeliver.collect.superseded import rework_round
from kpdeliver.model import Dataset
from kpdeliver.storage import ObjectStore

LEDGER_KEY = "tasks/rework/ledger.json"


def round_name(n: int) -> str:
    return f"r{n:04d}"


@dataclass
class Ledger:
    entries: list[dict]  # {round, release, annotator, file_name, route, feedback, items: [item rows]}

    @classmethod
    def load(cls, store: ObjectStore) -> Ledger:
        return cls(orjson.loads(store.get(LEDGER_KEY)) if store.exists(LEDGER_KEY) else [])

    def save(self, store: ObjectStore) -> None:
        store.put(LEDGER_KEY, orjson.dumps(self.entries, option=orjson.OPT_INDENT_2))

    def next_round(self) -> str:
        done = [int(e["round"][1:]) for e in self.entries]
        return round_name(max(done, default=0) + 1)

    def latest(self) -> dict[tuple[str, str], dict]:
        """(annotator, file name) -> its newest entry."""
        out: dict[tuple[str, str], dict] = {}
        for e in sorted(self.entries, key=lambda e: e["round"]):
            out[(e["annotator"], e["file_name"])] = e
        return out


def returned_rounds(labels: Dataset) -> dict[tuple[str, str], str]:
    """(annotator, file name) -> the newest rework round that brought labels of it back."""
    names = dict(zip(labels.images.id.tolist(), labels.images.file_name.tolist(), strict=True))
    out: dict[tuple[str, str], str] = {}
    sources = labels.instances.extra.get("source")
    if sources is None:
        return out
    for who, image, source in zip(
        labels.instances.annotator.tolist(), labels.instances.image_id.tolist(), sources.tolist(), strict=True
    ):
        r = rework_round(source)
        if r is not None and image in names:
            key = (who, names[image])
            out[key] = max(out.get(key, r), r)
    return out


def is_out(entry: dict, returned: dict[tuple[str, str], str]) -> bool:
    """Sent and not yet brought back by a rework export of its round or a later one."""
    back = returned.get((entry["annotator"], entry["file_name"]))
    return back is None or back < entry["round"]


def held_from_sending(
    ledger: Ledger, returned: dict[tuple[str, str], str], release: int
) -> dict[tuple[str, str], str]:
    """(annotator, file name) -> why it is not sent now: out for rework, or already sent for this release."""
    out = {}
    for key, entry in ledger.latest().items():
        if is_out(entry, returned):
            out[key] = f"out for rework since {entry['round']}"
        elif entry["release"] >= release:
            out[key] = (
                f"sent for v{entry['release']:04d} in {entry['round']} and returned; deliver to judge the fix"
            )
    return out
