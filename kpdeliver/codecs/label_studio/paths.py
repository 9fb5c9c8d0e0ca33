"""The image an export's reference denotes, as a path to match under a batch.

A Label Studio server names images `/data/local-files/?d=<path under the storage root>`,
`/data/upload/<project>/<8 hex>-<name>` (the hex prefix is added on upload), a storage URL
(`s3://bucket/key`, `gs://…`, `azure-blob://…`, `http(s)://host/key?presigning`) or, behind its
presign proxy, `/tasks/<id>/presign/?fileuri=<base64 of such a URL>`. Each gives the path it
denotes, URL-decoded; anything else is returned as written. Nothing here decides what is safe:
the caller refuses a path that climbs out (`..`) or is absolute after decoding."""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import parse_qs, unquote, urlsplit

_UPLOAD = re.compile(r"/data/upload/(?:[^/]+/)*(?:[0-9a-f]{8}-)?(?P<name>[^/]+)")
_STORAGE_SCHEMES = frozenset({"s3", "gs", "gcs", "azure-blob", "az", "http", "https"})


def image_path(ref: str) -> str:
    """The path `ref` denotes (a storage key, or a path under the local-files root)."""
    parts = urlsplit(ref.strip())
    scheme = parts.scheme.lower()
    if scheme and scheme not in _STORAGE_SCHEMES:
        return ref  # a drive letter (C:/...) or an unknown scheme: as written, the caller judges it
    query = parse_qs(parts.query)
    path = parts.path
    if path.rstrip("/").endswith("/data/local-files") and query.get("d"):
        return query["d"][0]  # parse_qs has URL-decoded it
    if re.fullmatch(r"/tasks/\d+/presign/?", path) and query.get("fileuri"):
        inner = _unbase64(query["fileuri"][0])
        return image_path(inner) if inner else ref
    m = _UPLOAD.fullmatch(path)
    if m and scheme in ("", "http", "https"):
        return unquote(m.group("name"))
    if scheme:
        # s3://bucket/key: the key; http(s)://host/key?X-Amz-...: the key, the presigning dropped
        return unquote(path).lstrip("/")
    return ref


def _unbase64(text: str) -> str:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=False).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""
