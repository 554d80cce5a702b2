"""The vectors a benchmark scores: per item, from one embedder (``None`` = the item failed).

* :class:`Embeddings`: a frozen embedder; every item is embedded once (through the embedding
  cache) and shared by all the cells of the suite.
* :class:`ArrayEmbeddings`: precomputed vectors (ADBench), one per item.
* :class:`FinetunedEmbeddings`: ``finetune:base=SPEC[,option=value...]``. The base embedder's
  frozen vectors say which items are readable (and drive the near-duplicate split like any
  embedder); then *inside each cell* :func:`oneclass.finetune` adapts the base on that cell's
  training images only (its positives; its negatives too for a binary task), and the cell's
  training and test images are embedded with the result. ``auxiliary=DATASET`` gives the
  one-class mode outlier-exposure images from a data set that is not in the test.

How vectors become training rows and image scores is not decided here: the job calls
:mod:`oneclass.embed.aggregate` with the embedder's ``kind``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from oneclass.embed.base import ImageEmbedding
from oneclass.registry import parse_spec

ADBENCH_EMBEDDER = "resnet18-adbench"


class Embeddings:
    """Per-item embeddings of one frozen embedder, with the items that failed."""

    def __init__(self, spec: str, cache_dir: Path, progress: bool):
        from oneclass.embed.cache import EmbeddingCache
        from oneclass.embed.registry import make_embedder

        self.spec = spec
        self.embedder = make_embedder(spec)
        self.kind: str = self.embedder.kind
        self.cache = EmbeddingCache(cache_dir / "embeddings.sqlite")
        self.progress = progress
        self.by_uri: dict[str, ImageEmbedding | None] = {}
        self.failures: list[dict[str, Any]] = []
        self.seconds = 0.0

    def add(self, items: list, suite: str) -> None:
        """Embed the items not embedded yet; failures are recorded with their reason."""
        from oneclass.embed.cache import embed_items

        todo = list({it.uri: it for it in items if it.uri not in self.by_uri}.values())
        if not todo:
            return
        t0 = time.perf_counter()
        out = embed_items(self.embedder, todo, cache=self.cache, progress=self.progress)
        self.seconds += time.perf_counter() - t0
        reasons = {f.item.id: f.reason for f in out.failures}
        for it, emb in zip(todo, out.embeddings, strict=True):
            self.by_uri[it.uri] = emb
            if emb is None:
                self.failures.append(
                    {
                        "suite": suite,
                        "embedder": self.spec,
                        "item_id": it.id,
                        "uri": it.uri,
                        "stage": "decode",
                        "reason": reasons.get(it.id, "unreadable"),
                    }
                )

    def get(self, items: list) -> list[ImageEmbedding | None]:
        """Returns the embeddings of ``items`` (``None``: failed or never embedded)."""
        return [self.by_uri.get(it.uri) for it in items]

    def for_task(self, items: list, task: Any, seed: int) -> tuple[Embeddings, float]:
        """Returns the embeddings a cell of ``task`` scores and the seconds spent making them for
        it (a frozen embedder: these, and 0)."""
        return self, 0.0


class ArrayEmbeddings(Embeddings):
    """ADBench's precomputed vectors behave like an embedder's output."""

    def __init__(self) -> None:
        self.spec, self.kind = ADBENCH_EMBEDDER, "image"
        self.by_uri, self.failures, self.seconds = {}, [], 0.0
        self.progress = False


class CellVectors(Embeddings):
    """The vectors one fine-tuned embedder gave one cell's images."""

    def __init__(self, spec: str, kind: str, by_uri: dict[str, ImageEmbedding | None]):
        self.spec, self.kind, self.by_uri = spec, kind, by_uri
        self.failures, self.seconds, self.progress = [], 0.0, False


class FinetunedEmbeddings(Embeddings):
    """``finetune:base=SPEC,...``: the base's frozen vectors for readability and splits; each
    cell fine-tunes on its own training images (see the module docstring)."""

    def __init__(self, spec: str, cache_dir: Path, progress: bool):
        name, params = parse_spec(spec)
        self.options = {k: v for k, v in params.items() if k not in ("base", "auxiliary")}
        self.auxiliary = params.get("auxiliary")
        super().__init__(str(params["base"]), cache_dir, progress)
        self.spec = spec
        self._memo: dict[tuple, tuple[Embeddings, float]] = {}
        self._auxiliary_items: list | None = None

    def auxiliary_items(self) -> list:
        """Returns the ``auxiliary=DATASET`` items, listed once for every cell."""
        if self._auxiliary_items is None:
            from oneclass.data.manifests import dataset_items

            self._auxiliary_items = dataset_items(str(self.auxiliary))
        return self._auxiliary_items

    def for_task(self, items: list, task: Any, seed: int) -> tuple[Embeddings, float]:
        """Fine-tune on the task's training images (memoised per training set and seed: the
        detectors of one task share it), then embed its training and test images."""
        import numpy as np

        from oneclass.embed.cache import embed_items
        from oneclass.embed.finetune import finetune

        train = np.asarray(task.train)
        y = np.ones(train.size, int) if task.train_y is None else np.asarray(task.train_y)
        key = (seed, tuple(items[i].uri for i in train), tuple(y.tolist()))
        if key in self._memo:
            return self._memo[key]
        t0 = time.perf_counter()
        usable = [self.by_uri.get(items[i].uri) is not None for i in train]
        pos = [items[i] for i, ok, lab in zip(train, usable, y, strict=True) if ok and lab == 1]
        neg = [items[i] for i, ok, lab in zip(train, usable, y, strict=True) if ok and lab == 0]
        aux = self.auxiliary_items() if self.auxiliary and not neg else None
        emb = finetune(
            self.embedder,
            pos,
            neg or None,
            auxiliary=aux,
            progress=False,
            **{"random_state": seed, **self.options},
        )
        wanted = [items[i] for i in np.r_[train, np.asarray(task.test)]]
        readable = list(
            {it.uri: it for it in wanted if self.by_uri.get(it.uri) is not None}.values()
        )
        out = embed_items(emb, readable, cache=None, progress=False)
        by_uri: dict[str, ImageEmbedding | None] = dict.fromkeys((it.uri for it in items), None)
        by_uri.update({it.uri: e for it, e in zip(readable, out.embeddings, strict=True)})
        got = (CellVectors(self.spec, emb.kind, by_uri), time.perf_counter() - t0)
        self._memo = {key: got}  # one training set at a time: bounded memory
        return got


def make_embeddings(spec: str, cache_dir: Path, progress: bool) -> Embeddings:
    """Returns the :class:`Embeddings` (frozen or fine-tuned per cell) of a suite's spec."""
    if parse_spec(spec)[0] == "finetune":
        return FinetunedEmbeddings(spec, cache_dir, progress)
    return Embeddings(spec, cache_dir, progress)
