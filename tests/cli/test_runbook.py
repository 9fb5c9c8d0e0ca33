"""docs/operations.md's runbook, walked once each: a run killed while publishing is finished by
running it again; `kpdeliver clean` removes the staging that failed runs left and keeps what an
unfinished publication needs; claims stay; a withdrawn release is listed as withdrawn and its number
is not reused; a batch is put on S3 with the documented script and `check` reads it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kpdeliver.release import catalog
from kpdeliver.release.publish import PublishError, clean_staging, publish, staging_prefix
from kpdeliver.release.stage import stage_plan
from kpdeliver.storage import LocalStore
from tests.config.clients import GOOD, make_clients
from tests.release_helpers import tiny_release_plan

ROOT = Path(__file__).resolve().parents[2]
CLIENT, DATASET = "acme", "pose"


def cli(*args: str) -> tuple[int, str]:
    from kpdeliver.cli import app

    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.output


class KilledBeforeTheManifest(LocalStore):
    """A releases folder whose publishing process dies when it is about to write the manifest."""

    def put_if_absent(self, key: str, data: bytes) -> bool:
        if key.endswith("/manifest.json"):
            raise RuntimeError("killed")
        return super().put_if_absent(key, data)


def staged_run(tmp_path: Path, n: int) -> tuple[LocalStore, str, str]:
    """(releases store, fingerprint, staging folder) of inputs `n`, staged as a run does before publishing."""
    store, source = LocalStore(tmp_path / "releases"), LocalStore(tmp_path / "batch")
    fp = hashlib.sha256(f"inputs {n}".encode()).hexdigest()
    staged = staging_prefix(CLIENT, DATASET, fp)
    stage_plan(tiny_release_plan(source), release=store, source=source, prefix=staged)
    return store, fp, staged


def finish(store: LocalStore, fp: str, staged: str, *, clean: bool = True):
    published = publish(
        store=store, client=CLIENT, dataset=DATASET, fingerprint=fp, staged_prefix=staged, manifest_fields={}
    )
    if clean:
        clean_staging(store, CLIENT, DATASET, fp)
    catalog.append_release(store, CLIENT, DATASET, published.version)
    return published


def clean_rows(out: str) -> dict[str, str]:
    """staging folder or moved marker -> 'state action' from `kpdeliver clean`'s plain table."""
    return {
        m.group(1): f"{m.group(2)} {m.group(3)}"
        for m in re.finditer(r"^(\.staging/\S+|\S+/v\d{4}/STAGED)\s+\d+\s+(\w+)\s+(\w+)", out, re.M)
    }


def test_a_run_killed_while_publishing_is_finished_by_running_it_again_and_clean_keeps_what_it_needs(
    tmp_path,
):
    store, fp, staged = staged_run(tmp_path, 1)
    with pytest.raises(RuntimeError, match="killed"):
        publish(
            store=KilledBeforeTheManifest(tmp_path / "releases"),
            client=CLIENT,
            dataset=DATASET,
            fingerprint=fp,
            staged_prefix=staged,
            manifest_fields={},
        )
    v1 = tmp_path / "releases" / CLIENT / DATASET / "v0001"
    assert not (v1 / "manifest.json").exists()  # nothing visible
    assert (v1 / "STAGED").exists() and not (tmp_path / "releases" / staged).exists()  # moved in one rename
    code, out = cli("clean", str(tmp_path / "releases"), "--older-than", "0s", "--apply")
    assert code == 0 and clean_rows(out) == {f"{CLIENT}/{DATASET}/v0001/STAGED": "needed kept"}, out
    assert (v1 / "STAGED").exists()

    _, _, rerun = staged_run(tmp_path, 1)  # the same delivery again: it resumes the claimed publication
    published = finish(store, fp, rerun)
    assert published.version == 1 and published.resumed
    assert cli("verify", published.location)[0] == 0
    code, out = cli("clean", str(tmp_path / "releases"), "--older-than", "0s")
    assert code == 0 and "nothing left over" in out
    claims = sorted(p.name for p in (tmp_path / "releases" / CLIENT / DATASET / ".claims").iterdir())
    assert claims == [f"fp-{fp}", "v0001"]  # claims stay: the record of who took which number


def test_clean_removes_staging_of_published_and_stale_inputs_only_with_apply(tmp_path):
    store, fp_done, published_from = staged_run(tmp_path, 1)
    _, _, staged_done = staged_run(tmp_path, 1)  # a twin's staging of the same inputs
    finish(store, fp_done, published_from, clean=False)  # died while cleaning up after publishing
    _, _, staged_stale = staged_run(tmp_path, 2)  # inputs never delivered again
    releases = str(tmp_path / "releases")
    code, out = cli("clean", releases)
    assert code == 0 and clean_rows(out) == {staged_done: "done removable", staged_stale: "recent kept"}, out
    code, out = cli("clean", releases, "--older-than", "0s")
    assert clean_rows(out) == {staged_done: "done removable", staged_stale: "stale removable"}
    assert "2 folders can be removed" in out and (tmp_path / "releases" / staged_stale).exists()
    code, out = cli("clean", releases, "--older-than", "0s", "--apply")
    assert code == 0 and clean_rows(out) == {staged_done: "done removed", staged_stale: "stale removed"}
    assert not (tmp_path / "releases" / ".staging" / CLIENT / DATASET).exists() or not any(
        (tmp_path / "releases" / ".staging" / CLIENT / DATASET).rglob("STAGED")
    )
    assert cli("verify", str(tmp_path / "releases" / CLIENT / DATASET / "v0001"))[0] == 0
    (tmp_path / "acme.yaml").write_text(GOOD.replace("pose-2026", DATASET).replace("./batch", "./batch"))
    assert cli("clean", "-c", str(tmp_path / "acme.yaml"))[1].startswith("nothing left over")


def test_a_withdrawn_release_is_listed_as_withdrawn_and_its_number_is_not_reused(tmp_path):
    store, fp1, staged1 = staged_run(tmp_path, 1)
    v1 = finish(store, fp1, staged1)
    assert cli("share", v1.location)[0] == 0
    folder = tmp_path / "releases" / CLIENT / DATASET
    (folder / "v0001.zip").unlink()  # 1. the archive first: links handed out stop working
    shutil.rmtree(folder / "v0001")  # 2. the folder
    code, out = cli("releases", str(tmp_path / "releases"), "--json")
    assert code == 0 and [(r["version"], r["withdrawn"]) for r in json.loads(out[out.index("[") :])] == [
        (1, True)
    ]
    assert "withdrawn" in cli("releases", str(tmp_path / "releases"))[1]
    assert cli("verify", v1.location)[0] == 1
    _, fp2, staged2 = staged_run(tmp_path, 2)
    v2 = finish(store, fp2, staged2)
    assert v2.version == 2  # 4. the number is never reused
    assert cli("verify", v2.location)[0] == 0
    _, _, again = staged_run(tmp_path, 1)  # the withdrawn inputs, unchanged: refused, as documented
    with pytest.raises(PublishError, match="claimed for these inputs is gone"):
        publish(
            store=store,
            client=CLIENT,
            dataset=DATASET,
            fingerprint=fp1,
            staged_prefix=again,
            manifest_fields={},
        )


def _doc_block(heading: str, language: str) -> str:
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text[text.index(heading) :]
    return section[section.index(f"```{language}\n") + len(language) + 4 :].split("```", 1)[0]


@pytest.mark.slow
def test_a_batch_put_on_s3_with_the_documented_script_passes_check(s3_bucket, tmp_path):
    batch = make_clients(tmp_path / "local") / "batch"
    script = tmp_path / "upload_batch.py"
    script.write_text(_doc_block("## Putting a batch on S3", "python"))
    url = f"s3://{s3_bucket}/acme/2026-11"
    done = subprocess.run(
        [sys.executable, str(script), str(batch), url],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "uploaded 4 files" in done.stdout
    sums = (batch / "checksums.sha256").read_text().split()
    assert sums == [
        hashlib.sha256((batch / "images" / "img_0001.jpg").read_bytes()).hexdigest(),
        "images/img_0001.jpg",
    ]
    config = tmp_path / "clients" / "acme.yaml"
    config.parent.mkdir()
    config.write_text(GOOD.replace("./batch", url).replace("./releases", f"s3://{s3_bucket}/releases"))
    code, out = cli("check", "-c", str(config))
    assert code == 0 and "usable" in out, out
