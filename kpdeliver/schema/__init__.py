"""Keypoint schemas: names, skeleton, left/right pairs (-> flip_idx) and OKS sigmas.

A schema is the contract between annotators, codecs, QA and clients. It is immutable and
checks its own invariants when built, so a bad custom schema fails at load time, not
half-way through a delivery.

`core` holds the schema model and its loading; `builtin` the built-in schemas and `get_schema`.
"""

from kpdeliver.schema.builtin import (
    BUILTIN_SCHEMAS,
    COCO17,
    FACE68,
    FACE98,
    HAND21,
    get_schema,
    sigmas_origin,
)
from kpdeliver.schema.core import (
    DEFAULT_SIGMA,
    KeypointSchema,
    SchemaError,
    load_schema_yaml,
    pairs_by_side,
    schema_from_dict,
    schema_version,
    unpaired_side_names,
)

__all__ = [
    "BUILTIN_SCHEMAS",
    "COCO17",
    "DEFAULT_SIGMA",
    "FACE68",
    "FACE98",
    "HAND21",
    "KeypointSchema",
    "SchemaError",
    "get_schema",
    "load_schema_yaml",
    "pairs_by_side",
    "schema_from_dict",
    "schema_version",
    "sigmas_origin",
    "unpaired_side_names",
]
