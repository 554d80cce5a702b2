"""The Ray engine: score or embed a collection on a Ray cluster with Ray Data.

``oneclass score --model M SRC --engine ray [--address ADDR]``: without an address a local Ray
instance starts (and stops at the end); with one, the job runs on that cluster. The model
folder's files travel to the workers through the object store (no shared file system needed),
each worker of an actor pool loads the model once (:class:`ScoreWorker`), the item list streams
through ``map_batches`` in batches of ``batch_size`` images, and the driver appends rows to the
output table as they arrive, in input order. Workers with a GPU use it (one GPU per worker when
the cluster has GPUs). Scores are those of the in-process engine: both call
:meth:`oneclass.pipeline.Pipeline.score`.

``oneclass embed SRC --out DIR --engine ray``: one Ray task per shard not yet written, each
writing its Parquet shard (:mod:`oneclass.engine.shards`) into ``DIR``, which must be reachable
by every worker (one machine, or a shared file system).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from oneclass.data.sources import ImageItem
from oneclass.engine.local import RunSummary, batches, collection_items
from oneclass.engine.tables import StreamingTable

#: the largest model folder shipped to workers through the object store
MAX_MODEL_BYTES = 2 * 2**30
_ITEM_FIELDS = ("id", "uri", "label", "group", "family")


def require_ray() -> Any:
    """Returns the ``ray`` module; ``ImportError`` naming the extra to install when absent."""
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError(
            "--engine ray needs Ray: pip install 'oneclass[scale]' (or 'ray[data]')"
        ) from exc
    return ray


def pack_model(model_dir: str | Path) -> dict[str, bytes]:
    """Read a saved model folder into memory to ship it to workers.

    Returns:
        ``{relative file name: bytes}``.

    Raises:
        ValueError: the folder is larger than :data:`MAX_MODEL_BYTES` or holds a sub-folder.
    """
    root = Path(model_dir)
    files: dict[str, bytes] = {}
    total = 0
    for path in sorted(root.iterdir()):
        if not path.is_file() or path.is_symlink():
            raise ValueError(f"{path}: a model folder holds only plain files")
        total += path.stat().st_size
        if total > MAX_MODEL_BYTES:
            raise ValueError(f"{root}: larger than {MAX_MODEL_BYTES} bytes, too large to ship")
        files[path.name] = path.read_bytes()
    return files


def unpack_model(files: dict[str, bytes]) -> Any:
    """Write shipped model files to a private temp folder and load them safely.

    Returns:
        The loaded model (:func:`oneclass.load`).
    """
    from oneclass.persist import load

    with tempfile.TemporaryDirectory(prefix="oneclass-model-") as tmp:
        folder = Path(tmp)
        for name, data in files.items():
            if Path(name).name != name:
                raise ValueError(f"bad model file name {name!r}")
            (folder / name).write_bytes(data)
        return load(folder)


def item_records(items: list[ImageItem]) -> list[dict[str, Any]]:
    """Returns the items as plain dicts (what travels between Ray processes)."""
    return [{k: getattr(it, k) for k in _ITEM_FIELDS} for it in items]


def records_items(frame: pd.DataFrame) -> list[ImageItem]:
    """Returns ImageItems rebuilt from a batch of :func:`item_records` rows."""

    def text(value: Any) -> str | None:
        return (
            None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
        )

    return [
        ImageItem(
            id=str(r["id"]),
            uri=str(r["uri"]),
            label=text(r.get("label")),
            group=text(r.get("group")),
            family=text(r.get("family")),
        )
        for r in frame.to_dict("records")
    ]


class ScoreWorker:
    """A Ray Data actor: loads the model once, then scores batches of item records."""

    def __init__(self, model_files: dict[str, bytes], cache: Any = None, runtime: str = "torch"):
        self.pipeline = unpack_model(model_files)
        self.pipeline.progress = False
        self.pipeline.cache = cache
        if runtime == "onnx":
            from oneclass.export import onnx_pipeline

            onnx_pipeline(self.pipeline)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        """Returns the score rows of one batch (the pipeline's own columns)."""
        return self.pipeline.score(records_items(batch))


def connect(address: str | None, num_cpus: int | None = None) -> bool:
    """Attach to the cluster at ``address``, or start a local Ray instance.

    Returns:
        True when this call started Ray (the caller shuts it down at the end).
    """
    ray = require_ray()
    if ray.is_initialized():
        return False
    host = (address or "").rpartition(":")[0].removeprefix("ray://")
    loopback = {"_node_ip_address": "127.0.0.1"} if host in ("", "127.0.0.1", "localhost") else {}
    if address:
        ray.init(address=address, log_to_driver=False, **loopback)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, **loopback)
    return True


def score_collection(
    model_dir: str | Path,
    images: Any,
    out: str | Path | None = None,
    *,
    address: str | None = None,
    workers: int | None = None,
    batch_size: int = 64,
    fmt: str | None = None,
    cache: Any = None,
    runtime: str = "torch",
    progress: bool = True,
    sink: Any = None,
) -> RunSummary:
    """Score a collection on Ray with a saved model; rows stream to ``out`` in input order.

    Args:
        model_dir: a saved pipeline folder.
        images: a source spec, a path, ImageItems, or a list of those.
        out: the CSV/Parquet file (atomic at the end); ``None`` with ``sink``.
        address: a Ray cluster address (``ray://...`` or ``host:port``); ``None`` starts Ray here.
        workers: actors in the pool (default: the cluster's CPUs, or GPUs when it has them).
        batch_size: images per batch.
        fmt: ``"csv"`` or ``"parquet"`` (default: from the suffix of ``out``).
        cache: the embedding cache each worker uses (default none: workers on many machines).
        runtime: ``"torch"`` or ``"onnx"`` (the network in onnxruntime on each worker).
        progress: show Ray's progress bars.
        sink: a callable that takes each scored batch (instead of, or beside, ``out``).

    Returns:
        The :class:`oneclass.engine.local.RunSummary`.
    """
    ray = require_ray()
    items = collection_items(images)
    files = pack_model(model_dir)
    started = connect(address)
    summary = RunSummary(out=Path(out) if out is not None else None)
    start = time.perf_counter()
    table = StreamingTable(out, fmt) if out is not None else None
    try:
        if items:
            ctx = ray.data.DataContext.get_current()
            ctx.execution_options.preserve_order = True
            ctx.enable_progress_bars = progress
            gpus = int(ray.cluster_resources().get("GPU", 0))
            size = workers or (gpus or max(1, int(ray.cluster_resources().get("CPU", 1))))
            ds = ray.data.from_items(item_records(items))
            scored = ds.map_batches(
                ScoreWorker,
                fn_constructor_kwargs={"model_files": files, "cache": cache, "runtime": runtime},
                batch_size=batch_size,
                batch_format="pandas",
                concurrency=size,
                num_gpus=1 if gpus else 0,
                num_cpus=0 if gpus else 1,
            )
            for frame in scored.iter_batches(batch_size=None, batch_format="pandas"):
                if table is not None:
                    table.write(frame)
                if sink is not None:
                    sink(frame)
                summary.add(frame)
        if table is not None:
            table.close()
    except BaseException:
        if table is not None:
            table.abort()
        raise
    finally:
        if started:
            ray.shutdown()
    summary.seconds = time.perf_counter() - start
    return summary


def embed_shard_task(
    embedder_spec: str, records: list[dict[str, Any]], path: str, cache: Any
) -> dict[str, Any]:
    """Embed one shard on a worker and write its Parquet file.

    Returns:
        ``{"rows": n, "status": {status: count}}``.
    """
    from oneclass.embed.registry import make_embedder
    from oneclass.engine import shards

    items = records_items(pd.DataFrame(records))
    frame = shards.embedding_rows(items, make_embedder(embedder_spec), cache)
    shards.write_shard(Path(path), frame)
    return {"rows": len(frame), "status": frame["status"].value_counts().to_dict()}


def embed_collection(
    embedder_spec: str,
    images: Any,
    out_dir: str | Path,
    *,
    address: str | None = None,
    shard_size: int | None = None,
    cache: Any = None,
    progress: bool = True,
) -> RunSummary:
    """Embed a collection into Parquet shards on Ray, one task per missing shard.

    Returns:
        The :class:`oneclass.engine.local.RunSummary` (``skipped`` = shards already written).
    """
    ray = require_ray()
    from oneclass.embed.registry import make_embedder
    from oneclass.engine import shards

    name = make_embedder(embedder_spec).name
    items = collection_items(images)
    size = int(shard_size or shards.DEFAULT_SHARD)
    out = Path(out_dir).resolve()
    shards.prepare_output(out, name, size, len(items))
    summary = RunSummary(out=out)
    start = time.perf_counter()
    started = connect(address)
    try:
        task = ray.remote(embed_shard_task)
        pending = []
        for index, batch in enumerate(batches(items, size)):
            path = shards.shard_path(out, index)
            if shards.shard_is_done(path, batch):
                summary.skipped += 1
                continue
            pending.append(task.remote(embedder_spec, item_records(batch), str(path), cache))
        for result in ray.get(pending):
            summary.rows += int(result["rows"])
            summary.status.update({str(k): int(v) for k, v in result["status"].items()})
    finally:
        if started:
            ray.shutdown()
    summary.seconds = time.perf_counter() - start
    return summary
