"""Before `make ls-start`: every client config with a `tool:` section must be servable by the
Label Studio about to start — its batch folder under LS_ROOT (the server's
LOCAL_FILES_DOCUMENT_ROOT) and its `tool.url` on LS_PORT. Batches on s3:// are read through
S3 storage and need neither.

    python infra/label-studio/check_root.py --root LS_ROOT --port LS_PORT [client.yaml ...]

Exits 2 with one line per problem, else prints what it checked.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlsplit

from kpdeliver.config import ConfigError, load_config


def problems(config_path: Path, root: Path, port: int) -> list[str]:
    try:
        cfg = load_config(config_path)
    except ConfigError as e:
        return [f"{config_path}: {e}"]
    if cfg.tool is None:
        return []
    out = []
    url = urlsplit(cfg.tool.url)
    tool_port = url.port or (443 if url.scheme == "https" else 80)
    if url.hostname in ("127.0.0.1", "localhost", "::1") and tool_port != port:
        out.append(f"{config_path}: tool.url {cfg.tool.url} is on port {tool_port}, not LS_PORT={port}")
    if cfg.source.startswith("s3://"):
        return out
    batch = Path(cfg.source.removeprefix("file://")).resolve()
    if batch == root or not batch.is_relative_to(root):
        out.append(
            f"{config_path}: the batch folder {batch} is not under LS_ROOT={root}; "
            f"use LS_ROOT={batch.parent} or a folder above it"
        )
    elif cfg.tool.document_root and Path(cfg.tool.document_root).resolve() != root:
        out.append(f"{config_path}: tool.document_root {cfg.tool.document_root} is not LS_ROOT={root}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("configs", nargs="*", type=Path)
    args = ap.parse_args()
    root = args.root.resolve()
    if not root.is_dir():
        print(f"LS_ROOT={args.root} is not a folder", file=sys.stderr)
        return 2
    found = [p for c in args.configs for p in problems(c, root, args.port)]
    for line in found:
        print(line, file=sys.stderr)
    if found:
        return 2
    print(f"LS_ROOT={root} holds the local batches of {len(args.configs)} config(s); LS_PORT={args.port}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
