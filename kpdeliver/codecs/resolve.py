"""Resolve a schema name or file, including formats whose own metadata defines a skeleton.

`kpdeliver.schema` sits on the ground floor and knows built-ins and YAML files; a CVAT XML
skeleton (or a Label Studio labeling config) is read by its codec's `schema_from_metadata`, so
the resolver that accepts every form lives here, above the codecs."""

from __future__ import annotations

from pathlib import Path

from kpdeliver.bounded import SCHEMA_MAX_BYTES, BoundsError, read_regular
from kpdeliver.codecs import CodecError
from kpdeliver.schema import KeypointSchema, SchemaError, get_schema


def load_schema_from_metadata(path: str | Path) -> KeypointSchema:
    """A custom schema from a format's own metadata file (CVAT XML `<meta>` skeleton label,
    Label Studio labeling config)."""
    from kpdeliver.codecs.registry import schema_from_metadata

    p = Path(path)
    try:  # a regular file of bounded size: a FIFO or a device is refused, never waited on
        return schema_from_metadata(
            p.name, read_regular(p, what="schema file", limit=SCHEMA_MAX_BYTES), source=str(p)
        )
    except OSError as e:
        raise SchemaError(f"cannot read schema file {p}: {e.strerror}") from None
    except (CodecError, BoundsError) as e:
        raise SchemaError(str(e)) from None


def resolve_schema(name_or_path: str | Path) -> KeypointSchema:
    """A built-in schema by name, or a custom one from a YAML file or an XML metadata file."""
    if str(name_or_path).endswith(".xml"):
        return load_schema_from_metadata(name_or_path)
    return get_schema(name_or_path)
