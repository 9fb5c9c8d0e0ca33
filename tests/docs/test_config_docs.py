"""docs/config.md is generated from the pydantic models of the client config and kept current."""

from __future__ import annotations

from tests.docs.docs_helpers import DOCS, gen_config


def test_config_reference_is_current():
    gen = gen_config()
    assert (DOCS / "config.md").read_text() == gen.render(), (
        "docs/config.md is out of date: run `python docs/gen_config.py`"
    )


def test_every_config_field_is_described():
    assert gen_config().undescribed() == [], "describe these fields (Field(description=...) or NOTES)"


def test_every_config_key_is_in_the_reference():
    from kpdeliver.config import ClientConfig

    text = (DOCS / "config.md").read_text()
    for name, field in ClientConfig.model_fields.items():
        assert f"| `{field.alias or name}` |" in text
    for key in ("`qa.severity`", "`deep_qa.coverage_targets`"):
        assert f"## {key.strip('`')}" in text
