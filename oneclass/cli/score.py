"""``oneclass score``: score images with a saved model (CSV/Parquet to a file, or CSV to stdout).

Rows stream out as batches finish (constant memory, the file renamed into place at the end), in
this process (default) or on a Ray cluster (``--engine ray [--address ADDR]``); ``--runtime
onnx`` runs the embedder's network in onnxruntime. Every engine and runtime scores through
:meth:`oneclass.pipeline.Pipeline.score`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from oneclass.cli.common import (
    CliError,
    add_cache_arguments,
    cache_option,
    progress_enabled,
    write_table,
)

NAME = "score"
HELP = "score images with a saved model"
log = logging.getLogger("oneclass.cli.score")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the options of ``score``."""
    p.add_argument("--model", required=True, help="a model folder written by `oneclass fit`")
    p.add_argument("sources", nargs="+", help="folders, zips, lists of paths/URLs, files")
    p.add_argument("--out", help="CSV or .parquet file to write (default: CSV on stdout)")
    p.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: in this process (default); ray: on a Ray cluster (the [scale] extra)",
    )
    p.add_argument("--address", help="Ray cluster address (default: start Ray on this machine)")
    p.add_argument(
        "--runtime",
        choices=("torch", "onnx"),
        default="torch",
        help="onnx: run the embedder network in onnxruntime (exported once, cached)",
    )
    p.add_argument("--batch-size", type=int, default=None, help="images per batch")
    p.add_argument(
        "--maps",
        metavar="DIR",
        help="patch embedders: write an anomaly-map overlay per image into DIR",
    )
    add_cache_arguments(p)


def run(a: argparse.Namespace) -> int:
    """Run ``score``; returns the exit status."""
    from oneclass.persist import load
    from oneclass.pipeline import Pipeline

    pipe = load(a.model)
    if not isinstance(pipe, Pipeline):
        raise CliError(
            f"{a.model}: a detector on vectors, not an image pipeline; "
            "use it from Python with score_samples(X)"
        )
    pipe.cache, pipe.progress = cache_option(a), progress_enabled(a)
    if a.maps and pipe.embedder_.kind != "patch":
        raise CliError(
            f"--maps needs a patch embedder; this model's is "
            f"{pipe.embedder_spec!r} (kind {pipe.embedder_.kind!r})"
        )
    if a.address and a.engine != "ray":
        raise CliError("--address needs --engine ray")
    if a.batch_size is not None and a.batch_size < 1:
        raise CliError(f"--batch-size must be >= 1, got {a.batch_size}")
    if a.maps:
        if a.engine != "local":
            raise CliError("--maps runs in this process: drop --engine ray")
        return score_with_maps(pipe, a)
    from oneclass.engine import local

    if not local.collection_items(a.sources):
        raise CliError("no images found in " + ", ".join(a.sources))
    sink = None if a.out else StdoutTable()
    if a.engine == "ray":
        from oneclass.engine import ray as ray_engine

        summary = ray_engine.score_collection(
            a.model,
            a.sources,
            a.out,
            address=a.address,
            batch_size=a.batch_size or 64,
            cache=None,
            runtime=a.runtime,
            progress=progress_enabled(a),
            sink=sink,
        )
    else:
        if a.runtime == "onnx":
            from oneclass.export import onnx_pipeline

            onnx_pipeline(pipe)
        summary = local.score_collection(
            pipe,
            a.sources,
            a.out,
            batch_size=a.batch_size or local.DEFAULT_BATCH,
            progress=progress_enabled(a),
            sink=sink,
        )
    log.info("%s%s", summary.line(), f" -> {a.out}" if a.out else "")
    return 0


class StdoutTable:
    """Writes scored batches to stdout as one CSV (header once), cells neutralised."""

    def __init__(self) -> None:
        self.header = True

    def __call__(self, frame: Any) -> None:
        """Write one batch."""
        from oneclass.outputs import write_csv_stream

        write_csv_stream(frame, sys.stdout, header=self.header)
        sys.stdout.flush()
        self.header = False


def score_with_maps(pipe: Any, a: argparse.Namespace) -> int:
    """Score in memory and write an anomaly-map overlay per image; returns the exit status."""
    details = pipe.score_details(a.sources)
    df = details.table
    if df.empty:
        raise CliError("no images found in " + ", ".join(a.sources))
    written = details.write_maps(a.maps)
    log.info("%d anomaly maps -> %s", written, a.maps)
    write_table(df, a.out)
    return 0
