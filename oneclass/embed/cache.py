"""Image items to embeddings, through the embedding cache: :func:`embed_items`.

:func:`embed_items` reads each item's bytes once (bounded: see :mod:`oneclass.data.uri`), hashes
them, takes what the cache has, and decodes and embeds only the misses, in batches, decoding
the next batch on a thread pool while the current one runs through the model. An unreadable or
corrupt file (or a FIFO, a zip bomb, an encrypted member...) becomes a failure with its reason
(never a blank image) and the run goes on. An embedder's ``size_hint`` (effnet-lite0: 256, CLIP:
its input size) lets big JPEGs decode at a reduced draft scale that still covers the model's
input: much faster for camera photos, and the vectors of such photos differ slightly from those
of a full decode passed to ``embedder.embed`` (small images are unaffected). An embedder's
``max_side`` (if it has one) bounds the decoded image's longer side (face search on a 9000x9000
PNG).

The cache itself (:class:`EmbeddingCache`, :func:`open_cache`, :func:`default_cache_path`...)
lives in :mod:`oneclass.embed.cache_store` and is re-exported here.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from oneclass.data.decode import decode_image
from oneclass.data.items import Failure, ImageItem
from oneclass.embed.base import Embedder, ImageEmbedding, default_threads
from oneclass.embed.cache_store import (
    CACHE_FILE,
    SCHEMA_VERSION,
    EmbeddingCache,
    cache_file,
    content_key,
    default_cache,
    default_cache_path,
    open_cache,
)

__all__ = [
    "CACHE_FILE",
    "SCHEMA_VERSION",
    "EmbedOutcome",
    "EmbeddingCache",
    "cache_file",
    "content_key",
    "default_cache",
    "default_cache_path",
    "embed_items",
    "open_cache",
]


@dataclass
class EmbedOutcome:
    """What :func:`embed_items` produced, aligned with its ``items``.

    ``embeddings[i]`` is ``None`` for a failed item (listed in ``failures`` with the reason);
    for a face embedder it may hold zero faces (``no_face``), which is an outcome, not a failure.
    """

    items: list[ImageItem]
    embeddings: list[ImageEmbedding | None]
    failures: list[Failure] = field(default_factory=list)
    embedder: str = ""
    n_cached: int = 0
    n_computed: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> list[int]:
        """Positions of the items that have an embedding (possibly with zero faces)."""
        return [i for i, e in enumerate(self.embeddings) if e is not None]

    @property
    def no_face(self) -> list[ImageItem]:
        """Items that decoded but hold no face (face embedders only)."""
        return [
            it
            for it, e in zip(self.items, self.embeddings, strict=True)
            if e is not None and e.n_faces == 0
        ]

    @property
    def rate(self) -> float:
        """Items per second over the whole call."""
        return len(self.items) / max(self.seconds, 1e-9)

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """``(X, index)``: one row per item with a vector (the largest face for face embedders)
        and the positions of those items in ``items``."""
        found = [(i, e) for i, e in enumerate(self.embeddings) if e is not None and e.n_faces > 0]
        if not found:
            return np.empty((0, 0), dtype=np.float32), np.empty(0, dtype=np.int64)
        index = [i for i, _ in found]
        rows = [e.vectors[e.largest()] for _, e in found]
        return np.stack(rows).astype(np.float32), np.asarray(index, dtype=np.int64)

    def summary(self) -> str:
        return (
            f"{len(self.items)} items: {self.n_cached} from cache, {self.n_computed} "
            f"embedded, {len(self.failures)} failed, {len(self.no_face)} without a face "
            f"({self.rate:.1f} items/s)"
        )


def _read(item: ImageItem) -> tuple[bytes | None, str | None, str | None]:
    """Returns ``(bytes, digest, None)`` or ``(None, None, reason)``."""
    try:
        data = item.read_bytes()
    except (ValueError, OSError) as exc:
        return None, None, getattr(exc, "reason", None) or str(exc)
    except Exception as exc:  # noqa: BLE001 - one bad item never stops the run
        return None, None, f"unexpected error while reading ({type(exc).__name__}: {exc})"
    return data, content_key(data), None


def _decode(
    item: ImageItem, data: bytes, size_hint: Any, max_side: int | None = None
) -> Image.Image | Failure:
    try:
        return decode_image(data, item.uri, size_hint=size_hint, max_side=max_side)
    except ValueError as exc:  # DecodeError (an ImageLoadError, a ValueError)
        return Failure(item, getattr(exc, "reason", None) or str(exc))
    except Exception as exc:  # noqa: BLE001 - one bad image never stops the run
        return Failure(item, f"unexpected decode error ({type(exc).__name__}: {exc})")


def _embed_with_retry(embedder: Embedder, images: list) -> list[ImageEmbedding | str]:
    """Embed a batch; if it fails, each image alone, so one bad image fails alone."""
    try:
        return list(embedder.embed_batch(images))
    except Exception as batch_exc:  # noqa: BLE001 - retried one by one below
        out: list[ImageEmbedding | str] = []
        for im in images:
            try:
                out.append(embedder.embed_batch([im])[0])
            except Exception as exc:  # noqa: BLE001 - reported as that item's failure
                out.append(f"embedding failed ({type(exc).__name__}: {exc})")
        if all(isinstance(o, str) for o in out):
            raise batch_exc  # not about the images: the embedder itself is broken
        return out


def embed_items(
    embedder: Embedder,
    items: Iterable[ImageItem],
    cache: EmbeddingCache | str | Path | bool | None = None,
    progress: bool = True,
    *,
    workers: int | None = None,
    chunk: int | None = None,
) -> EmbedOutcome:
    """Embed image items, reusing and filling ``cache``; see the module docstring.

    ``workers`` threads read and decode (default: twice :func:`default_threads`); items are
    read and looked up in chunks of ``chunk`` (default ``8 * batch_size``).
    """
    start = time.perf_counter()
    items = list(items)
    db = open_cache(cache)
    name, version = embedder.name, str(embedder.preprocess_version)
    batch = max(1, int(getattr(embedder, "batch_size", 32)))
    chunk = chunk or 8 * batch
    hints = (getattr(embedder, "size_hint", None), getattr(embedder, "max_side", None))
    out = EmbedOutcome(items=items, embeddings=[None] * len(items), embedder=name)
    done: dict[str, ImageEmbedding] = {}  # digest -> embedding, this run
    pool = ThreadPoolExecutor(workers or 2 * default_threads(), thread_name_prefix="embed-io")
    bar = tqdm(total=len(items), disable=not progress, unit="img", desc=f"embed {name}")
    try:
        for lo in range(0, len(items), chunk):
            part = list(range(lo, min(lo + chunk, len(items))))
            reads = list(pool.map(_read, (items[i] for i in part)))
            digests = {i: r[1] for i, r in zip(part, reads, strict=True) if r[1] is not None}
            for i, (_, _, reason) in zip(part, reads, strict=True):
                if reason is not None:
                    out.failures.append(Failure(items[i], reason))
            wanted = [d for d in dict.fromkeys(digests.values()) if d not in done]
            if db is not None and wanted:
                hits = db.get_many(name, version, wanted)
                done.update(hits)
                out.n_cached += sum(1 for d in digests.values() if d in hits)
            first: dict[str, int] = {}  # one item per missing digest
            for i, d in digests.items():
                if d not in done and d not in first:
                    first[d] = i
            misses = list(first.items())
            data = {i: reads[i - lo][0] for _, i in misses}
            del reads
            failed = _embed_misses(
                embedder, misses, items, data, pool, hints, batch, done, out, db, version, bar
            )
            for i, d in digests.items():
                out.embeddings[i] = done.get(d)
                if d in failed and first[d] != i:  # the same bytes as an item that failed
                    out.failures.append(Failure(items[i], failed[d]))
            bar.update(len(part) - sum(1 for i in part if i in data))
            bar.set_postfix(cached=out.n_cached, failed=len(out.failures), refresh=False)
    finally:
        bar.close()
        pool.shutdown(wait=True, cancel_futures=True)
        if db is not None and db is not cache:
            db.close()
    out.seconds = time.perf_counter() - start
    return out


def _embed_misses(
    embedder: Embedder,
    misses: Sequence[tuple[str, int]],
    items,
    data,
    pool,
    hints: tuple,
    batch: int,
    done: dict,
    out: EmbedOutcome,
    db: EmbeddingCache | None,
    version: str,
    bar,
) -> dict[str, str]:
    """Decode (one batch ahead, on the pool) and embed the missing digests, batch by batch;
    returns the reason of each digest that failed."""
    batches = [misses[k : k + batch] for k in range(0, len(misses), batch)]

    def submit(b) -> list[Future]:
        return [pool.submit(_decode, items[i], data[i], *hints) for _, i in b]

    failed: dict[str, str] = {}
    ahead = submit(batches[0]) if batches else []
    for k, b in enumerate(batches):
        decoded = [f.result() for f in ahead]
        ahead = submit(batches[k + 1]) if k + 1 < len(batches) else []
        good = []
        for (d, i), im in zip(b, decoded, strict=True):
            if isinstance(im, Failure):
                out.failures.append(im)
                failed[d] = im.reason
            else:
                good.append((d, i, im))
        fresh: dict[str, ImageEmbedding] = {}
        if good:
            results = _embed_with_retry(embedder, [im for _, _, im in good])
            for (d, i, _), res in zip(good, results, strict=True):
                if isinstance(res, str):
                    out.failures.append(Failure(items[i], res))
                    failed[d] = res
                else:
                    fresh[d] = res
        done.update(fresh)
        out.n_computed += len(fresh)
        if db is not None and fresh:
            db.put_many(out.embedder, version, fresh)
        bar.update(len(b))
    return failed
