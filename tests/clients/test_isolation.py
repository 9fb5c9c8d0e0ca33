"""Client isolation: overlapping prefixes between clients are refused; unsafe keys become findings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpdeliver.clients.isolation import IsolationError, check_isolation, isolation_problems
from kpdeliver.config import ConfigError, config_from_dict
from kpdeliver.storage import UnsafeKeyError, check_key
from kpdeliver.storage.keys import unsafe_reasons


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


@pytest.mark.parametrize(
    "source, releases, expect",
    [
        (
            "s3://batches/globex/stolen",
            "s3://deliveries/releases",
            "source s3://batches/globex/stolen overlaps the source s3://batches/globex of client 'globex'",
        ),
        (
            "s3://batches",
            "s3://deliveries/releases",
            "source s3://batches overlaps the source s3://batches/globex of client 'globex'",
        ),
        (
            "s3://batches/evil",
            "s3://deliveries/releases/globex",
            "release folder s3://deliveries/releases/globex/evil overlaps the release folder s3://deliveries/releases/globex of client 'globex'",
        ),
        (
            "s3://deliveries/releases/globex/pose",
            "s3://x/r",
            "source s3://deliveries/releases/globex/pose overlaps the release folder s3://deliveries/releases/globex of client 'globex'",
        ),
    ],
)
def test_a_config_reaching_into_another_clients_prefix_is_refused(source, releases, expect):
    evil = cfg("evil", source, releases)
    with pytest.raises(IsolationError, match="refusing to run") as info:
        check_isolation(evil, [ACME, GLOBEX])
    assert isinstance(info.value, ConfigError)
    assert any(expect in p for p in isolation_problems(evil, [ACME, GLOBEX])), isolation_problems(
        evil, [ACME, GLOBEX]
    )


def test_local_paths_are_normalised_and_other_endpoints_are_other_namespaces(tmp_path):
    a = cfg("a", str(tmp_path / "batches/a"), str(tmp_path / "rel"))
    b = cfg("b", str(tmp_path / "batches/b/../a/sub"), str(tmp_path / "rel"))
    assert isolation_problems(b, [a]) and "of client 'a'" in isolation_problems(b, [a])[0]
    minio = cfg(
        "m", "s3://batches/acme/2026-11", "s3://deliveries/releases", endpoint="http://minio.local:9000"
    )
    assert isolation_problems(minio, [ACME]) == []


def test_unsafe_keys_are_said_why_by_the_one_set_of_rules():
    keys = [
        "images/ok.jpg",
        "../../etc/passwd",
        "/abs/x.jpg",
        "images/a\x07b.jpg",
        "C:\\win.jpg",
        "images/..hidden.jpg",
        "",
    ]
    assert unsafe_reasons(keys).tolist() == [
        "",
        "climbs out of its prefix ('..')",
        "is an absolute path",
        "holds control characters",
        "is an absolute path",
        "",
        "is empty",
    ]
    with pytest.raises(UnsafeKeyError, match=r"key '../../etc/passwd' climbs out of its prefix"):
        check_key("../../etc/passwd")


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

    from kpdeliver.clients.isolation import configs_beside
    from kpdeliver.config import load_config

    for name, source in (("acme", "s3://batches/acme"), ("globex", "s3://batches/acme/borrowed")):
        (tmp_path / f"{name}.yaml").write_text(
            yaml.safe_dump(
                {
                    "client": name,
                    "dataset": "pose",
                    "source": source,
                    "releases": "s3://rel",
                    "annotators": ["a"],
                }
            )
        )
    (tmp_path / "schema.yaml").write_text("names: [a, b]\n")
    others = configs_beside(tmp_path / "globex.yaml")
    assert [c.client for c in others] == ["acme"]
    with pytest.raises(
        IsolationError, match="source s3://batches/acme/borrowed overlaps the source s3://batches/acme"
    ):
        check_isolation(load_config(tmp_path / "globex.yaml"), others)


# --------------------------------------------------------------------------- canonical places

LOCAL = "http://localhost:9000"


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:9000",
        "http://127.1:9000",
        "http://[::1]:9000",
        "http://LOCALHOST:9000/",
        "http://0.0.0.0:9000",
    ],
)
def test_every_loopback_spelling_is_the_same_server(endpoint):
    mine = cfg("globex", "s3://batches/globex", "s3://deliveries/releases", endpoint=LOCAL)
    evil = cfg("evil", "s3://Batches/globex/", "s3://x/r", endpoint=endpoint)
    assert "overlaps the source s3://batches/globex of client 'globex'" in isolation_problems(evil, [mine])[0]


def test_an_endpoint_left_to_the_environment_is_the_one_boto3_would_use(monkeypatch):
    mine = cfg("globex", "s3://batches/globex", "s3://deliveries/releases", endpoint=LOCAL)
    evil = cfg("evil", "s3://batches//globex//stolen/", "s3://x/r")  # no endpoint in the config
    assert isolation_problems(evil, [mine]) == []  # AWS itself is another server
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    assert isolation_problems(evil, [mine])
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9001")  # another port, another server
    assert isolation_problems(evil, [mine]) == []


def test_default_ports_are_filled_in():
    a = cfg("a", "s3://b/a", "s3://r/r", endpoint="http://localhost")
    b = cfg("b", "s3://b/a/x", "s3://r/r", endpoint="http://127.0.0.1:80")
    assert isolation_problems(b, [a])


def test_dot_parts_in_an_s3_prefix_are_refused():
    evil = cfg("evil", "s3://batches/x/../globex", "s3://x/r")
    with pytest.raises(IsolationError, match=r"'\.' or '\.\.'"):
        isolation_problems(evil, [GLOBEX])


def test_another_clients_staging_folder_is_refused(tmp_path):
    local = cfg("globex", str(tmp_path / "b/globex"), str(tmp_path / "releases"))
    evil = cfg("evil", str(tmp_path / "releases/.staging/globex/"), str(tmp_path / "releases"))
    assert "overlaps the staging folder" in isolation_problems(evil, [local])[0]
    s3 = cfg("evil", "s3://deliveries/releases/.staging/globex/pose", "s3://x/r")
    assert (
        "staging folder s3://deliveries/releases/.staging/globex of client 'globex'"
        in isolation_problems(s3, [ACME, GLOBEX])[0]
    )


def test_a_symlinked_folder_into_another_clients_batch_is_refused(tmp_path):
    (tmp_path / "batches/globex").mkdir(parents=True)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/batch").symlink_to(tmp_path / "batches/globex")
    globex = cfg("globex", str(tmp_path / "batches/globex"), str(tmp_path / "releases"))
    evil = cfg("evil", str(tmp_path / "mine/batch"), str(tmp_path / "releases"))
    assert "overlaps the source" in isolation_problems(evil, [globex])[0]
    (tmp_path / "rel_evil").mkdir()
    (tmp_path / "rel_evil/evil").symlink_to(tmp_path / "batches/globex")  # the release folder itself
    evil = cfg("evil", str(tmp_path / "mine/other"), str(tmp_path / "rel_evil"))
    assert "release folder" in isolation_problems(evil, [globex])[0]


def test_assign_and_deliver_refuse_with_one_sentence_and_exit_2(tmp_path):
    import yaml
    from typer.testing import CliRunner

    from kpdeliver.cli import app

    (tmp_path / "batches/globex/images").mkdir(parents=True)
    for name, source in (("globex", "./batches/globex"), ("evil", "./batches/globex/")):
        (tmp_path / f"{name}.yaml").write_text(
            yaml.safe_dump(
                {
                    "client": name,
                    "dataset": "pose",
                    "source": source,
                    "releases": "./releases",
                    "annotators": ["a"],
                }
            )
        )
    for command in ("assign", "deliver"):
        result = CliRunner().invoke(app, [command, "--config", str(tmp_path / "evil.yaml")])
        assert result.exit_code == 2, result.output
        assert (
            "refusing to run" in result.output
            and "client 'evil': source" in result.output
            and "Traceback" not in result.output
        )
    assert not (tmp_path / "batches/globex/tasks").exists()
