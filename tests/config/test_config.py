from pathlib import Path

import pytest

from kpdeliver.config import ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "client.yaml"
    p.write_text(text)
    return p


GOOD = """
client: acme
dataset: pose-2026
schema: coco17
source: ./batch
releases: ./releases
annotators: [ann_a, ann_b]
splits: {train: 0.7, val: 0.3, seed: 3}
"""


def test_good_config_resolves_relative_locations(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.source == str((tmp_path / "batch").resolve())
    assert cfg.releases == str((tmp_path / "releases").resolve())
    assert cfg.splits.ratios() == {"train": 0.7, "val": 0.3}
    assert cfg.schema_name == "coco17"


@pytest.mark.parametrize(
    "text, fragment",
    [
        (GOOD.replace("train: 0.7", "train: 0.9"), "splits"),
        (GOOD.replace("annotators: [ann_a, ann_b]", "annotators: [ann_a, ann_a]"), "annotators"),
        (GOOD + "colour: blue\n", "colour"),
        ("client: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "mapping"),
        (GOOD.replace("client: acme", "client: ../evil"), "client"),
    ],
)
def test_bad_config_fails_with_one_sentence(tmp_path, text, fragment):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, text))
    msg = str(e.value)
    assert fragment in msg and "\n" not in msg


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_deliver_refuses_a_config_reaching_into_another_clients_prefix(tmp_path):
    from typer.testing import CliRunner

    from kpdeliver.cli import app

    (tmp_path / "acme.yaml").write_text(GOOD)
    (tmp_path / "mallory.yaml").write_text(GOOD.replace("client: acme", "client: mallory"))
    res = CliRunner().invoke(app, ["deliver", "--config", str(tmp_path / "mallory.yaml")])
    assert res.exit_code == 2
    assert "refusing to run" in res.output and "acme" in res.output


def test_deliver_with_a_missing_source_fails_fast_in_one_sentence(tmp_path):
    from typer.testing import CliRunner

    from kpdeliver.cli import app

    cfg = write(tmp_path, GOOD)  # ./batch does not exist
    res = CliRunner().invoke(app, ["deliver", "--config", str(cfg)])
    assert res.exit_code == 2
    assert "does not exist" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "releases").exists()


def test_the_two_oks_thresholds_have_their_own_names(tmp_path):
    cfg = load_config(write(tmp_path, GOOD + "qa: {min_mean_oks: 0.6}\ndeep_qa: {low_agreement_oks: 0.4}\n"))
    assert (cfg.qa.min_mean_oks, cfg.deep_qa.low_agreement_oks) == (0.6, 0.4)


@pytest.mark.parametrize("section, new", [("qa", "min_mean_oks"), ("deep_qa", "low_agreement_oks")])
def test_the_old_min_oks_key_still_works_with_a_warning_naming_the_file_and_the_new_key(
    tmp_path, section, new
):
    from kpdeliver.config import DeprecatedConfigKey

    path = write(tmp_path, GOOD + f"{section}: {{min_oks: 0.55}}\n")
    with pytest.warns(
        DeprecatedConfigKey, match=rf"{path}: {section}\.min_oks is deprecated, write {section}\.{new}"
    ):
        cfg = load_config(path)
    assert getattr(getattr(cfg, section), new) == 0.55
    with pytest.raises(ConfigError, match=rf"give only {section}\.{new}"):
        load_config(write(tmp_path, GOOD + f"{section}: {{min_oks: 0.55, {new}: 0.5}}\n"))
