"""Exact k-nearest-neighbour detector: in-class score = minus the distance to the training set.

Search is brute force with BLAS: each block of query rows is multiplied against all reference
vectors at once and the ``k`` nearest are picked with ``k`` vectorised argmax passes (small
``k``) or ``np.partition``: no tree, no per-row Python loop. The block height keeps the temporary
distance matrix under :data:`BLOCK_BYTES`, so memory stays bounded for 100k+ reference vectors.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from oneclass.detect.base import BaseDetector, State

#: memory budget of one block of query-to-reference distances (bytes)
BLOCK_BYTES = 64 * 2**20

METRICS = ("cosine", "euclidean")
AGGREGATIONS = ("max", "mean")


def row_blocks(n_rows: int, n_cols: int, budget: int = BLOCK_BYTES) -> Iterator[slice]:
    """Slices of ``n_rows`` so that one ``(rows, n_cols)`` float64 block fits in ``budget``."""
    step = max(1, budget // (8 * max(n_cols, 1)))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def squared_distances(X: np.ndarray, Y: np.ndarray, Y_sq: np.ndarray | None = None) -> np.ndarray:
    """Squared Euclidean distances between the rows of ``X`` and ``Y`` (one BLAS matmul)."""
    if Y_sq is None:
        Y_sq = np.einsum("ij,ij->i", Y, Y)
    D = X @ Y.T
    D *= -2.0
    D += np.einsum("ij,ij->i", X, X)[:, None]
    D += Y_sq[None, :]
    np.maximum(D, 0.0, out=D)
    return D


def unit_rows(X: np.ndarray, what: str) -> np.ndarray:
    """``X`` with every row scaled to unit length; zero rows have no direction -> ValueError."""
    norms = np.linalg.norm(X, axis=1)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        shown = ", ".join(str(i) for i in zero[:5]) + (" ..." if zero.size > 5 else "")
        raise ValueError(
            f"{what} has {zero.size} all-zero row(s) ({shown}): cosine distance is undefined "
            "for them; use metric='euclidean' or drop those rows"
        )
    return X / norms[:, None]


#: up to this k, the k largest values are taken by k argmax passes (faster than a partition)
ARGMAX_MAX_K = 16


def top_k(G: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` largest values of each row of ``G`` (unordered); ``G`` is overwritten."""
    n_cols = G.shape[1]
    if k >= n_cols:
        return G
    if k > ARGMAX_MAX_K:
        G.partition(n_cols - k, axis=1)
        return G[:, n_cols - k:]
    rows = np.arange(G.shape[0])
    out = np.empty((G.shape[0], k), dtype=G.dtype)
    for j in range(k):
        best = G.argmax(axis=1)
        out[:, j] = G[rows, best]
        G[rows, best] = -np.inf
    return out


def knn_distances(X: np.ndarray, ref: np.ndarray, k: int, metric: str,
                  budget: int = BLOCK_BYTES) -> np.ndarray:
    """Distances from each row of ``X`` to its ``k`` nearest rows of ``ref`` (unsorted, exact).

    ``metric="cosine"`` expects ``X`` and ``ref`` with unit rows and returns ``1 - cos``.
    """
    n_ref = ref.shape[0]
    if not 1 <= k <= n_ref:
        raise ValueError(f"k={k} must be between 1 and the {n_ref} reference vectors")
    out = np.empty((X.shape[0], k), dtype=np.float64)
    ref_sq = None if metric == "cosine" else np.einsum("ij,ij->i", ref, ref)
    for sl in row_blocks(X.shape[0], n_ref, budget):
        # the k largest of G are the k nearest: G = similarity (cosine) or 2<x,r> - |r|^2
        G = X[sl] @ ref.T
        if ref_sq is not None:
            G *= 2.0
            G -= ref_sq[None, :]
        top = top_k(G, k)
        if metric == "cosine":
            out[sl] = np.maximum(1.0 - top, 0.0)
        else:
            x_sq = np.einsum("ij,ij->i", X[sl], X[sl])
            out[sl] = np.sqrt(np.maximum(x_sq[:, None] - top, 0.0))
    return out


class KNN(BaseDetector):
    """k-nearest-neighbour distance to the training vectors (exact, blocked BLAS search).

    Parameters
    ----------
    k : number of neighbours.
    metric : ``"cosine"`` (``1 - cos``; the default, right for embeddings whose direction
        carries the meaning) or ``"euclidean"``.
    aggregation : ``"mean"`` (mean distance to the ``k`` nearest, the default) or ``"max"``
        (distance to the ``k``-th nearest, PyOD's ``method="largest"``).

    Score: minus the aggregated distance. A training vector scored in-sample finds itself at
    distance 0 (``calibration_folds=0`` is therefore optimistic, as documented in the base).
    The state is the reference vectors themselves (unit rows for cosine).
    """

    name = "knn"
    min_train_samples = 1

    def __init__(self, k: int = 5, metric: str = "cosine", aggregation: str = "mean",
                 target_tpr: float = 0.95, calibration_folds: int = 5,
                 random_state: int | None = None):
        self.k = k
        self.metric = metric
        self.aggregation = aggregation
        self.target_tpr = target_tpr
        self.calibration_folds = calibration_folds
        self.random_state = random_state

    def _check_params(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int | np.integer) or self.k < 1:
            raise ValueError(f"k must be a positive integer, got {self.k!r}")
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {self.metric!r}")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}")

    def _check_train_size(self, n: int) -> None:
        self._check_params()
        if n < self.k:
            hint = ""
            if self.calibration_folds:
                hint = (f" (each of the calibration_folds={self.calibration_folds} calibration "
                        "fits trains on a part of the data: pass more samples, a smaller k or "
                        "calibration_folds=0)")
            raise ValueError(
                f"KNN with k={self.k} needs at least {self.k} training samples, got {n}{hint}"
            )

    def _fit_model(self, X: np.ndarray, y: np.ndarray | None) -> None:
        self._check_params()
        self._check_train_size(X.shape[0])
        ref = unit_rows(X, "training X") if self.metric == "cosine" else X
        self.reference_ = np.ascontiguousarray(ref, dtype=np.float64)

    def _score(self, X: np.ndarray) -> np.ndarray:
        if self.metric == "cosine":
            X = unit_rows(X, "X")
        dist = knn_distances(X, self.reference_, int(self.k), self.metric)
        agg = dist.max(axis=1) if self.aggregation == "max" else dist.mean(axis=1)
        return -agg

    def _get_state(self) -> State:
        return State(arrays={"reference": self.reference_})

    def _set_state(self, state: State) -> None:
        self.reference_ = np.ascontiguousarray(state.arrays["reference"], dtype=np.float64)
