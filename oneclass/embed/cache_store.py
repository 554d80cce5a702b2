"""The embedding cache: one SQLite file of vectors keyed by image content and embedder.

The cache lives in the cache folder (``ONECLASS_CACHE``, default ``~/.cache/oneclass``, see
:mod:`oneclass.config`) as ``embeddings.sqlite``: :func:`default_cache_path`. A WAL journal and
one transaction per batch let several threads and processes share it. A row is keyed by the
SHA-256 of the image file's bytes, the embedder's ``name`` (model and weights) and its
``preprocess_version``: a file whose content changed is a miss, and so is every image after a
model or preprocessing change. Vectors and face boxes are stored as raw little-endian float32
bytes with their shape, patch grids as two integers (no pickle).

Schema versions: 1 (vectors, boxes), 2 (+ patch ``grid``). A version-1 file is upgraded in place
by adding the two grid columns (its rows are kept); a file of an unknown version, or one that is
not a cache, is refused with its path named and never modified or deleted.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import numpy as np

from oneclass.config import CACHE_ENV, settings
from oneclass.data.hashing import sha256_bytes
from oneclass.embed.base import ImageEmbedding

__all__ = [
    "CACHE_FILE",
    "SCHEMA_VERSION",
    "EmbeddingCache",
    "cache_file",
    "content_key",
    "default_cache",
    "default_cache_path",
    "open_cache",
]

SCHEMA_VERSION = "2"
#: the cache's file name inside a cache folder
CACHE_FILE = "embeddings.sqlite"
_FILE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
_SQL_VARS = 500  # keys per SELECT ... IN (...)
_CREATE = (
    "CREATE TABLE IF NOT EXISTS embeddings (sha256 TEXT NOT NULL, embedder TEXT NOT NULL, "
    "version TEXT NOT NULL, n INTEGER NOT NULL, dim INTEGER NOT NULL, vectors BLOB NOT NULL, "
    "boxes BLOB, created REAL, grid_rows INTEGER, grid_cols INTEGER, "
    "PRIMARY KEY (embedder, version, sha256)) WITHOUT ROWID"
)
_COLUMNS = "sha256, embedder, version, n, dim, vectors, boxes, created, grid_rows, grid_cols"


def cache_file(path: str | Path) -> Path:
    """Where the cache file is for ``path``: a folder (an existing one, or a new path without a
    ``.sqlite``/``.sqlite3``/``.db`` ending) means ``<folder>/embeddings.sqlite``.

    Returns:
        The SQLite file's path.
    """
    path = Path(path).expanduser()
    if path.is_dir() or (not path.exists() and path.suffix.lower() not in _FILE_SUFFIXES):
        return path / CACHE_FILE
    return path


def default_cache_path() -> Path:
    """Returns ``<cache folder>/embeddings.sqlite`` (the folder: ``ONECLASS_CACHE`` or
    ``~/.cache/oneclass``).

    Raises:
        ValueError: ``ONECLASS_CACHE`` names an existing file (it is a folder now; the message
            says where to move the file; nothing is moved or deleted).
    """
    folder = settings().cache_dir
    if folder.is_file():
        raise ValueError(
            f"{CACHE_ENV}={folder} is a file, but {CACHE_ENV} names the cache folder (embeddings "
            f"in {CACHE_FILE}, downloads in downloads/): move the file to "
            f"{folder.with_suffix('')}/{CACHE_FILE} and set {CACHE_ENV}={folder.with_suffix('')}"
        )
    return folder / CACHE_FILE


def content_key(data: bytes) -> str:
    """Returns the cache key of an image file: the SHA-256 of its bytes, hex."""
    return sha256_bytes(data)


def _to_blob(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


def _from_blob(blob: bytes, n: int, cols: int) -> np.ndarray | None:
    if len(blob) != n * cols * 4:
        return None
    return np.frombuffer(blob, dtype="<f4").reshape(n, cols).astype(np.float32)


def _row(key: str, embedder: str, version: str, emb: ImageEmbedding, now: float) -> tuple:
    vec = np.asarray(emb.vectors, dtype=np.float32)
    if vec.ndim != 2:
        raise ValueError(f"embedding of {key} must be (k, dim), got shape {vec.shape}")
    boxes = None if emb.boxes is None else _to_blob(np.asarray(emb.boxes).reshape(-1, 4))
    rows = cols = None
    if emb.grid is not None:
        rows, cols = (int(v) for v in emb.grid)
        if rows * cols != vec.shape[0]:
            raise ValueError(
                f"embedding of {key}: grid {rows}x{cols} does not hold {vec.shape[0]} vectors"
            )
    return (
        key,
        embedder,
        version,
        vec.shape[0],
        vec.shape[1],
        _to_blob(vec),
        boxes,
        now,
        rows,
        cols,
    )


class _Txn:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error) under the cache's lock."""

    def __init__(self, lock: threading.Lock, db: sqlite3.Connection):
        self.lock, self.db = lock, db

    def __enter__(self) -> None:
        self.lock.acquire()
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.lock.release()


class EmbeddingCache:
    """A SQLite embedding cache; safe to share between threads and processes.

    ``path``: the SQLite file, or a folder (see :func:`cache_file`); default
    :func:`default_cache_path`.

    >>> cache = EmbeddingCache("runs/embeddings.sqlite")
    >>> cache.put_many("effnet-lite0/imagenet", "1", {digest: embedding})
    >>> cache.get_many("effnet-lite0/imagenet", "1", [digest])
    """

    def __init__(self, path: str | Path | None = None, *, timeout: float = 60.0):
        self.path = cache_file(path) if path is not None else default_cache_path()
        self.timeout = timeout
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(
                f"{self.path}: cannot create the embedding cache's folder "
                f"({exc.strerror or exc}); set {CACHE_ENV} to a writable folder "
                "or pass cache=False"
            ) from None
        try:
            self._db = sqlite3.connect(
                str(self.path), timeout=timeout, isolation_level=None, check_same_thread=False
            )
            found = self._schema()  # read before anything is written (even the journal mode)
            if found not in (None, "1", SCHEMA_VERSION):
                self._db.close()
                raise ValueError(
                    f"{self.path}: cache schema {found} is not one this oneclass "
                    f"knows (1 or {SCHEMA_VERSION}; a newer oneclass wrote it?): "
                    "the file was left as it is; use another cache path"
                )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self._write():
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                )
                found = self._schema()
                if found is None or found == SCHEMA_VERSION:
                    self._db.execute(_CREATE)
                    self._db.execute(
                        "INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,)
                    )
                elif found == "1":
                    self._upgrade_from_1()
                else:
                    raise ValueError(
                        f"{self.path}: cache schema {found} is not one this "
                        "oneclass knows: the file was left as it is"
                    )
        except sqlite3.DatabaseError as exc:
            raise ValueError(
                f"{self.path}: not a usable embedding cache ({exc}); the file was left as it is"
            ) from exc

    def _schema(self) -> str | None:
        """The schema version recorded in the file (``None``: a new, empty file)."""
        has_meta = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if not has_meta:
            return None
        row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        return None if row is None else str(row[0])

    def _upgrade_from_1(self) -> None:
        """Schema 1 -> 2 in place (inside the open transaction): add the grid columns."""
        have = {r[1] for r in self._db.execute("PRAGMA table_info(embeddings)")}
        for column in ("grid_rows", "grid_cols"):
            if column not in have:
                self._db.execute(f"ALTER TABLE embeddings ADD COLUMN {column} INTEGER")
        self._db.execute("UPDATE meta SET value=? WHERE key='schema'", (SCHEMA_VERSION,))

    def _write(self) -> _Txn:
        return _Txn(self._lock, self._db)

    # ---- reading and writing ----------------------------------------------------------------
    def get_many(
        self, embedder: str, version: str, keys: Iterable[str]
    ) -> dict[str, ImageEmbedding]:
        """Look up embeddings by content digest.

        Returns:
            ``{digest: ImageEmbedding}`` for the keys found (misses, and damaged rows, absent).
        """
        keys = list(dict.fromkeys(keys))
        out: dict[str, ImageEmbedding] = {}
        for i in range(0, len(keys), _SQL_VARS):
            part = keys[i : i + _SQL_VARS]
            marks = ",".join("?" * len(part))
            with self._lock:
                rows = self._db.execute(
                    f"SELECT sha256, n, dim, vectors, boxes, grid_rows, grid_cols FROM embeddings "
                    f"WHERE embedder=? AND version=? AND sha256 IN ({marks})",
                    (embedder, version, *part),
                ).fetchall()
            for key, n, dim, vectors, boxes, g_rows, g_cols in rows:
                vec = _from_blob(vectors, n, dim)
                box = None if boxes is None else _from_blob(boxes, n, 4)
                grid = None if g_rows is None or g_cols is None else (int(g_rows), int(g_cols))
                if (
                    vec is None
                    or (boxes is not None and box is None)
                    or (grid is not None and grid[0] * grid[1] != n)
                ):
                    continue  # a damaged row is a miss; it is rewritten after embedding
                out[key] = ImageEmbedding(vectors=vec, boxes=box, grid=grid)
        return out

    def put_many(self, embedder: str, version: str, entries: dict[str, ImageEmbedding]) -> None:
        """Store embeddings by content digest, all in one transaction."""
        now = time.time()
        rows = [_row(key, embedder, version, emb, now) for key, emb in entries.items()]
        if not rows:
            return
        with self._write():
            self._db.executemany(
                f"INSERT OR REPLACE INTO embeddings ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", rows
            )

    def count(self, embedder: str | None = None) -> int:
        """Returns the number of rows stored (for one embedder name, or all)."""
        sql = "SELECT COUNT(*) FROM embeddings"
        args: tuple[str, ...] = ()
        if embedder is not None:
            sql, args = sql + " WHERE embedder=?", (embedder,)
        with self._lock:
            return int(self._db.execute(sql, args).fetchone()[0])

    def __len__(self) -> int:
        return self.count()

    def clear(self, embedder: str | None = None) -> None:
        """Delete the rows of one embedder name, or all rows (the file itself stays)."""
        with self._write():
            if embedder is None:
                self._db.execute("DELETE FROM embeddings")
            else:
                self._db.execute("DELETE FROM embeddings WHERE embedder=?", (embedder,))

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.path)!r})"


def open_cache(cache: EmbeddingCache | str | Path | bool | None) -> EmbeddingCache | None:
    """Interpret a ``cache=`` argument.

    Returns:
        ``None`` for ``None``/``False`` (no cache); the default cache for ``True``; the cache
        itself for an :class:`EmbeddingCache`; else the cache at that path (a folder means
        ``<folder>/embeddings.sqlite``).
    """
    if cache is None or cache is False:
        return None
    if cache is True:
        return EmbeddingCache()
    if isinstance(cache, EmbeddingCache):
        return cache
    if not isinstance(cache, str | Path):
        raise TypeError(
            f"cache must be True/False/None, a path or an EmbeddingCache, got "
            f"{type(cache).__name__}"
        )
    return EmbeddingCache(cache)


def default_cache() -> EmbeddingCache:
    """Returns a new handle on the default cache (:func:`default_cache_path`); close it after."""
    return EmbeddingCache()
