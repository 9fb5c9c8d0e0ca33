"""`kpdeliver keys new` makes a key pair a vendor can sign with; `kpdeliver sign` signs a release
published unsigned (manifest unchanged, catalogue updated) and refuses a signed or altered one;
after a key rotation old releases keep verifying with the old key pinned beside the new one."""

from __future__ import annotations

import hashlib
import io
import stat
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from kpdeliver.release import catalog, signing
from kpdeliver.release.publish import clean_staging, publish, staging_prefix
from kpdeliver.release.stage import stage_plan
from kpdeliver.storage import LocalStore
from tests.release_helpers import tiny_release_plan

CLIENT, DATASET = "acme", "pose"


def cli(*args: str, env: dict | None = None) -> tuple[int, str]:
    from kpdeliver.cli import app

    r = CliRunner().invoke(app, list(args), env=env)
    return r.exit_code, r.output


def publish_release(root: Path, n: int, key: Ed25519PrivateKey | None = None) -> Path:
    """Release `n` of acme/pose (new inputs each time), catalogued as the flow does, signed with `key` if given."""
    store, source = LocalStore(root / "releases"), LocalStore(root / "batch")
    plan = tiny_release_plan(source)
    fp = hashlib.sha256(f"inputs {n}".encode()).hexdigest()
    staged = staging_prefix(CLIENT, DATASET, fp)
    stage_plan(plan, release=store, source=source, prefix=staged)
    published = publish(
        store=store,
        client=CLIENT,
        dataset=DATASET,
        fingerprint=fp,
        staged_prefix=staged,
        manifest_fields={},
        signing_key=key,
    )
    clean_staging(store, CLIENT, DATASET, fp)
    catalog.append_release(store, CLIENT, DATASET, published.version, key)
    return root / "releases" / published.prefix


def new_keys(folder: Path, name: str = "signing-key") -> tuple[Path, Path]:
    code, out = cli("keys", "new", "--out", str(folder), "--name", name)
    assert code == 0, out
    return folder / f"{name}.pem", folder / f"{name}.pub"


def test_keys_new_writes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path):
    code, out = cli("keys", "new", "--out", str(tmp_path / "keys"))
    assert code == 0, out
    private, public = tmp_path / "keys" / "signing-key.pem", tmp_path / "keys" / "signing-key.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key = signing.private_key_from_pem(private.read_bytes(), origin="test")
    assert public.read_bytes() == signing.public_pem(key)
    assert f"sha256:{signing.fingerprint(key)}" in out and str(public) in out
    assert private.read_bytes().decode() not in out  # the secret is never printed
    before = private.read_bytes()
    code, out = cli("keys", "new", "--out", str(tmp_path / "keys"))
    assert code == 2 and "never overwritten" in out
    assert private.read_bytes() == before


def test_sign_adds_a_signature_to_an_unsigned_release_that_verify_then_pins(tmp_path):
    release = publish_release(tmp_path, 1)
    private, public = new_keys(tmp_path / "keys")
    manifest_before = (release / "manifest.json").read_bytes()
    code, out = cli("verify", str(release), "--public-key", str(public))
    assert code == 1 and "manifest.sig — missing" in out  # what the operator met: no way to sign it later

    assert cli("share", str(release))[0] == 0  # an archive handed out before signing
    code, out = cli("sign", str(release), "--key", str(private))
    assert code == 0, out
    assert (release / "manifest.json").read_bytes() == manifest_before
    with zipfile.ZipFile(io.BytesIO((release.parent / "v0001.zip").read_bytes())) as zf:  # rebuilt, signed
        assert zf.read("v0001/manifest.sig") == (release / "manifest.sig").read_bytes()
    key = signing.private_key_from_pem(private.read_bytes(), origin="test")
    assert signing.signature_holds(key.public_key(), manifest_before, (release / "manifest.sig").read_bytes())
    row = catalog.catalogued_row(LocalStore(tmp_path / "releases"), CLIENT, DATASET, 1)
    assert (
        row["signing_key_id"] == signing.key_id(key)
        and row["manifest_sha256"] == hashlib.sha256(manifest_before).hexdigest()
    )
    code, out = cli("verify", str(release), "--public-key", str(public))
    assert code == 0, out
    assert f"sha256:{signing.fingerprint(key)} (pinned with --public-key)" in out
    other = Ed25519PrivateKey.generate()
    (tmp_path / "other.pub").write_bytes(signing.public_pem(other))
    code, out = cli("verify", str(release), "--public-key", str(tmp_path / "other.pub"))
    assert code == 1 and "does not verify with key" in out

    code, out = cli("sign", str(release), "--key", str(private))
    assert code == 1 and "already signed" in out


def test_sign_refuses_a_release_that_does_not_match_its_manifest(tmp_path):
    release = publish_release(tmp_path, 1)
    private, _ = new_keys(tmp_path / "keys")
    (release / "qa" / "report.html").write_text("<html>changed after publication</html>")
    code, out = cli("sign", str(release), "--key", str(private))
    assert code == 1 and "does not verify against its manifest" in out and "qa/report.html" in out
    assert not (release / "manifest.sig").exists()


def test_sign_without_a_key_says_how_to_give_one(tmp_path):
    release = publish_release(tmp_path, 1)
    code, out = cli("sign", str(release), env={"KPDELIVER_SIGNING_KEY": "", "KPDELIVER_SIGNING_KEY_FILE": ""})
    assert code == 2 and "--key FILE" in out and not (release / "manifest.sig").exists()


def test_an_interrupted_sign_is_finished_by_running_it_again(tmp_path):
    release = publish_release(tmp_path, 1)
    private, public = new_keys(tmp_path / "keys")
    key = signing.private_key_from_pem(private.read_bytes(), origin="test")
    (release / "manifest.sig").write_bytes(signing.sign(key, (release / "manifest.json").read_bytes()))
    code, out = cli("verify", str(release), "--public-key", str(public))
    assert code == 1  # killed before the catalogue step: the catalogue is not signed
    code, out = cli("sign", str(release), "--key", str(private))
    assert code == 0 and "finished an interrupted signing" in out
    assert cli("verify", str(release), "--public-key", str(public))[0] == 0


def test_after_a_key_rotation_old_releases_verify_with_the_old_key_pinned_beside_the_new(tmp_path):
    old_private, old_public = new_keys(tmp_path / "keys", "2026-old")
    new_private, new_public = new_keys(tmp_path / "keys", "2027-new")
    old = signing.private_key_from_pem(old_private.read_bytes(), origin="old")
    new = signing.private_key_from_pem(new_private.read_bytes(), origin="new")
    v1 = publish_release(tmp_path, 1, old)
    v2 = publish_release(
        tmp_path, 2, new
    )  # rotated: the newest catalogue generation is signed by the new key

    assert cli("verify", str(v2), "--public-key", str(new_public))[0] == 0
    code, out = cli("verify", str(v1), "--public-key", str(old_public))
    assert code == 1 and "not signed by key" in out  # the catalogue moved on to the new key
    for pins in (
        ["--public-key", str(old_public), "--public-key", str(new_public)],
        ["--public-key", str(tmp_path / "keys")],
    ):  # both keys, or the folder the client keeps them in
        code, out = cli("verify", str(v1), *pins)
        assert code == 0, out
        assert f"sha256:{signing.fingerprint(old)} (pinned" in out
    client = tmp_path / "releases" / CLIENT
    assert (client / "signing-keys" / f"{signing.key_id(old)}.pub").read_bytes() == old_public.read_bytes()
    assert (client / "signing-key.pub").read_bytes() == new_public.read_bytes()
    code, out = cli("verify", str(v1))  # unpinned: every key published beside the catalogue
    assert code == 0 and "NOT pinned" in out

    code, out = cli("share", str(v1))
    assert code == 0, out
    with zipfile.ZipFile(io.BytesIO((v1.parent / "v0001.zip").read_bytes())) as zf:
        assert zf.read("v0001/signing-key.pub") == old_public.read_bytes()  # the key that signed it


@pytest.mark.parametrize("name", ["../up", ".hidden", ""])
def test_keys_new_refuses_a_name_that_is_not_a_plain_stem(tmp_path, name):
    code, out = cli("keys", "new", "--out", str(tmp_path), "--name", name)
    assert code == 2 and "plain file name" in out
