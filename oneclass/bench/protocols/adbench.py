"""``adbench``: the detectors on ADBench's precomputed embedding arrays (no embedder).

Each set in ``sets`` is a target: fit on a seeded 70% of its normals, test on the rest of the
normals and every anomaly (:func:`oneclass.data.adbench.adbench_split`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from oneclass.bench import schema as S
from oneclass.bench.protocols.base import Context, Protocol, Task, View, Work


def array_items(name: str, X: np.ndarray) -> tuple[list, dict[str, Any]]:
    """Returns items ``adbench:<name>#i`` and their one-vector embeddings, by URI."""
    from oneclass.data.sources import ImageItem
    from oneclass.embed.base import ImageEmbedding

    items = [ImageItem(id=f"{name}/{i}", uri=f"adbench:{name}#{i}") for i in range(len(X))]
    vecs = {it.uri: ImageEmbedding(X[i : i + 1].astype(np.float32)) for i, it in enumerate(items)}
    return items, vecs


class ADBench(Protocol):
    """ADBench arrays, one target per set (see the module docstring)."""

    name = "adbench"
    keys = {"sets": S.list_of(S.text, non_empty=True)}
    views = (View("per-target", "per-target", "Per target"),)
    uses_embedder = False

    def check(self, suite: Any, where: str) -> None:
        self.require(suite, where, "sets")

    def plan(self, ctx: Context, embeddings: Any) -> list[Work]:
        from oneclass.data.adbench import adbench_split, load_adbench

        emb = ctx.array_embeddings()
        work: list[Work] = []
        for name in ctx.suite.sets:
            X, y = load_adbench(name)
            for seed in ctx.seeds:
                sp = adbench_split(X, y, seed=seed)
                items, vecs = array_items(f"{name}/seed{seed}", np.vstack([sp.X_train, sp.X_test]))
                emb.by_uri.update(vecs)
                n_tr = len(sp.X_train)
                tr, te = np.arange(n_tr), np.arange(n_tr, len(items))
                fam = np.where(sp.y_test == 1, "positive", "anomaly")
                task = Task(
                    "per-target",
                    name,
                    ctx.suite.detectors,
                    tr,
                    te,
                    sp.y_test.astype(int),
                    fam,
                    None,
                    "seeded 70% of the normals train; rest + anomalies test",
                )
                work.append(Work(seed, items, task, emb))
        return work
