"""One cell of a benchmark = one job: fit a detector on a task's training images, score its test
images, measure. The images take their training rows and scores through
:mod:`oneclass.embed.aggregate`, the one path :class:`oneclass.pipeline.Pipeline` uses too: the
embedder's ``kind`` decides (image: its vector; face: the largest face trains, the best face
scores; patch: every patch trains, the least in-class 1 % of patches score).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from oneclass.bench.protocols.base import Work
from oneclass.bench.results import comparable_scores
from oneclass.embed.aggregate import score_images, training_vectors
from oneclass.metrics import evaluate

#: per-patch scores kept for this many of a cell's worst false positives and false negatives
#: (what a report gallery can show as anomaly maps)
MAP_IMAGES = 12


@dataclass
class Job:
    """One cell: ``work`` (a task over items, with embeddings) crossed with one detector."""

    cell: str
    identity: dict[str, Any]
    work: Work
    detector: str
    bootstrap: int
    calibration_folds: int


@dataclass
class CellOutput:
    """What a job produced: result rows (one per negative family), per-image scores and, for
    patch embedders, per-patch scores of the gallery candidates."""

    rows: list[dict[str, Any]]
    scores: pd.DataFrame | None = None
    maps: dict[str, np.ndarray] | None = None

    @property
    def failed(self) -> bool:
        """Whether the job raised (its one row carries the error)."""
        return any(r.get("status") == "failed" for r in self.rows)


def make_cell_detector(spec: str, seed: int, calibration_folds: int) -> Any:
    """Returns the detector of ``spec``, seeded: ``random_state`` and ``calibration_folds`` come
    from the suite unless the spec sets them (the spec wins, as the results row shows it)."""
    from oneclass.detect.registry import make_detector
    from oneclass.registry import parse_spec

    written = parse_spec(spec)[1]
    defaults = {"random_state": seed, "calibration_folds": calibration_folds}
    return make_detector(spec, **{k: v for k, v in defaults.items() if k not in written})


def run_job(job: Job) -> CellOutput:
    """Run one cell; an exception becomes the cell's one ``failed`` row, never the run's end.

    Returns:
        The :class:`CellOutput`.
    """
    try:
        return _run(job)
    except Exception as exc:  # noqa: BLE001 - one failing cell must not stop the grid
        return CellOutput(
            [
                {
                    **job.identity,
                    "family": "all",
                    "status": "failed",
                    "error": f"{type(exc).__name__}: {exc}",
                }
            ]
        )


def _run(job: Job) -> CellOutput:
    work, task, seed = job.work, job.work.task, job.work.seed
    emb, prep_s = work.embeddings.for_task(work.items, task, seed)
    train_items = [work.items[i] for i in task.train]
    ts = training_vectors(emb.get(train_items), emb.kind, what="training images")
    det = make_cell_detector(job.detector, seed, job.calibration_folds)
    t0 = time.perf_counter()
    if task.train_y is None:
        det.fit(ts.X)
    else:
        det.fit(ts.X, np.asarray(task.train_y)[ts.image_index])
    fit_s = time.perf_counter() - t0
    test_items = [work.items[i] for i in task.test]
    t0 = time.perf_counter()
    scored = score_images(emb.get(test_items), emb.kind, det.score_samples)
    score_s = time.perf_counter() - t0
    status = np.asarray(scored.status, dtype=object)
    usable = status != "failed"
    y, fam = task.test_label[usable], task.test_family[usable]
    s = comparable_scores(scored.scores[usable])
    used = np.unique(ts.image_index)
    n_neg = 0 if task.train_y is None else int((np.asarray(task.train_y)[used] == 0).sum())
    common = {
        **job.identity,
        "n_train": int(ts.counts["used"]),
        "n_train_neg": n_neg,
        "fit_s": round(fit_s, 4),
        "score_s": round(score_s, 4),
        "embed_s": round(work.embeddings.seconds + prep_s, 2),
        "n_failures": int((~usable).sum()) + int(ts.counts["failed"]),
        "status": "ok",
        "error": "",
    }
    rows = []
    for f in ["all"] + [f for f in dict.fromkeys(fam) if f != "positive"]:
        m = np.ones_like(y, bool) if f == "all" else (fam == "positive") | (fam == f)
        nf = int(((status[usable] == "no_face") & m).sum())
        nf += int(ts.counts["no_face"]) if f == "all" else 0
        metrics = evaluate(y[m], s[m], n_boot=job.bootstrap, seed=seed)
        rows.append({**common, **metrics, "family": f, "n_no_face": nf})
    scores = pd.DataFrame(
        {
            "item_id": [it.id for it in test_items],
            "uri": [it.uri for it in test_items],
            "label": task.test_label,
            "family": task.test_family,
            "score": scored.scores,
            "n_faces": scored.n_vectors,
            "status": scored.status,
        }
    )
    maps = (
        patch_maps(emb.get(test_items), scored.scores, task.test_label, scored.vector_scores)
        if emb.kind == "patch"
        else None
    )
    return CellOutput(rows, scores, maps)


def patch_maps(
    embeddings: list,
    scores: np.ndarray,
    labels: np.ndarray,
    vector_scores: list[np.ndarray | None],
    k: int = MAP_IMAGES,
) -> dict[str, np.ndarray] | None:
    """Returns the per-patch scores of the ``k`` highest-scoring negatives and the ``k``
    lowest-scoring positives, as ``{"map<row>": (rows, cols) array}`` keyed by their row in the
    scores table, or ``None`` when no such image has a grid."""
    finite = np.flatnonzero(np.isfinite(scores))
    neg = finite[labels[finite] == 0]
    pos = finite[labels[finite] == 1]
    pick = np.r_[
        neg[np.argsort(-scores[neg], kind="stable")][:k],
        pos[np.argsort(scores[pos], kind="stable")][:k],
    ]
    out = {}
    for i in pick:
        grid = getattr(embeddings[i], "grid", None)
        vs = vector_scores[i]
        if grid is not None and vs is not None and vs.size == int(grid[0]) * int(grid[1]):
            out[f"map{int(i)}"] = np.asarray(vs, dtype=np.float32).reshape(grid)
    return out or None
