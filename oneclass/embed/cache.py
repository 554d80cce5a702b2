"""Embeddings on disk, keyed by image content, and :func:`embed_items`: image items to vectors.

The cache is one SQLite file (WAL journal, one transaction per batch: several threads or
processes can share it). A row is keyed by the SHA-256 of the image file's bytes, the embedder's
``name`` (model and weights) and its ``preprocess_version``: a file whose content changed is a
miss, and so is every image after a model or preprocessing change. Vectors and face boxes are
stored as raw little-endian float32 bytes with their shape (no pickle).

:func:`embed_items` reads each item's bytes once, hashes them, takes what the cache has, and
decodes and embeds only the misses, in batches, decoding the next batch on a thread pool while
the current one runs through the model. An unreadable or corrupt file becomes a failure with its
reason (never a blank image) and the run goes on. An embedder's ``size_hint`` (effnet-lite0:
256, CLIP: its input size) lets big JPEGs decode at a reduced draft scale that still covers the
model's input: much faster for camera photos, and the vectors of such photos differ slightly
from those of a full decode passed to ``embedder.embed`` (small images are unaffected).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from oneclass.data.decode import decode_image
from oneclass.data.sources import Failure, ImageItem
from oneclass.embed.base import Embedder, ImageEmbedding, default_threads

SCHEMA_VERSION = "1"
_SQL_VARS = 500  # keys per SELECT ... IN (...)


def default_cache_path() -> Path:
    """``ONECLASS_CACHE`` or ``~/.cache/oneclass/embeddings.sqlite``."""
    env = os.environ.get("ONECLASS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "oneclass" / "embeddings.sqlite"


def content_key(data: bytes) -> str:
    """The cache key of an image file: SHA-256 of its bytes, hex."""
    return hashlib.sha256(data).hexdigest()


def _to_blob(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


def _from_blob(blob: bytes, n: int, cols: int) -> np.ndarray | None:
    if len(blob) != n * cols * 4:
        return None
    return np.frombuffer(blob, dtype="<f4").reshape(n, cols).astype(np.float32)


class EmbeddingCache:
    """A SQLite embedding cache; safe to share between threads and processes.

    >>> cache = EmbeddingCache("runs/embeddings.sqlite")
    >>> cache.put_many("effnet-lite0/imagenet", "1", {digest: embedding})
    >>> cache.get_many("effnet-lite0/imagenet", "1", [digest])
    """

    def __init__(self, path: str | Path | None = None, *, timeout: float = 60.0):
        self.path = Path(path) if path is not None else default_cache_path()
        self.timeout = timeout
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self._write():
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS embeddings (sha256 TEXT NOT NULL, "
                    "embedder TEXT NOT NULL, version TEXT NOT NULL, n INTEGER NOT NULL, "
                    "dim INTEGER NOT NULL, vectors BLOB NOT NULL, boxes BLOB, created REAL, "
                    "PRIMARY KEY (embedder, version, sha256)) WITHOUT ROWID")
                self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, "
                                 "value TEXT NOT NULL)")
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)",
                                 (SCHEMA_VERSION,))
            row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{self.path}: not a usable embedding cache ({exc})") from exc
        if row[0] != SCHEMA_VERSION:
            raise ValueError(f"{self.path}: cache schema {row[0]} is not the one this oneclass "
                             f"uses ({SCHEMA_VERSION}); delete the file or use another path")

    # ---- transactions -----------------------------------------------------------------------
    class _Txn:
        def __init__(self, cache: EmbeddingCache):
            self.cache = cache

        def __enter__(self):
            self.cache._lock.acquire()
            try:
                self.cache._db.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.cache._lock.release()
                raise

        def __exit__(self, exc_type, *_):
            try:
                self.cache._db.execute("ROLLBACK" if exc_type else "COMMIT")
            finally:
                self.cache._lock.release()

    def _write(self) -> _Txn:
        return self._Txn(self)

    # ---- reading and writing ----------------------------------------------------------------
    def get_many(self, embedder: str, version: str,
                 keys: Iterable[str]) -> dict[str, ImageEmbedding]:
        """The cached embeddings among ``keys`` (content digests); misses are absent."""
        keys = list(dict.fromkeys(keys))
        out: dict[str, ImageEmbedding] = {}
        for i in range(0, len(keys), _SQL_VARS):
            part = keys[i:i + _SQL_VARS]
            marks = ",".join("?" * len(part))
            with self._lock:
                rows = self._db.execute(
                    f"SELECT sha256, n, dim, vectors, boxes FROM embeddings WHERE embedder=? "
                    f"AND version=? AND sha256 IN ({marks})", (embedder, version, *part)
                ).fetchall()
            for key, n, dim, vectors, boxes in rows:
                vec = _from_blob(vectors, n, dim)
                box = None if boxes is None else _from_blob(boxes, n, 4)
                if vec is None or (boxes is not None and box is None):
                    continue  # a damaged row is a miss; it is rewritten after embedding
                out[key] = ImageEmbedding(vectors=vec, boxes=box)
        return out

    def put_many(self, embedder: str, version: str,
                 entries: dict[str, ImageEmbedding]) -> None:
        """Store embeddings by content digest, all in one transaction."""
        now = time.time()
        rows = []
        for key, emb in entries.items():
            vec = np.asarray(emb.vectors, dtype=np.float32)
            if vec.ndim != 2:
                raise ValueError(f"embedding of {key} must be (k, dim), got shape {vec.shape}")
            boxes = None if emb.boxes is None else _to_blob(np.asarray(emb.boxes).reshape(-1, 4))
            rows.append((key, embedder, version, vec.shape[0], vec.shape[1], _to_blob(vec),
                         boxes, now))
        if not rows:
            return
        with self._write():
            self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?,?,?,?,?,?,?,?)",
                                 rows)

    def count(self, embedder: str | None = None) -> int:
        """Rows stored (for one embedder name, or all)."""
        sql, args = "SELECT COUNT(*) FROM embeddings", ()
        if embedder is not None:
            sql, args = sql + " WHERE embedder=?", (embedder,)
        with self._lock:
            return int(self._db.execute(sql, args).fetchone()[0])

    def __len__(self) -> int:
        return self.count()

    def clear(self, embedder: str | None = None) -> None:
        """Delete the rows of one embedder name, or everything."""
        with self._write():
            if embedder is None:
                self._db.execute("DELETE FROM embeddings")
            else:
                self._db.execute("DELETE FROM embeddings WHERE embedder=?", (embedder,))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.path)!r})"


def open_cache(cache: EmbeddingCache | str | Path | bool | None) -> EmbeddingCache | None:
    """``None``/``False``: no cache; ``True``: the default file; a path; or a cache as is."""
    if cache is None or cache is False:
        return None
    if cache is True:
        return EmbeddingCache()
    if isinstance(cache, EmbeddingCache):
        return cache
    return EmbeddingCache(cache)


# ---- from items to embeddings -----------------------------------------------------------------
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
        return [it for it, e in zip(self.items, self.embeddings, strict=True)
                if e is not None and e.n_faces == 0]

    @property
    def rate(self) -> float:
        """Items per second over the whole call."""
        return len(self.items) / max(self.seconds, 1e-9)

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """``(X, index)``: one row per item with a vector (the largest face for face embedders)
        and the positions of those items in ``items``."""
        index = [i for i, e in enumerate(self.embeddings) if e is not None and e.n_faces > 0]
        if not index:
            return np.empty((0, 0), dtype=np.float32), np.empty(0, dtype=np.int64)
        rows = [self.embeddings[i].vectors[self.embeddings[i].largest()] for i in index]
        return np.stack(rows).astype(np.float32), np.asarray(index, dtype=np.int64)

    def summary(self) -> str:
        return (f"{len(self.items)} items: {self.n_cached} from cache, {self.n_computed} "
                f"embedded, {len(self.failures)} failed, {len(self.no_face)} without a face "
                f"({self.rate:.1f} items/s)")


def _read(item: ImageItem) -> tuple[bytes | None, str | None, str | None]:
    """(bytes, digest, None) or (None, None, reason)."""
    try:
        data = item.read_bytes()
    except (ValueError, OSError) as exc:
        return None, None, getattr(exc, "reason", None) or str(exc)
    return data, content_key(data), None


def _decode(item: ImageItem, data: bytes, size_hint):
    try:
        return decode_image(data, item.uri, size_hint=size_hint)
    except ValueError as exc:  # DecodeError (an ImageLoadError, a ValueError)
        return Failure(item, getattr(exc, "reason", None) or str(exc))


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


def embed_items(embedder: Embedder, items: Iterable[ImageItem],
                cache: EmbeddingCache | str | Path | bool | None = None,
                progress: bool = True, *, workers: int | None = None,
                chunk: int | None = None) -> EmbedOutcome:
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
    size_hint = getattr(embedder, "size_hint", None)
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
            failed = _embed_misses(embedder, misses, items, data, pool, size_hint, batch, done,
                                   out, db, version, bar)
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


def _embed_misses(embedder: Embedder, misses: Sequence[tuple[str, int]], items, data, pool,
                  size_hint, batch: int, done: dict, out: EmbedOutcome,
                  db: EmbeddingCache | None, version: str, bar) -> dict[str, str]:
    """Decode (one batch ahead, on the pool) and embed the missing digests, batch by batch;
    returns the reason of each digest that failed."""
    batches = [misses[k:k + batch] for k in range(0, len(misses), batch)]

    def submit(b) -> list[Future]:
        return [pool.submit(_decode, items[i], data[i], size_hint) for _, i in b]

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
