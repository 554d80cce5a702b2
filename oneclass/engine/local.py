"""The in-process engine: score or embed a collection of any size in batches, streaming results.

Memory holds one batch of decoded images and vectors, never the collection: each batch is scored
through the model's own :meth:`oneclass.pipeline.Pipeline.score` (the one scoring path) and its
rows are appended to the output table at once (:class:`oneclass.engine.tables.StreamingTable`,
renamed into place at the end). The only thing kept per image is its address in the item list.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from oneclass.data.items import unique_ids
from oneclass.data.sources import ImageItem
from oneclass.engine.tables import StreamingTable

#: images per batch handed to the model (bounds memory: decoded images + vectors of one batch)
DEFAULT_BATCH = 256


@dataclass
class RunSummary:
    """What a collection run did.

    Attributes:
        rows: rows written (one per image).
        status: count of each status (``ok``, ``no_face``, ``failed``).
        seconds: wall time.
        out: the file or folder written (``None``: nothing written).
        skipped: shards already complete and reused (embedding runs).
    """

    rows: int = 0
    status: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    out: Path | None = None
    skipped: int = 0

    def add(self, frame: pd.DataFrame) -> None:
        """Count the rows of one finished batch."""
        self.rows += len(frame)
        if len(frame):
            self.status.update(frame["status"].astype(str).str.split(":").str[0].tolist())

    @property
    def rate(self) -> float:
        """Returns images per second."""
        return self.rows / self.seconds if self.seconds > 0 else math.nan

    def line(self) -> str:
        """Returns a one-line human summary."""
        parts = ", ".join(f"{k}={v}" for k, v in sorted(self.status.items()))
        return f"{self.rows} images in {self.seconds:.1f} s ({self.rate:.1f}/s); status: {parts}"


def collection_items(images: Any) -> list[ImageItem]:
    """Returns the :class:`ImageItem` list of a source spec, a path, or a list of them, with ids
    made unique over the whole collection (not only within a batch)."""
    from oneclass.pipeline_inputs import as_items

    return unique_ids(as_items(images))


def batches(
    items: Sequence[ImageItem] | Iterable[ImageItem], size: int
) -> Iterator[list[ImageItem]]:
    """Yields consecutive lists of at most ``size`` items."""
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size}")
    batch: list[ImageItem] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def score_collection(
    pipeline: Any,
    images: Any,
    out: str | Path | None = None,
    *,
    batch_size: int = DEFAULT_BATCH,
    fmt: str | None = None,
    progress: bool = True,
    sink: Any = None,
) -> RunSummary:
    """Score a collection in batches with a fitted pipeline, writing rows as they finish.

    Args:
        pipeline: a fitted :class:`oneclass.pipeline.Pipeline` (e.g. from :func:`oneclass.load`).
        images: a source spec, a path, ImageItems, or a list of those.
        out: the CSV/Parquet file to write (atomic at the end); ``None`` with ``sink``.
        batch_size: images per batch.
        fmt: ``"csv"`` or ``"parquet"`` (default: from ``out``'s suffix).
        progress: show a progress bar over the collection.
        sink: instead of a file, a callable that takes each scored batch (a DataFrame).

    Returns:
        The :class:`RunSummary`.
    """
    items = collection_items(images)
    summary = RunSummary(out=Path(out) if out is not None else None)
    start = time.perf_counter()
    inner_progress = pipeline.progress
    pipeline.progress = False
    table = StreamingTable(out, fmt) if out is not None else None
    try:
        with tqdm(total=len(items), disable=not progress, unit="img", desc="score") as bar:
            for batch in batches(items, batch_size):
                frame = pipeline.score(batch)
                if table is not None:
                    table.write(frame)
                if sink is not None:
                    sink(frame)
                summary.add(frame)
                bar.update(len(batch))
        if table is not None:
            table.close()
    except BaseException:
        if table is not None:
            table.abort()
        raise
    finally:
        pipeline.progress = inner_progress
    summary.seconds = time.perf_counter() - start
    return summary


def embed_collection(
    embedder: Any,
    images: Any,
    out_dir: str | Path,
    *,
    shard_size: int | None = None,
    cache: Any = True,
    progress: bool = True,
) -> RunSummary:
    """Embed a collection into Parquet shards (:mod:`oneclass.engine.shards`), resuming by shard.

    Args:
        embedder: an embedder spec or object.
        images: a source spec, a path, ImageItems, or a list of those.
        out_dir: the output folder (new, empty, or one this function wrote before).
        shard_size: images per shard (default :data:`oneclass.engine.shards.DEFAULT_SHARD`).
        cache: the embedding cache (``True``: the default one; ``None``/``False``: none).
        progress: show a progress bar.

    Returns:
        The :class:`RunSummary` (``skipped`` = shards reused from an earlier run).
    """
    from oneclass.embed.registry import make_embedder
    from oneclass.engine import shards

    emb = make_embedder(embedder) if isinstance(embedder, str) else embedder
    items = collection_items(images)
    size = int(shard_size or shards.DEFAULT_SHARD)
    out = Path(out_dir)
    shards.prepare_output(out, emb.name, size, len(items))
    summary = RunSummary(out=out)
    start = time.perf_counter()
    with tqdm(total=len(items), disable=not progress, unit="img", desc=f"embed {emb.name}") as bar:
        for index, batch in enumerate(batches(items, size)):
            path = shards.shard_path(out, index)
            if shards.shard_is_done(path, batch):
                summary.skipped += 1
            else:
                frame = shards.embedding_rows(batch, emb, cache)
                shards.write_shard(path, frame)
                summary.add(frame)
            bar.update(len(batch))
    summary.seconds = time.perf_counter() - start
    return summary
