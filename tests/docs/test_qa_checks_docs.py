"""docs/qa-checks.md documents every stable check id of kpdeliver.findings.CHECKS, at its severity."""

from __future__ import annotations

import re

from kpdeliver.findings import CHECKS
from tests.docs.docs_helpers import DOCS

ROW = re.compile(
    r"^\| `(?P<check>[a-z_]+\.[a-z_]+)` \| (?P<severity>\w+) \| [^|]+ \| (?P<meaning>.+) \|$", re.M
)


def documented() -> dict[str, tuple[str, str]]:
    return {
        m["check"]: (m["severity"], m["meaning"].strip())
        for m in ROW.finditer((DOCS / "qa-checks.md").read_text())
    }


def test_every_check_id_is_documented_once_at_its_severity():
    rows = documented()
    assert sorted(rows) == sorted(CHECKS), "docs/qa-checks.md must list exactly the ids of CHECKS"
    assert {c: sev for c, (sev, _) in rows.items()} == {c: s.value for c, s in CHECKS.items()}
    assert all(len(meaning) > 20 for _, meaning in rows.values())
