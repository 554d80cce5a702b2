"""k-nearest-neighbour detector: in-class score = minus the distance to the reference bank.

Search (which rows are the nearest) and distance (how far they are) are separate steps:

1. an index (:mod:`oneclass.detect.index`: ``exact`` float32 BLAS brute force by default,
   ``ivf`` or ``hnsw`` from FAISS) returns the ids of the nearest reference rows; the exact
   index returns ``k + EXACT_MARGIN`` candidates so that float32 rounding cannot swap the
   ``k``-th and the next neighbour;
2. the distances of those candidates are recomputed in float64 from the query and the stored
   float32 reference rows, and the ``k`` smallest are aggregated.

So the scores of the exact index equal float64 brute force on the float32 reference rows (to
~1e-12; 1e-7 relative to the float64 inputs for rows that are not float32 numbers), a training
row finds itself at distance 0, and the approximate indexes differ only where they miss a
neighbour. Memory: the reference rows in float32 (half of float64, FAISS's type) and one block of
query-to-reference similarities (:data:`oneclass.detect.index.BLOCK_BYTES`).

``coreset``: keep a greedy k-center coreset of the training rows (PatchCore,
:mod:`oneclass.detect.coreset`) as the reference bank.
"""

from __future__ import annotations

from collections.abc import Iterator
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints

from oneclass.detect import index as nn
from oneclass.detect.base import BaseDetector, State
from oneclass.detect.coreset import coreset_size, greedy_coreset

#: memory budget of one float64 block (used by ocsvm/mahalanobis too)
BLOCK_BYTES = 64 * 2**20
METRICS = nn.METRICS
AGGREGATIONS = ("max", "mean")
#: extra candidates the exact index returns beyond ``k`` (float32 near-ties)
EXACT_MARGIN = 4
#: training rows queried against exact search to measure an approximate index's recall
RECALL_SAMPLE = 256


def row_blocks(n_rows: int, n_cols: int, budget: int = BLOCK_BYTES) -> Iterator[slice]:
    """Returns slices of ``n_rows`` so that one ``(rows, n_cols)`` float64 block fits ``budget``."""
    step = max(1, budget // (8 * max(n_cols, 1)))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def squared_distances(X: np.ndarray, Y: np.ndarray, Y_sq: np.ndarray | None = None) -> np.ndarray:
    """Returns the squared Euclidean distances between the rows of ``X`` and ``Y`` (one matmul)."""
    if Y_sq is None:
        Y_sq = np.einsum("ij,ij->i", Y, Y)
    D = X @ Y.T
    D *= -2.0
    D += np.einsum("ij,ij->i", X, X)[:, None]
    D += Y_sq[None, :]
    np.maximum(D, 0.0, out=D)
    return D


def unit_rows(X: np.ndarray, what: str) -> np.ndarray:
    """Returns ``X`` with every row scaled to unit length; zero rows raise ``ValueError``."""
    norms = np.linalg.norm(X, axis=1)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        shown = ", ".join(str(i) for i in zero[:5]) + (" ..." if zero.size > 5 else "")
        raise ValueError(
            f"{what} has {zero.size} all-zero row(s) ({shown}): cosine distance is undefined "
            "for them; use metric='euclidean' or drop those rows"
        )
    return X / norms[:, None]


def candidate_distances(
    X: np.ndarray, ref: np.ndarray, ids: np.ndarray, metric: str, budget: int = BLOCK_BYTES
) -> np.ndarray:
    """Returns float64 distances from each row of ``X`` to the reference rows ``ids`` (n, c).

    ``ids == -1`` (an approximate index found fewer rows) gives ``inf``. Cosine expects unit
    rows ``X`` and returns ``1 - cos`` (the reference rows are renormalised in float64).
    """
    X = np.asarray(X, dtype=np.float64)
    n, c = ids.shape
    out = np.empty((n, c), dtype=np.float64)
    for sl in row_blocks(n, c * X.shape[1], budget):
        idx = ids[sl]
        R = ref[np.maximum(idx, 0)].astype(np.float64)  # (rows, c, d)
        if metric == "cosine":
            dots = np.einsum("rd,rcd->rc", X[sl], R)
            dots /= np.sqrt(np.einsum("rcd,rcd->rc", R, R))
            out[sl] = np.maximum(1.0 - dots, 0.0)
        else:
            R -= X[sl][:, None, :]
            out[sl] = np.sqrt(np.einsum("rcd,rcd->rc", R, R))
        out[sl][idx < 0] = np.inf
    return out


def k_smallest(D: np.ndarray, k: int) -> np.ndarray:
    """Returns the ``k`` smallest values of each row of ``D``, ascending."""
    if k < D.shape[1]:
        D = np.partition(D, k - 1, axis=1)[:, :k]
    return np.sort(D, axis=1)


class KNN(BaseDetector):
    """k-nearest-neighbour distance to the training vectors.

    Args:
        k: number of neighbours.
        metric: ``"cosine"`` (``1 - cos``; the default, right for embeddings whose direction
            carries the meaning) or ``"euclidean"``.
        aggregation: ``"mean"`` (mean distance to the ``k`` nearest, the default) or ``"max"``
            (distance to the ``k``-th nearest, PyOD's ``method="largest"``).
        index: ``"exact"`` (default), ``"ivf"`` or ``"hnsw"`` (FAISS: ``pip install faiss-cpu``).
        nlist, nprobe: IVF cells and cells searched per query (None: ~4 sqrt(n) and
            ``max(8, sqrt(nlist) / 4)``).
        hnsw_m, ef_search: HNSW links per node and search queue (None: ``max(64, 2 k,
            n / 2000)``, at most 1024).
        ef_construction: HNSW's queue while it builds the graph (FAISS's ``efConstruction``;
            larger: slower fit, higher recall at the same ``ef_search``).
        coreset: None (keep every training row), a fraction in (0, 1] or a number of rows:
            keep a greedy k-center coreset (PatchCore) as the reference bank.
        target_tpr, calibration_folds, random_state, contamination: see the base class;
            ``random_state`` also seeds the IVF training sample and the coreset.

    Score: minus the aggregated distance. A training vector scored in-sample finds itself at
    distance 0 (``calibration_folds=0`` is therefore optimistic, as documented in the base).

    Fitted attributes: ``reference_`` (float32 rows; unit rows for cosine), ``index_`` (the
    search structure), ``index_recall_`` (recall@k of an approximate index against exact
    search on up to 256 training rows, each query's own row left out; 1.0 for exact),
    ``coreset_indices_`` (training rows kept, or None).
    """

    name = "knn"
    min_train_samples = 1
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseDetector._parameter_constraints,
        "k": [Interval(Integral, 1, None, closed="left")],
        "metric": [StrOptions(set(METRICS))],
        "aggregation": [StrOptions(set(AGGREGATIONS))],
        "index": [StrOptions(set(nn.INDEX_KINDS))],
        "nlist": [None, Interval(Integral, 1, None, closed="left")],
        "nprobe": [None, Interval(Integral, 1, None, closed="left")],
        "hnsw_m": [Interval(Integral, 2, nn.MAX_HNSW_M, closed="both")],
        "ef_search": [None, Interval(Integral, 1, None, closed="left")],
        "ef_construction": [Interval(Integral, 1, None, closed="left")],
        "coreset": [
            None,
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0, 1, closed="right"),
        ],
    }

    def __init__(
        self,
        k: int = 5,
        metric: str = "cosine",
        aggregation: str = "mean",
        target_tpr: float = 0.95,
        calibration_folds: int = 5,
        random_state: int | None = None,
        *,
        index: str = "exact",
        nlist: int | None = None,
        nprobe: int | None = None,
        hnsw_m: int = 32,
        ef_search: int | None = None,
        ef_construction: int = nn.DEFAULT_EF_CONSTRUCTION,
        coreset: float | int | None = None,
        contamination: float | None = None,
    ):
        self.k = k
        self.metric = metric
        self.aggregation = aggregation
        self.target_tpr = target_tpr
        self.calibration_folds = calibration_folds
        self.random_state = random_state
        self.index = index
        self.nlist = nlist
        self.nprobe = nprobe
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        self.ef_construction = ef_construction
        self.coreset = coreset
        self.contamination = contamination

    def _check_params(self) -> None:
        """Raises ``ValueError`` for a parameter outside ``_parameter_constraints``."""
        validate_parameter_constraints(
            self._parameter_constraints,
            self.get_params(deep=False),
            caller_name=type(self).__name__,
        )

    def _check_train_size(self, n: int) -> None:
        self._check_params()
        n_ref = n if self.coreset is None else coreset_size(n, self.coreset)
        if n_ref < self.k:
            hint = ""
            if self.calibration_folds:
                hint = (
                    f" (each of the calibration_folds={self.calibration_folds} calibration "
                    "fits trains on a part of the data: pass more samples, a smaller k or "
                    "calibration_folds=0)"
                )
            kept = "" if self.coreset is None else f" (coreset={self.coreset!r} keeps {n_ref})"
            raise ValueError(
                f"KNN with k={self.k} needs at least {self.k} training samples, "
                f"got n_samples={n}{kept}{hint}"
            )

    def _seed(self) -> int:
        """Seed of the coreset, IVF sample and recall sample (0 without ``random_state``)."""
        if self.random_state is None:
            return 0
        return int(check_random_state(self.random_state).randint(2**31 - 1))

    def _fit_model(self, X: np.ndarray, y: np.ndarray | None) -> None:
        self._check_params()
        self._check_train_size(X.shape[0])
        ref = unit_rows(X, "training X") if self.metric == "cosine" else X
        self.coreset_indices_ = None
        if self.coreset is not None:
            self.coreset_indices_ = greedy_coreset(ref, self.coreset, seed=self._seed())
            ref = ref[self.coreset_indices_]
        self.reference_ = np.ascontiguousarray(ref, dtype=np.float32)
        self.index_ = self._build_index()
        self.index_recall_ = self._measure_recall()

    def _build_index(
        self, saved: dict[str, np.ndarray] | None = None, saved_meta: dict[str, Any] | None = None
    ) -> nn.NeighbourIndex:
        return nn.build_index(
            self.reference_,
            self.metric,
            self.index,
            nlist=self.nlist,
            nprobe=self.nprobe,
            hnsw_m=self.hnsw_m,
            ef_search=self.ef_search,
            ef_construction=self.ef_construction,
            seed=self._seed(),
            saved=saved,
            saved_meta=saved_meta,
        )

    def _measure_recall(self) -> float:
        if self.index == "exact":
            return 1.0
        n = self.reference_.shape[0]
        rows = np.random.default_rng(self._seed()).choice(n, min(n, RECALL_SAMPLE), replace=False)
        return nn.measure_recall(self.index_, self.reference_[rows], int(self.k), exclude=rows)

    def _n_candidates(self) -> int:
        extra = EXACT_MARGIN if self.index == "exact" else 0
        return min(int(self.k) + extra, self.reference_.shape[0])

    def _score(self, X: np.ndarray) -> np.ndarray:
        self._check_params()
        if self.metric == "cosine":
            X = unit_rows(X, "X")
        ids = self.index_.candidates(X, self._n_candidates())
        dist = k_smallest(candidate_distances(X, self.reference_, ids, self.metric), int(self.k))
        agg = dist[:, -1] if self.aggregation == "max" else dist.mean(axis=1)
        return -agg

    def _get_state(self) -> State:
        arrays = {"reference": self.reference_, **self.index_.state()}
        meta = {"index": self.index_.settings(), "index_recall_": float(self.index_recall_)}
        if self.coreset_indices_ is not None:
            arrays["coreset_indices"] = self.coreset_indices_
        return State(meta=meta, arrays=arrays)

    def _set_state(self, state: State) -> None:
        self._check_params()
        ref = np.asarray(state.arrays.get("reference"))
        d = getattr(self, "n_features_in_", ref.shape[-1] if ref.ndim else 0)
        if ref.ndim != 2 or ref.shape[1] != d or ref.dtype.kind != "f":
            raise ValueError(
                f"model.reference must be float rows of {d} features, got {ref.dtype} {ref.shape}"
            )
        if ref.shape[0] < int(self.k):
            raise ValueError(f"model.reference has {ref.shape[0]} rows, fewer than k={self.k}")
        if not np.isfinite(ref).all():
            raise ValueError("model.reference holds NaN/inf values")
        self.reference_ = np.ascontiguousarray(ref, dtype=np.float32)
        meta = state.meta.get("index", {})
        if not isinstance(meta, dict) or meta.get("kind", "exact") != self.index:
            raise ValueError(f"model.index {meta!r} does not match index={self.index!r}")
        self.index_ = self._build_index(saved=state.arrays, saved_meta=meta)
        self.index_recall_ = float(state.meta.get("index_recall_", 1.0))
        cs = state.arrays.get("coreset_indices")
        self.coreset_indices_ = None if cs is None else np.asarray(cs, dtype=np.int64)
