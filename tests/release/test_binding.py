"""A release is bound to its place: a validly signed release copied to another client, dataset or
version fails `verify`, and the catalogue's generations form a signed chain, so a rollback, a
deleted or an altered generation is named. `verify` says which key it checked and whether it was pinned."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from kpdeliver.release import catalog, signing
from kpdeliver.release.publish import clean_staging, publish, staging_prefix
from kpdeliver.release.stage import stage_plan
from kpdeliver.storage import LocalStore
from tests.release_helpers import tiny_release_plan

CLIENT, DATASET = "demo", "people-demo"


def _publish(
    store: LocalStore, source: LocalStore, key: Ed25519PrivateKey, n: int, dataset: str = DATASET
) -> None:
    """Release number `n` of `dataset` (new inputs each time), signed and catalogued with `key`."""
    plan = tiny_release_plan(source)  # a real package: its images are new bytes each time
    fp = hashlib.sha256(f"{dataset}{n}".encode()).hexdigest()
    staged = staging_prefix(CLIENT, dataset, fp)
    stage_plan(plan, release=store, source=source, prefix=staged)
    published = publish(
        store=store,
        client=CLIENT,
        dataset=dataset,
        fingerprint=fp,
        staged_prefix=staged,
        manifest_fields={},
        signing_key=key,
    )
    clean_staging(store, CLIENT, dataset, fp)
    catalog.append_release(store, CLIENT, dataset, published.version, key)


@pytest.fixture
def vendor() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def releases(tmp_path, vendor) -> Path:
    store, source = LocalStore(tmp_path / "releases"), LocalStore(tmp_path / "batch")
    _publish(store, source, vendor, 1)
    _publish(store, source, vendor, 2)
    return tmp_path / "releases"


@pytest.fixture
def pinned(tmp_path, vendor) -> str:
    path = tmp_path / "vendor.pub"
    path.write_bytes(signing.public_pem(vendor))
    return str(path)


def verify(release: Path, *args: str) -> tuple[int, str]:
    from kpdeliver.cli import app

    r = CliRunner().invoke(app, ["verify", str(release), *args])
    return r.exit_code, r.output


def test_an_untouched_release_verifies_and_names_its_key(releases, vendor, pinned):
    code, out = verify(releases / CLIENT / DATASET / "v0002", "--public-key", pinned)
    assert code == 0, out
    assert f"signing key fingerprint sha256:{signing.fingerprint(vendor)} (pinned with --public-key)" in out
    code, out = verify(releases / CLIENT / DATASET / "v0002")
    assert code == 0, out
    assert f"sha256:{signing.fingerprint(vendor)} (NOT pinned" in out
    assert "proves nothing against a swapped signing-key.pub" in out


@pytest.mark.parametrize("whole_client", [False, True], ids=["release only", "with catalogue and key"])
def test_a_release_copied_to_another_client_fails(releases, pinned, whole_client):
    if whole_client:
        shutil.copytree(releases / CLIENT, releases / "evil")
    else:
        shutil.copytree(releases / CLIENT / DATASET / "v0001", releases / "evil" / DATASET / "v0001")
    code, out = verify(releases / "evil" / DATASET / "v0001", "--public-key", pinned)
    assert code == 1, out
    assert f"manifest says client '{CLIENT}', release sits at evil/{DATASET}/v0001" in out, out
    if whole_client:  # the copied catalogue is demo's: its row and its signature name demo
        assert "its row for this release records client 'demo', not 'evil'" in out, out
        assert "is not signed by key" in out, out


def test_a_release_copied_to_another_dataset_fails(releases, pinned):
    shutil.copytree(releases / CLIENT / DATASET / "v0001", releases / CLIENT / "other-dataset" / "v0001")
    code, out = verify(releases / CLIENT / "other-dataset" / "v0001", "--public-key", pinned)
    assert code == 1, out
    assert f"manifest says dataset '{DATASET}', release sits at {CLIENT}/other-dataset/v0001" in out, out
    assert f"the newest catalogue does not list {CLIENT}/other-dataset/v0001" in out, out


def test_v0001_over_v0002_with_the_catalogue_rolled_back_fails(releases, pinned):
    client, v2 = releases / CLIENT, releases / CLIENT / DATASET / "v0002"
    shutil.rmtree(v2)
    shutil.copytree(client / DATASET / "v0001", v2)
    (client / "catalog.parquet").write_bytes((client / ".catalog" / "00000001.parquet").read_bytes())
    (client / ".catalog" / "00000002.parquet").unlink()
    code, out = verify(v2, "--public-key", pinned)
    assert code == 1, out
    assert f"manifest says version 1, release sits at {CLIENT}/{DATASET}/v0002" in out, out
    assert f"the newest catalogue does not list {CLIENT}/{DATASET}/v0002: a catalogue rolled back" in out, out


def test_a_deleted_generation_is_named(releases, pinned):
    (releases / CLIENT / ".catalog" / "00000001.parquet").unlink()
    code, out = verify(releases / CLIENT / DATASET / "v0002", "--public-key", pinned)
    assert (
        code == 1 and "catalogue: .catalog/00000001.parquet — generation 1 of 2 is missing: deleted" in out
    ), out


def _forged(data: bytes) -> bytes:
    """The generation `data` with the first release's verdict rewritten, its metadata kept."""
    table, _ = catalog.parse_generation(data)
    verdicts = table["verdict"].to_pylist()
    verdicts[0] = "pass" if verdicts[0] == "fail" else "fail"
    forged = table.set_column(table.schema.get_field_index("verdict"), "verdict", [verdicts])
    return catalog.parquet_bytes(forged.replace_schema_metadata(catalog.generation_meta(data)))


def test_an_altered_generation_is_named(releases, pinned):
    first = releases / CLIENT / ".catalog" / "00000001.parquet"
    first.write_bytes(_forged(first.read_bytes()))
    code, out = verify(releases / CLIENT / DATASET / "v0001", "--public-key", pinned)
    assert code == 1, out
    assert "catalogue: .catalog/00000001.parquet — altered: generation 2 recorded its sha256" in out, out


def test_a_rewritten_catalogue_copy_is_named(releases, pinned):
    copy = releases / CLIENT / "catalog.parquet"
    copy.write_bytes(_forged(copy.read_bytes()))
    code, out = verify(releases / CLIENT / DATASET / "v0001", "--public-key", pinned)
    assert code == 1, out
    assert "catalogue: catalog.parquet — is not a copy of any generation (it claims generation 2)" in out, out


def test_a_generation_appended_without_the_key_is_named(releases, pinned, tmp_path):
    store = LocalStore(releases)
    _publish(
        store, LocalStore(tmp_path / "batch"), None, 1, dataset="planted"
    )  # no key: an unsigned generation 3
    code, out = verify(releases / CLIENT / DATASET / "v0002", "--public-key", pinned)
    assert code == 1, out
    assert "catalogue: .catalog/00000003.parquet — the newest generation (3) is not signed" in out, out


def test_a_forgery_under_a_swapped_public_key_fails_even_unpinned(releases):
    client, v2 = releases / CLIENT, releases / CLIENT / DATASET / "v0002"
    manifest = orjson.loads((v2 / "manifest.json").read_bytes())
    manifest["verdict"] = "fail"
    body = orjson.dumps(manifest, option=orjson.OPT_INDENT_2)
    attacker = Ed25519PrivateKey.generate()
    (v2 / "manifest.json").write_bytes(body)
    (v2 / "manifest.sig").write_bytes(signing.sign(attacker, body))
    (client / signing.PUBLIC_KEY).write_bytes(signing.public_pem(attacker))
    code, out = verify(v2)
    assert code == 1, out
    # every key that ever signed stays under signing-keys/ (rotation), so the swap is named, and the
    # catalogue's row (under the vendor's signature) names the key that signed the release
    assert "signing-key.pub — holds key " + signing.key_id(attacker) + ", none of the keys kept" in out, out
    assert (
        f"is signed by key {signing.key_id(attacker)}, but the catalogue recorded the release as signed by key"
        in out
    ), out
