"""Signed releases under attack: an Ed25519 key generated here signs a release; any single byte
changed in any of its files (manifest, sign-off, signature, an archive beside it, the public key,
the catalogue) makes `verify` fail naming what changed. Unsigned releases say so, and their
metadata is still cross-checked. On the local store and on S3 (moto_server)."""

from __future__ import annotations

import hashlib
import io
import random
import zipfile

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from kpdeliver.release import signing
from kpdeliver.release.catalog import rebuild_catalog
from kpdeliver.release.package import ReleasePlan, finish_plan
from kpdeliver.release.publish import PublishError, clean_staging, publish, staging_prefix
from kpdeliver.release.share import share_links
from kpdeliver.release.signoff import RuleResult, Verdict
from kpdeliver.release.stage import stage_plan
from kpdeliver.release.verify import check_release
from kpdeliver.storage import LocalStore, open_store
from tests.release_helpers import tiny_release_plan

PREFIX = "acme/pose/v0001"


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def release_plan(source, verdict: str = "pass") -> ReleasePlan:
    plan = tiny_release_plan(source)  # images listed 2, delivered 1; instances in 3, held back 1; 1 finding
    plan.verdict = Verdict(
        verdict,
        rules=(
            RuleResult(
                "max_error_findings", None, 0, 0, "pass", "0 error findings on delivered items (max 0)"
            ),
            RuleResult(
                "max_quarantined_fraction", None, 0.5, 0.333333, "pass", "33.3% of instances quarantined"
            ),
        ),
        findings_by_check={"qa.low_agreement": {"error": 0, "warning": 1, "info": 0}},
    )
    plan.files.pop("qa/signoff.json")
    finish_plan(plan, "<html>report</html>")
    return plan


def publish_one(store, source, key: Ed25519PrivateKey | None):
    fp = "5a" * 32
    staged = staging_prefix("acme", "pose", fp)
    stage_plan(release_plan(source), release=store, source=source, prefix=staged)
    pub = publish(
        store=store,
        client="acme",
        dataset="pose",
        fingerprint=fp,
        staged_prefix=staged,
        manifest_fields={"source": {"location": "batch"}},
        signing_key=key,
    )
    clean_staging(store, "acme", "pose", fp)
    rebuild_catalog(store, "acme", key)  # the catalogue of a signed release is signed too
    return pub


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.slow)])
def stores(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "releases"), LocalStore(tmp_path / "batch")
    bucket = request.getfixturevalue("s3_bucket")
    return open_store(f"s3://{bucket}/releases"), open_store(f"s3://{bucket}/batch")


@pytest.fixture
def vendor_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def cli(*args: str) -> tuple[int, str]:
    from kpdeliver.cli import app

    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.output


def flip(data: bytes, at: int) -> bytes:
    b = bytearray(data)
    b[at] ^= 0x01
    return bytes(b)


def test_a_signed_release_verifies_with_the_vendors_key_only(stores, vendor_key, tmp_path):
    store, source = stores
    pub = publish_one(store, source, vendor_key)
    assert store.exists(f"{PREFIX}/manifest.sig") and store.get("acme/signing-key.pub") == signing.public_pem(
        vendor_key
    )
    assert pub.manifest["signature"]["key_id"] == signing.key_id(vendor_key)
    assert (
        len(pub.manifest["qa"]["signoff_content_sha256"]) == 64
    )  # the signature covers the sign-off's digest
    checked = check_release(store, PREFIX, public_key=vendor_key.public_key())
    assert checked.problems == [] and checked.signed_by == signing.key_id(vendor_key)

    key_file = tmp_path / "vendor.pub"
    key_file.write_bytes(signing.public_pem(vendor_key))
    code, out = cli("verify", store.location(PREFIX), "--public-key", str(key_file))
    assert code == 0 and f"signature valid (Ed25519, key {signing.key_id(vendor_key)})" in out, out

    other = tmp_path / "other.pub"
    other.write_bytes(signing.public_pem(Ed25519PrivateKey.generate()))
    code, out = cli("verify", store.location(PREFIX), "--public-key", str(other))
    assert code == 1 and "signature: manifest.sig" in out and "does not verify" in out, out


def test_any_single_byte_changed_in_any_file_of_a_signed_release_is_caught(stores, vendor_key):
    store, source = stores
    pub = publish_one(store, source, vendor_key)
    share_links(store, PREFIX, expires_seconds=3600)  # an archive beside the release
    public = vendor_key.public_key()
    rng = random.Random(12)
    targets = {f"{PREFIX}/{p}": p for p in pub.manifest["files"]} | {
        f"{PREFIX}/manifest.json": "manifest.json",
        f"{PREFIX}/manifest.sig": "manifest.sig",
        "acme/pose/v0001.zip": "v0001.zip",
        "acme/signing-key.pub": "signing-key.pub",
    }
    tried = 0
    for key, name in targets.items():
        original = store.get(key)
        spots = {0, len(original) // 2, len(original) - 1}
        if name.endswith(".zip"):  # headers, data, central directory, end record
            spots |= {rng.randrange(len(original)) for _ in range(10)}
        for at in sorted(spots):
            store.put(key, flip(original, at))
            # the client's key when checking the published one; the published key otherwise
            problems = check_release(store, PREFIX, public_key=None if name == "signing-key.pub" else public)
            assert problems.problems, f"byte {at} of {name} changed unnoticed"
            assert name in " ".join(map(str, problems.problems)), (name, at, problems.problems)
            tried += 1
        store.put(key, original)
    assert check_release(store, PREFIX, public_key=public).problems == []
    assert tried >= 3 * len(targets)


def test_a_resigned_manifest_or_a_removed_signature_is_refused(stores, vendor_key, tmp_path):
    store, source = stores
    publish_one(store, source, vendor_key)
    raw = store.get(f"{PREFIX}/manifest.json")
    forged = orjson.loads(raw)
    forged["verdict"] = "fail"
    body = orjson.dumps(forged, option=orjson.OPT_INDENT_2)
    attacker = Ed25519PrivateKey.generate()
    store.put(f"{PREFIX}/manifest.json", body)
    store.put(f"{PREFIX}/manifest.sig", signing.sign(attacker, body))
    store.put("acme/signing-key.pub", signing.public_pem(attacker))  # and the published key replaced too
    key_file = tmp_path / "vendor.pub"
    key_file.write_bytes(signing.public_pem(vendor_key))
    code, out = cli("verify", store.location(PREFIX), "--public-key", str(key_file))
    assert code == 1 and "does not verify" in out and "the catalogue recorded" in out, out
    assert "verdict 'pass' but the manifest records 'fail'" in out

    store.put(f"{PREFIX}/manifest.json", raw)
    store.delete(f"{PREFIX}/manifest.sig")
    code, out = cli("verify", store.location(PREFIX))
    assert code == 1 and "signature: manifest.sig — missing: the release is not signed" in out, out


@pytest.mark.parametrize(
    "attack", ["manifest verdict", "manifest counts", "signoff verdict", "both verdicts"]
)
def test_rewritten_metadata_of_an_unsigned_release_is_caught(stores, attack):
    store, source = stores
    publish_one(store, source, None)
    code, out = cli("verify", store.location(PREFIX))
    assert code == 0 and "UNSIGNED release" in out and ": UNSIGNED;" in out, out

    manifest = orjson.loads(store.get(f"{PREFIX}/manifest.json"))
    signoff = orjson.loads(store.get(f"{PREFIX}/qa/signoff.json"))
    if attack in ("signoff verdict", "both verdicts"):
        signoff["verdict"] = "fail"
        body = orjson.dumps(signoff)
        store.put(f"{PREFIX}/qa/signoff.json", body)
        # a careful attacker records the new sign-off's hash in the manifest as well
        manifest["files"]["qa/signoff.json"] = {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    if attack in ("manifest verdict", "both verdicts"):
        manifest["verdict"] = "fail"
    if attack == "manifest counts":
        manifest["counts"]["images_delivered"] = 2
        manifest["counts"]["splits"] = {"train": 2}
    if attack != "signoff verdict":
        store.put(f"{PREFIX}/manifest.json", orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    rebuild_catalog(store, "acme")  # the repair path rebuilds the catalogue: it keeps the first record
    code, out = cli("verify", store.location(PREFIX))
    assert code == 1, out
    if attack != "signoff verdict":
        assert "manifest: manifest.json — sha256" in out and "the catalogue recorded" in out, out
    if attack == "manifest counts":
        assert "images delivered + quarantined + rejected at ingest differ from images_listed" in out
    if attack in ("manifest verdict", "signoff verdict"):
        assert "signoff: qa/signoff.json — verdict" in out, out


def test_the_signing_key_comes_from_the_environment_and_is_never_echoed(tmp_path, vendor_key):
    pem = private_pem(vendor_key)
    assert signing.key_from_environment({}) is None
    got = signing.key_from_environment({signing.KEY_ENV: pem.decode()})
    assert signing.key_id(got) == signing.key_id(vendor_key)
    path = tmp_path / "vendor.pem"
    path.write_bytes(pem)
    assert signing.key_id(signing.key_from_environment({signing.KEY_FILE_ENV: str(path)})) == signing.key_id(
        vendor_key
    )
    broken = pem.decode().replace("MC4CAQAw", "MC4CAQAx")
    with pytest.raises(signing.SigningKeyError) as e:
        signing.key_from_environment({signing.KEY_ENV: broken})
    assert "PRIVATE KEY" not in str(e.value) and broken.splitlines()[1] not in str(e.value)


def test_twins_with_different_keys_do_not_publish_a_mismatched_signature(tmp_path, vendor_key):
    store = LocalStore(tmp_path / "releases")
    fp = "77" * 32
    staged = [staging_prefix("acme", "pose", fp) for _ in range(2)]
    for s in staged:
        stage_plan(release_plan(store), release=store, source=store, prefix=s)
    # the first run claims the inputs as signed, then dies before its manifest
    from kpdeliver.release.publish import fingerprint_claim

    store.put_if_absent(
        fingerprint_claim("acme", "pose", fp),
        orjson.dumps({"staging": staged[0], "fields": {}, "key_id": signing.key_id(vendor_key)}),
    )
    with pytest.raises(PublishError, match="signed by key"):
        publish(
            store=store,
            client="acme",
            dataset="pose",
            fingerprint=fp,
            staged_prefix=staged[1],
            manifest_fields={},
        )
    done = publish(
        store=store,
        client="acme",
        dataset="pose",
        fingerprint=fp,
        staged_prefix=staged[1],
        manifest_fields={},
        signing_key=vendor_key,
    )
    assert check_release(store, "acme/pose/v0001", public_key=vendor_key.public_key()).signed_by
    assert done.version == 1


def test_the_share_archive_of_a_signed_release_holds_signature_and_key(stores, vendor_key):
    store, source = stores
    publish_one(store, source, vendor_key)
    links = share_links(store, PREFIX, expires_seconds=600)
    assert links.signed_by == signing.key_id(vendor_key) and links.public_key
    with zipfile.ZipFile(io.BytesIO(store.get("acme/pose/v0001.zip"))) as zf:
        assert zf.read("v0001/signing-key.pub") == signing.public_pem(vendor_key)
        manifest, sig = zf.read("v0001/manifest.json"), zf.read("v0001/manifest.sig")
    assert signing.signature_holds(vendor_key.public_key(), manifest, sig)
