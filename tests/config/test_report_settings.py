"""`report.annotators: named | anonymous`: checked like every section, and part of the input
fingerprint only when set (configs written before it existed keep their fingerprint)."""

from __future__ import annotations

import pytest

from kpdeliver.config import ConfigError, config_from_dict
from kpdeliver.release.publish import input_fingerprint

BASE = {"client": "acme", "dataset": "pose", "source": "s", "releases": "r", "annotators": ["ann_a"]}


def test_the_report_section_changes_the_fingerprint_only_when_set():
    plain, named = config_from_dict(BASE), config_from_dict({**BASE, "report": {"annotators": "named"}})
    anonymous = config_from_dict({**BASE, "report": {"annotators": "anonymous"}})
    assert plain.report.annotators == "named" and anonymous.report.annotators == "anonymous"
    assert "report" not in plain.model_dump(mode="json")
    assert (
        input_fingerprint(plain, [], {})
        == input_fingerprint(named, [], {})
        != input_fingerprint(anonymous, [], {})
    )


def test_an_unknown_way_of_naming_annotators_is_one_sentence():
    with pytest.raises(ConfigError, match=r"field 'report.annotators': should be 'named' or 'anonymous'"):
        config_from_dict({**BASE, "report": {"annotators": "hidden"}})
