"""Client isolation: overlapping prefixes between clients are refused; unsafe keys become findings."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpdeliver.config import ConfigError, config_from_dict
from kpdeliver.isolation import IsolationError, check_isolation, isolation_problems, unsafe_key_findings, unsafe_reasons
from kpdeliver.storage import UnsafeKeyError, check_key


def cfg(client, source, releases, endpoint=None):
    data = {"client": client, "dataset": "pose", "source": source, "releases": releases, "annotators": ["a"]}
    if endpoint:
        data["storage"] = {"endpoint_url": endpoint}
    return config_from_dict(data)


ACME = cfg("acme", "s3://batches/acme/2026-11", "s3://deliveries/releases")
GLOBEX = cfg("globex", "s3://batches/globex", "s3://deliveries/releases")


def test_clients_sharing_a_release_root_but_not_prefixes_are_accepted():
    check_isolation(ACME, [GLOBEX, ACME])
    assert isolation_problems(GLOBEX, [ACME]) == []


@pytest.mark.parametrize("source, releases, expect", [
    ("s3://batches/globex/stolen", "s3://deliveries/releases", "source s3://batches/globex/stolen overlaps the source s3://batches/globex of client 'globex'"),
    ("s3://batches", "s3://deliveries/releases", "source s3://batches overlaps the source s3://batches/globex of client 'globex'"),
    ("s3://batches/evil", "s3://deliveries/releases/globex", "release folder s3://deliveries/releases/globex/evil overlaps the release folder s3://deliveries/releases/globex of client 'globex'"),
    ("s3://deliveries/releases/globex/pose", "s3://x/r", "source s3://deliveries/releases/globex/pose overlaps the release folder s3://deliveries/releases/globex of client 'globex'"),
])
def test_a_config_reaching_into_another_clients_prefix_is_refused(source, releases, expect):
    evil = cfg("evil", source, releases)
    with pytest.raises(IsolationError, match="refusing to run") as info:
        check_isolation(evil, [ACME, GLOBEX])
    assert isinstance(info.value, ConfigError)
    assert any(expect in p for p in isolation_problems(evil, [ACME, GLOBEX])), isolation_problems(evil, [ACME, GLOBEX])


def test_local_paths_are_normalised_and_other_endpoints_are_other_namespaces(tmp_path):
    a = cfg("a", str(tmp_path / "batches/a"), str(tmp_path / "rel"))
    b = cfg("b", str(tmp_path / "batches/b/../a/sub"), str(tmp_path / "rel"))
    assert isolation_problems(b, [a]) and "of client 'a'" in isolation_problems(b, [a])[0]
    minio = cfg("m", "s3://batches/acme/2026-11", "s3://deliveries/releases", endpoint="http://minio.local:9000")
    assert isolation_problems(minio, [ACME]) == []


def test_unsafe_keys_become_findings_naming_the_key():
    keys = ["images/ok.jpg", "../../etc/passwd", "/abs/x.jpg", "images/a\x07b.jpg", "C:\\win.jpg", "images/..hidden.jpg", ""]
    f = unsafe_key_findings(keys, location="s3://batches/acme")
    rows = f.to_pylist()
    assert [r["file_name"] for r in rows] == ["../../etc/passwd", "/abs/x.jpg", "images/a\x07b.jpg", "C:\\win.jpg", ""]
    assert {r["check"] for r in rows} == {"ingest.unsafe_key"} and {r["severity"] for r in rows} == {"error"}
    assert "'../../etc/passwd' under s3://batches/acme climbs out of its prefix" in rows[0]["message"]
    assert "absolute path" in rows[1]["message"] and "control characters" in rows[2]["message"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list("ab./\\:C\x00\x1f\x7f ")), max_size=8), max_size=20))
def test_column_rules_agree_with_check_key(keys):
    reasons = unsafe_reasons(keys)
    for k, r in zip(keys, reasons):
        try:
            check_key(k)
            assert r == "", (k, r)
        except UnsafeKeyError:
            assert r != "", k


def test_configs_beside_a_config_are_its_neighbours(tmp_path):
    import yaml

    from kpdeliver.config import load_config
    from kpdeliver.isolation import configs_beside

    for name, source in (("acme", "s3://batches/acme"), ("globex", "s3://batches/acme/borrowed")):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(
            {"client": name, "dataset": "pose", "source": source, "releases": "s3://rel", "annotators": ["a"]}))
    (tmp_path / "schema.yaml").write_text("names: [a, b]\n")
    others = configs_beside(tmp_path / "globex.yaml")
    assert [c.client for c in others] == ["acme"]
    with pytest.raises(IsolationError, match="source s3://batches/acme/borrowed overlaps the source s3://batches/acme"):
        check_isolation(load_config(tmp_path / "globex.yaml"), others)
