"""A schema file of any kind given in a client config by a path relative to the config is found
beside the config, wherever the command runs from."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kpdeliver.codecs.resolve import resolve_schema
from kpdeliver.config import load_config

CONFIG = """
client: acme
dataset: pose
schema: {schema}
source: ./batch
releases: ./releases
annotators: [ann_a]
"""


REAL_CVAT = (
    Path(__file__).resolve().parent.parent / "fixtures" / "real" / "cvat" / "xml_format.example-images.xml"
)
LS_CONFIG = (
    '<View><Image name="image" value="$image"/><KeyPointLabels name="kp" toName="image">'
    '<Label value="nose"/><Label value="tail"/></KeyPointLabels></View>'
)


def _cvat_xml(path: Path) -> None:
    shutil.copy(REAL_CVAT, path)  # CVAT's documented example: skeleton `s1` with 3 points


def _ls_config(path: Path) -> None:
    path.write_text(LS_CONFIG)


@pytest.mark.parametrize(
    "write, keypoints", [(_cvat_xml, 3), (_ls_config, 2)], ids=["cvat-xml", "label-studio-config"]
)
def test_an_xml_schema_path_is_taken_relative_to_the_config(tmp_path, monkeypatch, write, keypoints):
    project = tmp_path / "project"
    (project / "schemas").mkdir(parents=True)
    write(project / "schemas" / "skeleton.xml")
    (project / "client.yaml").write_text(CONFIG.format(schema="schemas/skeleton.xml"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(project / "client.yaml")
    assert resolve_schema(config.schema_name).num_keypoints == keypoints


def test_a_builtin_schema_name_stays_a_name(tmp_path):
    (tmp_path / "client.yaml").write_text(CONFIG.format(schema="coco17"))
    assert load_config(tmp_path / "client.yaml").schema_name == "coco17"
