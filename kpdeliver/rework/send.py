"""One rework round: from a release's findings (and a client's feedback) to the items sent now.

An (annotator, image) goes back when the release names a reason for it, unless it is out for
rework already or was sent for this release's findings before (the ledger). Sending records one
ledger entry per (annotator, image) with its reasons, so a repeat sends nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from kpdeliver.collect.exports import CollectResult
from kpdeliver.rework.items import rework_items
from kpdeliver.rework.ledger import Ledger, held_from_sending, returned_rounds


@dataclass(frozen=True)
class ReleaseQA:
    """The tables of a published release that rework reads."""

    version: int
    quarantine: pa.Table  # qa/quarantine.parquet
    findings: pa.Table  # qa/findings.parquet
    images: pa.Table  # index/images.parquet
    annotations: pa.Table  # index/annotations.parquet


@dataclass
class ReworkRound:
    round: str
    release: int
    items: pa.Table  # the items sent now (ITEM_SCHEMA)
    not_sent: dict[tuple[str, str], str] = field(default_factory=dict)  # (annotator, file) -> why not now
    unsendable: int = (
        0  # reasons naming no annotator's label of a batch image (ingest refusals, unknown images)
    )

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return sorted(
            set(zip(self.items["annotator"].to_pylist(), self.items["file_name"].to_pylist(), strict=True))
        )


def plan_round(
    ledger: Ledger, release: ReleaseQA, collected: CollectResult, feedback: pa.Table | None = None
) -> ReworkRound:
    """What this round sends (nothing is recorded yet)."""
    everything = rework_items(
        release.quarantine, release.findings, feedback, labels=collected.dataset, gold=collected.gold
    )
    batch_names = set(collected.dataset.images.file_name.tolist())
    known = pa.array([f in batch_names for f in everything["file_name"].to_pylist()], pa.bool_())
    unsendable = everything.num_rows - sum(known.to_pylist())
    everything = everything.filter(known)
    held = held_from_sending(ledger, returned_rounds(collected.dataset), release.version)
    pairs = zip(everything["annotator"].to_pylist(), everything["file_name"].to_pylist(), strict=True)
    send = pa.array([p not in held for p in pairs], pa.bool_())
    not_sent = {
        p: why
        for p, why in held.items()
        if p
        in set(zip(everything["annotator"].to_pylist(), everything["file_name"].to_pylist(), strict=True))
    }
    return ReworkRound(ledger.next_round(), release.version, everything.filter(send), not_sent, unsendable)


def record_round(ledger: Ledger, plan: ReworkRound, *, route: str, feedback_name: str | None) -> None:
    """Add the round's entries to the ledger (the caller saves it once the items are out)."""
    rows = plan.items.to_pylist()
    for who, name in plan.pairs:
        mine = [r for r in rows if r["annotator"] == who and r["file_name"] == name]
        answers = feedback_name if any(r["origin"] == "feedback" for r in mine) else None
        ledger.entries.append(
            {
                "round": plan.round,
                "release": plan.release,
                "annotator": who,
                "file_name": name,
                "route": route,
                "feedback": answers,
                "items": [{k: v for k, v in r.items() if k not in ("annotator", "file_name")} for r in mine],
            }
        )
