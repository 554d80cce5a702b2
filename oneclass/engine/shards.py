"""Embeddings of a collection as Parquet shards that a rerun resumes shard by shard.

``oneclass embed SRC... --out DIR`` writes ``DIR/shards.json`` (format version, embedder name,
shard size) and ``DIR/part-00000.parquet``, ``part-00001.parquet``, ... Shard ``i`` holds items
``i * shard_size`` to ``(i + 1) * shard_size - 1`` of the collection, in order, one row per image:

==========  =====================================================================
column      meaning
==========  =====================================================================
``id``      the item's id (unique in the collection)
``path``    its address (path, ``zip://`` member or URL)
``status``  ``ok``, ``no_face`` (face embedders) or ``failed``
``reason``  why it failed (empty otherwise)
``vectors`` ``k x dim`` float32 vectors as a list of lists (``k = 0``: none)
``boxes``   ``k x 4`` face boxes, or null
``grid``    ``[rows, cols]`` for patch embeddings, or null
==========  =====================================================================

A shard file is written under a temporary name and renamed when complete, so a killed run
leaves only whole shards; a rerun skips every shard whose file exists and holds the same ids,
and refuses (naming the shard) when the collection or the embedder changed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oneclass.data.sources import ImageItem
from oneclass.outputs import atomic_write_text, atomic_write_with

FORMAT_VERSION = 1
MANIFEST = "shards.json"
DEFAULT_SHARD = 4096


class ShardMismatchError(ValueError):
    """An output folder holds shards of another collection or embedder."""


def shard_path(out_dir: Path, index: int) -> Path:
    """Returns the file of shard ``index``."""
    return out_dir / f"part-{index:05d}.parquet"


def prepare_output(out_dir: Path, embedder_name: str, shard_size: int, n_items: int) -> dict:
    """Create or check ``out_dir/shards.json``.

    Returns:
        The manifest (written when new).

    Raises:
        ShardMismatchError: the folder holds shards of another embedder or shard size.
        FileExistsError: the folder exists, is not empty and holds no shard manifest (never
            written into, so nothing of the user's is overwritten).
    """
    manifest = {
        "format_version": FORMAT_VERSION,
        "embedder": embedder_name,
        "shard_size": int(shard_size),
        "items": int(n_items),
        "shards": math.ceil(n_items / shard_size) if n_items else 0,
    }
    path = out_dir / MANIFEST
    if path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        for key in ("format_version", "embedder", "shard_size"):
            if old.get(key) != manifest[key]:
                raise ShardMismatchError(
                    f"{path}: {key} is {old.get(key)!r}, this run has {manifest[key]!r}; "
                    "use another --out folder"
                )
    elif out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(
            f"{out_dir}: exists, is not empty and is not an embedding folder ({MANIFEST} missing)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")
    return manifest


def shard_is_done(path: Path, items: Sequence[ImageItem]) -> bool:
    """Whether ``path`` is a finished shard of exactly these items.

    Raises:
        ShardMismatchError: the shard exists but holds other ids (the collection changed).
    """
    if not path.is_file():
        return False
    import pyarrow.parquet as pq

    try:
        ids = pq.read_table(path, columns=["id"]).column("id").to_pylist()
    except Exception as exc:  # a truncated or foreign file: named, then rewritten
        raise ShardMismatchError(
            f"{path}: not a readable shard ({exc}); delete it to redo"
        ) from None
    if ids != [it.id for it in items]:
        raise ShardMismatchError(
            f"{path}: holds other images than this run's shard (the collection changed); "
            "use another --out folder"
        )
    return True


def embedding_rows(items: Sequence[ImageItem], embedder: Any, cache: Any = None) -> pd.DataFrame:
    """Embed ``items`` (through the embedding cache) into shard rows.

    Returns:
        A DataFrame with the columns of the module table, one row per item, in order.
    """
    from oneclass.embed.cache import embed_items

    outcome = embed_items(embedder, list(items), cache=cache, progress=False)
    reasons = {f.item.id: f.reason for f in outcome.failures}
    rows = []
    for item, emb in zip(items, outcome.embeddings, strict=True):
        row: dict[str, Any] = {
            "id": item.id,
            "path": item.uri,
            "status": "ok",
            "reason": "",
            "vectors": [],
            "boxes": None,
            "grid": None,
        }
        if emb is None:
            row.update(status="failed", reason=reasons.get(item.id, "unreadable"))
        else:
            vecs = np.asarray(emb.vectors, dtype=np.float32)
            row["vectors"] = vecs.tolist()
            if vecs.shape[0] == 0:
                row["status"] = "no_face"
            if emb.boxes is not None:
                row["boxes"] = np.asarray(emb.boxes, dtype=np.float32).tolist()
            if emb.grid is not None:
                row["grid"] = [int(emb.grid[0]), int(emb.grid[1])]
        rows.append(row)
    return pd.DataFrame(
        rows, columns=["id", "path", "status", "reason", "vectors", "boxes", "grid"]
    )


def write_shard(path: Path, frame: pd.DataFrame) -> Path:
    """Write one shard atomically.

    Returns:
        ``path``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("id", pa.string()),
            ("path", pa.string()),
            ("status", pa.string()),
            ("reason", pa.string()),
            ("vectors", pa.list_(pa.list_(pa.float32()))),
            ("boxes", pa.list_(pa.list_(pa.float32()))),
            ("grid", pa.list_(pa.int32())),
        ]
    )
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    return atomic_write_with(path, lambda tmp: pq.write_table(table, str(tmp)))


def read_shards(out_dir: str | Path) -> pd.DataFrame:
    """Read every finished shard of an embedding folder, in order.

    Returns:
        One DataFrame with the module table's columns.
    """
    import pyarrow.parquet as pq

    files = sorted(Path(out_dir).glob("part-*.parquet"))
    if not files:
        return pd.DataFrame(columns=["id", "path", "status", "reason", "vectors", "boxes", "grid"])
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def shard_vectors(row: Any) -> np.ndarray:
    """Returns the ``(k, dim)`` float32 vectors of one shard row."""
    vecs = list(row["vectors"]) if row["vectors"] is not None else []
    if not vecs:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([np.asarray(v, dtype=np.float32) for v in vecs])
