"""``oneclass embed``: embed a collection into resumable Parquet shards (in-process or on Ray)."""

from __future__ import annotations

import argparse
import logging

from oneclass.cli.common import CliError, add_cache_arguments, cache_option, progress_enabled

NAME = "embed"
HELP = "embed images into Parquet shards (id, path, status, reason, vectors, boxes, grid)"
log = logging.getLogger("oneclass.cli.embed")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the options of ``embed``."""
    p.add_argument("sources", nargs="+", help="folders, zips, lists of paths/URLs, files")
    p.add_argument(
        "--embedder", default="effnet-lite0", help="embedder spec (default effnet-lite0)"
    )
    p.add_argument("--out", required=True, help="output folder (new, or one to resume)")
    p.add_argument("--shard-size", type=int, default=None, help="images per shard (default 4096)")
    p.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: in this process (default); ray: on a Ray cluster",
    )
    p.add_argument("--address", help="Ray cluster address (default: start Ray on this machine)")
    add_cache_arguments(p)


def run(a: argparse.Namespace) -> int:
    """Run ``embed``; returns the exit status (1 when some images failed)."""
    from oneclass.embed.registry import make_embedder

    if a.shard_size is not None and a.shard_size < 1:
        raise CliError(f"--shard-size must be >= 1, got {a.shard_size}")
    if a.address and a.engine != "ray":
        raise CliError("--address needs --engine ray")
    make_embedder(a.embedder)  # a bad spec fails here, before any image is read
    if a.engine == "ray":
        from oneclass.engine import ray as engine

        summary = engine.embed_collection(
            a.embedder,
            a.sources,
            a.out,
            address=a.address,
            shard_size=a.shard_size,
            progress=progress_enabled(a),
        )
    else:
        from oneclass.engine import local

        summary = local.embed_collection(
            a.embedder,
            a.sources,
            a.out,
            shard_size=a.shard_size,
            cache=cache_option(a),
            progress=progress_enabled(a),
        )
    log.info("%s -> %s (%d shards reused)", summary.line(), a.out, summary.skipped)
    return 1 if summary.status.get("failed") else 0
