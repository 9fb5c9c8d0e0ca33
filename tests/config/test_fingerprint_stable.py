"""Settings added after fingerprints existed change an unchanged client's fingerprint only when set,
so upgrading kpdeliver never makes a scheduled run publish a duplicate version of the same inputs."""

from __future__ import annotations

from kpdeliver.config import config_from_dict
from kpdeliver.release.publish import input_fingerprint

BASE = {"client": "acme", "dataset": "pose", "source": "s", "releases": "r", "annotators": ["ann_a"]}


def test_an_unset_rework_rule_is_not_part_of_the_fingerprint():
    plain = config_from_dict(BASE)
    dumped = plain.model_dump(mode="json")
    assert "max_rework_rate" not in dumped["qa"] and "max_rework_rate" not in dumped["qa"]["severity"]
    ruled = config_from_dict({**BASE, "qa": {"max_rework_rate": 0.2}})
    stricter = config_from_dict({**BASE, "qa": {"severity": {"max_rework_rate": "fail"}}})
    assert ruled.model_dump(mode="json")["qa"]["max_rework_rate"] == 0.2
    assert len({input_fingerprint(c, [], {}) for c in (plain, ruled, stricter)}) == 3
