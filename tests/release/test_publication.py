"""Publication under faults, end to end, with real Prefect flows and a real S3 API (moto_server):

- the same `kpdeliver deliver --config` on the local store and on S3, checked by `kpdeliver verify`;
- transient S3 faults (500/503/dropped connections) while delivering: every image accounted for;
- SIGKILL of the delivering process at random points of staging and publication: no partial
  release is ever listed, and the next run publishes exactly one release equal to a clean run's;
- two deliveries racing for the same version: exactly one wins it, the other takes the next;
- twin deliveries of the same inputs racing: one release, and both runs name it;
- a release signed with the key held in a Prefect Secret block.
"""

from __future__ import annotations

import io
import os
import random
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from kpdeliver.config import load_config
from kpdeliver.release.layout import read_manifest, release_prefix
from kpdeliver.release.publish import published_versions
from kpdeliver.release.verify import verify_release
from kpdeliver.storage import LocalStore, open_store

pytestmark = pytest.mark.slow

CLIENT, DATASET = "demo", "people-demo"
KPDELIVER = str(Path(sys.executable).with_name("kpdeliver"))
# Release files that depend only on the inputs (the report and GX data docs carry run details).
DATA_FILES = re.compile(r"^(coco/|yolo/|index/|qa/(findings|quarantine|annotators)\.parquet$)")


@pytest.fixture(scope="module")
def batches(tmp_path_factory) -> dict[int, Path]:
    """Two synthetic client batches (different images and exports) for the same client/dataset."""
    from kpdeliver.synth import make_demo_batch

    out = {}
    for seed in (3, 4):
        root = tmp_path_factory.mktemp(f"batch{seed}")
        make_demo_batch(root, seed=seed, n_images=24)
        out[seed] = root
    return out


def upload_batch(root: Path, url: str, endpoint: str) -> None:
    src, dst = LocalStore(root / "batch"), open_store(url, {"endpoint_url": endpoint})
    for key in src.list():
        dst.put(key, src.get(key))


def write_config(root: Path, path: Path, *, source: str, releases: str, endpoint: str | None = None) -> Path:
    doc = yaml.safe_load((root / "client.yaml").read_text())
    doc.update(source=source, releases=releases)
    if endpoint:
        doc["storage"] = {"endpoint_url": endpoint}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def s3_config(
    root: Path,
    tmp: Path,
    bucket: str,
    endpoint: str,
    *,
    name: str = "batch",
    releases: str = "releases",
    via: str | None = None,
) -> Path:
    upload_batch(root, f"s3://{bucket}/batches/{name}", endpoint)
    return write_config(
        root,
        tmp / f"{name}-s3.yaml",
        source=f"s3://{bucket}/batches/{name}",
        releases=f"s3://{bucket}/{releases}",
        endpoint=via or endpoint,
    )


def deliver_in_process(config: Path, work: Path) -> str:
    from kpdeliver.cli import app

    r = CliRunner().invoke(app, ["deliver", "--config", str(config), "--work", str(work)])
    assert r.exit_code == 0, f"{r.output}\n{r.exception!r}"
    return r.output


def release_store(config: Path):
    cfg = load_config(config)
    return open_store(
        cfg.releases,
        {"endpoint_url": os.environ.get("AWS_ENDPOINT_URL")} if cfg.releases.startswith("s3://") else None,
    )


def data_files(manifest: dict) -> dict:
    return {p: m["sha256"] for p, m in manifest["files"].items() if DATA_FILES.match(p)}


def kpdeliver_verify(location: str, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [KPDELIVER, "verify", location, *options], capture_output=True, text=True, timeout=120
    )


def assert_published_once_and_whole(store, *, images: int) -> dict:
    assert published_versions(store, CLIENT, DATASET) == [1]
    prefix = f"{CLIENT}/{DATASET}/v0001"
    assert verify_release(store, prefix) == []
    manifest = read_manifest(store, release_prefix(CLIENT, DATASET, 1))
    c = manifest["counts"]
    assert c["images_listed"] == images  # every image of the batch is accounted for
    assert c["images_delivered"] + c["images_quarantined"] + c["images_rejected_at_ingest"] == images
    assert (
        c["instances_delivered"] + c["instances_quarantined"] + c["instances_review_only"]
        == c["instances_in"]
    )
    assert pq.read_table(io.BytesIO(store.get(prefix + "/index/images.parquet"))).num_rows == images
    assert list(store.list(".staging/")) == []
    return manifest


@pytest.fixture(scope="module")
def same_delivery(batches, tmp_path_factory, s3_endpoint, prefect_harness):
    """deliver(backend) -> (store, location, output, public key, manifest): the demo batch delivered once
    per backend, on the first test that asks (the local release signed with the key in the environment)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tests.s3_server import make_bucket

    done: dict[str, tuple] = {}

    def deliver(backend: str) -> tuple:
        if backend in done:
            return done[backend]
        root, tmp = batches[3], tmp_path_factory.mktemp(backend)
        key = Ed25519PrivateKey.generate()
        public = tmp / "vendor.pub"
        public.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        with pytest.MonkeyPatch.context() as mp:
            if backend == "local":
                mp.setenv(
                    "KPDELIVER_SIGNING_KEY",
                    key.private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    ).decode(),
                )
                config = write_config(
                    root, tmp / "local.yaml", source=str(root / "batch"), releases=str(tmp / "releases")
                )
            else:
                config = s3_config(root, tmp, make_bucket(s3_endpoint), s3_endpoint)
            out = deliver_in_process(config, tmp / "work")
        store = release_store(config)
        manifest = assert_published_once_and_whole(store, images=24)
        done[backend] = (store, store.location(f"{CLIENT}/{DATASET}/v0001"), out, public, manifest)
        return done[backend]

    return deliver


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_the_same_delivery_on_the_local_store_and_on_s3(backend, same_delivery):
    store, location, out, public, _ = same_delivery(backend)
    assert "release v0001" in out
    assert location in out.replace("\n", "")

    ok = kpdeliver_verify(location, *(["--public-key", str(public)] if backend == "local" else []))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ("signature valid" if backend == "local" else "UNSIGNED") in ok.stdout, ok.stdout
    key = f"{CLIENT}/{DATASET}/v0001/coco/train.json"
    data = bytearray(store.get(key))
    data[len(data) // 2] ^= 0x20  # one byte of one file
    store.put(key, bytes(data))
    bad = kpdeliver_verify(location)
    assert bad.returncode == 1 and "changed: coco/train.json" in bad.stderr, bad.stdout + bad.stderr


def test_local_and_s3_deliveries_hold_the_same_content(same_delivery):
    local, s3 = same_delivery("local")[-1], same_delivery("s3")[-1]
    assert local["fingerprint"] == s3["fingerprint"]
    assert data_files(local) == data_files(s3) != {}


def test_a_delivery_through_transient_s3_faults_accounts_for_every_image(
    batches, tmp_path, s3_bucket, s3_endpoint, fault_proxy, prefect_harness
):
    proxy = fault_proxy(rate=0.08, seed=7, first=("503", "500", "drop", "drop_after"))
    config = s3_config(batches[3], tmp_path, s3_bucket, s3_endpoint, via=proxy.url)
    # and one source image changed by a byte after the batch's checksums.sha256 was taken
    source = open_store(f"s3://{s3_bucket}/batches/batch")
    victim = next(source.list("images/"))
    data = bytearray(source.get(victim))
    data[-10] ^= 0x01
    source.put(victim, bytes(data))

    deliver_in_process(config, tmp_path / "work")
    faults = {k: proxy.stats[k] for k in ("500", "503", "drop", "drop_after")}
    assert all(faults.values()) and sum(faults.values()) >= 8, proxy.stats
    store = open_store(f"s3://{s3_bucket}/releases")
    manifest = assert_published_once_and_whole(store, images=24)
    assert manifest["counts"]["images_rejected_at_ingest"] == 1
    prefix = f"{CLIENT}/{DATASET}/v0001"
    findings = pq.read_table(io.BytesIO(store.get(prefix + "/qa/findings.parquet"))).to_pylist()
    hits = [f for f in findings if f["check"] == "ingest.checksum_mismatch"]
    assert [f["source"] for f in hits] == [victim] and victim in hits[0]["message"]
    name = victim.removeprefix("images/")
    images = pq.read_table(io.BytesIO(store.get(prefix + "/index/images.parquet"))).to_pylist()
    assert [r["status"] for r in images if r["file_name"] == name] == ["checksum_mismatch"]
    assert not any(p.startswith("yolo/images/") and p.endswith("/" + name) for p in manifest["files"])


class Killer:
    """A proxy hook that SIGKILLs the delivering process at its n-th write of a phase."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.trigger: tuple[str, int] | None = None
        self.counts: Counter = Counter()
        self.fired: str | None = None
        self.lock = threading.Lock()  # the proxy calls the hook from one thread per connection

    def arm(self, proc: subprocess.Popen, trigger: tuple[str, int] | None) -> None:
        self.proc, self.trigger, self.counts, self.fired = proc, trigger, Counter(), None

    def __call__(self, method: str, path: str) -> None:
        if method not in ("PUT", "POST", "DELETE") or "/releases/" not in path or self.proc is None:
            return
        phase = (
            "staging"
            if "/.staging/" in path
            else "publish"
            if re.search(r"/v\d{4}/", path)
            else "catalog"
            if path.split("?", maxsplit=1)[0].endswith("/catalog.parquet")
            else "other"
        )
        with self.lock:
            self.counts[phase] += 1
            self.counts["any"] += 1
            if self.trigger and self.fired is None and self.counts[self.trigger[0]] == self.trigger[1]:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.fired = f"{method} {path}"


def deliver_subprocess(config: Path, work: Path, api_url: str) -> subprocess.Popen:
    env = {**os.environ, "PREFECT_API_URL": api_url}
    return subprocess.Popen(
        [KPDELIVER, "deliver", "--config", str(config), "--work", str(work)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


@pytest.fixture(scope="module")
def api_url(prefect_harness) -> str:
    """The harness's Prefect API, shared with subprocesses so they skip a server start."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


def test_a_delivery_killed_during_publication_leaves_nothing_partial_and_resumes(
    batches, tmp_path, s3_bucket, s3_endpoint, fault_proxy, api_url, same_delivery
):
    killer = Killer()
    proxy = fault_proxy(rate=0.0, hook=killer)
    config = s3_config(batches[3], tmp_path, s3_bucket, s3_endpoint, via=proxy.url)
    store = open_store(f"s3://{s3_bucket}/releases")
    rng = random.Random(int(os.environ.get("KP_KILL_SEED", "20261125")))
    # Where each run dies: at a random write of the staging area, at a random copy into v0001
    # (claimed, no manifest yet), and at the catalog write (published, not yet tidied up).
    triggers = [("staging", rng.randint(1, 60)), ("publish", rng.randint(1, 45)), ("catalog", 1)]
    history = []
    for trigger in triggers:
        proc = deliver_subprocess(config, tmp_path / "work", api_url)
        killer.arm(proc, trigger)
        out, _ = proc.communicate(timeout=300)
        history.append((trigger, killer.fired, proc.returncode, dict(killer.counts)))
        versions = published_versions(store, CLIENT, DATASET)
        if killer.fired:
            assert proc.returncode == -signal.SIGKILL, out
        else:
            assert proc.returncode == 0, out
        assert versions in ([], [1]), history
        if versions:  # a listed release is always whole
            assert verify_release(store, f"{CLIENT}/{DATASET}/v0001") == [], history
        elif list(store.list(f"{CLIENT}/{DATASET}/v0001/")):  # copied files but no manifest: not a release
            assert verify_release(store, f"{CLIENT}/{DATASET}/v0001")[0].kind == "manifest"
    assert all(history[i][1] for i in (0, 1, 2)), history  # every run died where it was meant to
    assert "/v0001/" in history[1][1] and "catalog" in history[2][1], history

    killer.arm(None, None)
    proc = deliver_subprocess(config, tmp_path / "work", api_url)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    manifest = assert_published_once_and_whole(store, images=24)
    claims = [k.rsplit("/", 1)[-1] for k in store.list(f"{CLIENT}/{DATASET}/.claims/")]
    assert claims == [f"fp-{manifest['fingerprint']}", "v0001"]
    assert pq.read_table(io.BytesIO(store.get(f"{CLIENT}/catalog.parquet")))["version"].to_pylist() == [1]
    assert data_files(manifest) == data_files(same_delivery("local")[-1])  # an uninterrupted run's content


def test_two_deliveries_racing_for_the_same_version_exactly_one_wins(
    batches, tmp_path, s3_bucket, s3_endpoint, fault_proxy, api_url
):
    barrier = threading.Barrier(2, timeout=240)
    held: list[str] = []

    def hold_first_claims(method: str, path: str) -> None:
        # Both runs' conditional puts of the v0001 claim are released together.
        if method == "PUT" and path.split("?", maxsplit=1)[0].endswith("/.claims/v0001"):
            held.append(path)
            barrier.wait()

    proxy = fault_proxy(rate=0.0, hook=hold_first_claims)
    configs = [
        s3_config(batches[seed], tmp_path, s3_bucket, s3_endpoint, name=f"batch{seed}", via=proxy.url)
        for seed in (3, 4)
    ]
    procs = [deliver_subprocess(c, tmp_path / f"work{i}", api_url) for i, c in enumerate(configs)]
    outs = [p.communicate(timeout=400)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert len(held) == 2
    store = open_store(f"s3://{s3_bucket}/releases")
    assert published_versions(store, CLIENT, DATASET) == [1, 2]
    won = sorted(re.search(r"release v(\d{4})", o).group(1) for o in outs)
    assert won == ["0001", "0002"], outs
    fingerprints = set()
    for v in (1, 2):
        assert verify_release(store, f"{CLIENT}/{DATASET}/v{v:04d}") == []
        m = read_manifest(store, release_prefix(CLIENT, DATASET, v))
        fingerprints.add(m["fingerprint"])
        assert store.get(f"{CLIENT}/{DATASET}/.claims/v{v:04d}").decode() == m["fingerprint"]
    assert len(fingerprints) == 2


def test_twin_deliveries_of_the_same_batch_publish_one_release_and_both_name_it(
    batches, tmp_path, s3_bucket, s3_endpoint, fault_proxy, api_url
):
    barrier, lock = threading.Barrier(2, timeout=240), threading.Lock()
    held: list[str] = []

    def hold_fingerprint_claims(method: str, path: str) -> None:
        # Both runs' conditional puts of the claim on their (identical) inputs are released together.
        if method == "PUT" and "/.claims/fp-" in path.split("?", maxsplit=1)[0]:
            with lock:  # the first two are the conditional puts; later ones record the version
                held.append(path)
                first_two = len(held) <= 2
            if first_two:
                barrier.wait()

    proxy = fault_proxy(rate=0.0, hook=hold_fingerprint_claims)
    config = s3_config(batches[4], tmp_path, s3_bucket, s3_endpoint, via=proxy.url)
    procs = [deliver_subprocess(config, tmp_path / f"work{i}", api_url) for i in range(2)]
    outs = [p.communicate(timeout=400)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert len(held) >= 2  # both runs were publishing at the same moment
    store = open_store(f"s3://{s3_bucket}/releases")
    manifest = assert_published_once_and_whole(store, images=24)
    location = store.location(f"{CLIENT}/{DATASET}/v0001")
    for out in outs:
        assert "release v0001" in out and location in out.replace("\n", ""), out
    assert manifest["fingerprint"] == store.get(f"{CLIENT}/{DATASET}/.claims/v0001").decode()


def test_a_release_signed_with_the_key_in_a_prefect_secret_block(prefect_harness, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from prefect.blocks.system import Secret

    from kpdeliver.release import signing
    from tasks.store import signing_key

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    Secret(value=pem.decode()).save("kp-test-signing", overwrite=True)
    assert signing.key_id(signing_key("kp-test-signing")) == signing.key_id(key)
    assert signing_key(None) is None or "KPDELIVER_SIGNING_KEY" in os.environ
