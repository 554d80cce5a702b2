"""Nearest-neighbour search over a bank of reference rows: exact, IVF or HNSW.

An index answers one question: which rows of the reference bank are the ``k`` nearest to each
query row (:meth:`NeighbourIndex.candidates`). It returns row ids, never distances: the kNN
detector recomputes the distances of the returned rows in float64, so every index kind gives
the same numbers for the same neighbours.

* ``exact``: float32 BLAS brute force in blocks (one matrix product per block of queries, then
  ``np.argpartition``). FAISS's ``IndexFlatL2``/``IndexFlatIP`` was measured at the same speed
  on this machine (both are one float32 GEMM), so the exact kind needs no FAISS.
* ``ivf``: FAISS ``IndexIVFFlat``; ``nlist`` ~ 4 sqrt(n) k-means cells trained on a seeded
  sample, ``nprobe`` cells searched per query.
* ``hnsw``: FAISS ``IndexHNSWFlat`` (graph with ``M`` links per node, ``efSearch`` queue).

Metrics: ``"euclidean"`` (L2) and ``"cosine"``, where the caller passes unit rows and the index
searches by inner product.

Saving: the reference rows are saved by the detector; an index adds its learnt structure as
plain integer/float arrays (:meth:`NeighbourIndex.state`): IVF its centroids and the cell of
each row, HNSW its graph (levels, offsets, neighbours, entry point). Loading rebuilds the FAISS
object from those arrays after checking every size, range and id against the reference bank, so a
stranger's file cannot make FAISS read out of bounds or allocate more than the file holds.
FAISS's own binary serialisation is not used: its reader trusts the sizes written in the file.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from oneclass.config import default_threads

INDEX_KINDS = ("exact", "ivf", "hnsw")
METRICS = ("cosine", "euclidean")
#: memory budget of one block of query-to-reference similarities (bytes)
BLOCK_BYTES = 64 * 2**20
#: largest HNSW ``M`` accepted (FAISS's graphs use 16-64)
MAX_HNSW_M = 256
#: HNSW's build queue (FAISS's ``efConstruction``) unless the detector sets ``ef_construction``
DEFAULT_EF_CONSTRUCTION = 40
#: k-means iterations of the IVF cells (FAISS's default, 25, buys little for search)
KMEANS_ITERATIONS = 10
FAISS_HINT = "pip install faiss-cpu (or the oneclass[scale] extra)"


def require_faiss(kind: str) -> Any:
    """Returns the ``faiss`` module, or raises ImportError saying how to install it."""
    try:
        import faiss
    except ImportError as exc:
        raise ImportError(f"knn index={kind!r} needs FAISS: {FAISS_HINT}") from exc
    return faiss


def byte_blocks(n_rows: int, row_bytes: int, budget: int = BLOCK_BYTES) -> Iterator[slice]:
    """Returns slices of ``n_rows`` so that one block of rows of ``row_bytes`` fits ``budget``."""
    step = max(1, budget // max(row_bytes, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


class NeighbourIndex(ABC):
    """Search structure over float32 reference rows (unit rows for ``metric="cosine"``)."""

    kind: ClassVar[str] = ""

    def __init__(self, reference: np.ndarray, metric: str) -> None:
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        self.reference = np.ascontiguousarray(reference, dtype=np.float32)
        self.metric = metric

    @property
    def n_rows(self) -> int:
        """Returns the number of reference rows."""
        return int(self.reference.shape[0])

    @abstractmethod
    def candidates(self, X: np.ndarray, k: int) -> np.ndarray:
        """Returns ``(len(X), k)`` int64 ids of the nearest reference rows (-1: none found)."""

    def settings(self) -> dict[str, Any]:
        """Returns the resolved parameters and scalars of the structure (JSON-able)."""
        return {"kind": self.kind}

    def state(self) -> dict[str, np.ndarray]:
        """Returns the learnt structure as arrays (the reference rows are saved by the caller)."""
        return {}


class ExactIndex(NeighbourIndex):
    """Brute force: float32 matrix products in blocks, ``np.argpartition`` for the k largest."""

    kind = "exact"

    def __init__(self, reference: np.ndarray, metric: str, budget: int = BLOCK_BYTES) -> None:
        super().__init__(reference, metric)
        self.budget = budget
        ref = self.reference
        self._half_sq = None if metric == "cosine" else 0.5 * np.einsum("ij,ij->i", ref, ref)

    def candidates(self, X: np.ndarray, k: int) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        n_ref = self.n_rows
        k = min(k, n_ref)
        out = np.empty((X.shape[0], k), dtype=np.int64)
        for sl in byte_blocks(X.shape[0], 4 * n_ref, self.budget):
            # the k largest of G are the k nearest: G = <x, r> (cosine) or <x, r> - |r|^2 / 2
            G = X[sl] @ self.reference.T
            if self._half_sq is not None:
                G -= self._half_sq[None, :]
            if k == n_ref:
                out[sl] = np.arange(n_ref)[None, :]
            else:
                out[sl] = np.argpartition(G, n_ref - k, axis=1)[:, n_ref - k :]
        return out


def faiss_metric(faiss: Any, metric: str) -> int:
    """Returns the FAISS metric constant for ``metric`` (cosine = inner product of unit rows)."""
    return int(faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2)


def check_ints(arr: Any, name: str, shape: tuple[int, ...], low: int, high: int) -> np.ndarray:
    """Returns ``arr`` as int64 after checking its shape and that ``low <= values < high``."""
    a = np.asarray(arr)
    if a.dtype.kind not in "iu" or a.shape != shape:
        raise ValueError(
            f"saved index: {name} must be integers of shape {shape}, got {a.dtype} {a.shape}"
        )
    a = a.astype(np.int64)
    if a.size and (a.min() < low or a.max() >= high):
        raise ValueError(f"saved index: {name} holds values outside [{low}, {high})")
    return a


class IVFIndex(NeighbourIndex):
    """FAISS ``IndexIVFFlat``: k-means cells, ``nprobe`` of them searched per query.

    ``nlist=None``: ``round(4 sqrt(n))``, at most ``n // 39`` (FAISS's k-means wants 39 rows per
    centroid). ``nprobe=None``: ``max(8, round(sqrt(nlist) / 4))`` (recall@5 1.000 at 500k on
    the synthetic mixture of ``benchmarks/results/scale.md``; the fitted ``index_recall_``
    reports it on your data). The centroids are trained on a
    seeded sample of ``min(n, 48 nlist)`` rows (k-means, 10 iterations).
    """

    kind = "ivf"

    def __init__(
        self,
        reference: np.ndarray,
        metric: str,
        *,
        nlist: int | None = None,
        nprobe: int | None = None,
        seed: int = 0,
        saved: dict[str, np.ndarray] | None = None,
    ) -> None:
        super().__init__(reference, metric)
        faiss = require_faiss(self.kind)
        n, d = self.reference.shape
        if saved is not None:
            cent = np.asarray(saved.get("ivf_centroids"))
            if cent.ndim != 2 or cent.shape[1] != d or not 1 <= cent.shape[0] <= n:
                raise ValueError(
                    f"saved index: ivf_centroids must be (1..{n}, {d}), got {cent.shape}"
                )
            if cent.dtype.kind != "f" or not np.isfinite(cent).all():
                raise ValueError("saved index: ivf_centroids must be finite floats")
            nlist = int(cent.shape[0])
        elif nlist is None:
            nlist = max(1, min(round(4 * math.sqrt(n)), n // 39))
        nlist = max(1, min(int(nlist), n))
        self.nlist = nlist
        self.nprobe = min(nlist, int(nprobe) if nprobe else max(8, round(math.sqrt(nlist) / 4)))
        faiss.omp_set_num_threads(default_threads())
        quantizer = faiss.IndexFlatIP(d) if metric == "cosine" else faiss.IndexFlatL2(d)
        self._index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss_metric(faiss, metric))
        self._index.own_fields = True
        quantizer.this.disown()
        if saved is None:
            rng = np.random.default_rng(seed)
            n_train = min(n, 48 * nlist)
            sample = np.sort(rng.choice(n, n_train, replace=False)) if n_train < n else None
            self._index.cp.seed = int(seed) % 2**31
            self._index.cp.min_points_per_centroid = 1
            self._index.cp.niter = KMEANS_ITERATIONS
            self._index.train(self.reference if sample is None else self.reference[sample])
            assign = quantizer.assign(self.reference, 1).ravel()
        else:
            quantizer.add(np.ascontiguousarray(saved["ivf_centroids"], dtype=np.float32))
            self._index.is_trained = True
            assign = check_ints(saved.get("ivf_assignment"), "ivf_assignment", (n,), 0, nlist)
        self.assignment = np.ascontiguousarray(assign, dtype=np.int64)
        self._index.add_core(
            n, faiss.swig_ptr(self.reference), None, faiss.swig_ptr(self.assignment)
        )

    def candidates(self, X: np.ndarray, k: int) -> np.ndarray:
        faiss = require_faiss(self.kind)
        faiss.omp_set_num_threads(default_threads())
        self._index.nprobe = self.nprobe
        _, ids = self._index.search(np.ascontiguousarray(X, dtype=np.float32), min(k, self.n_rows))
        return ids.astype(np.int64)

    def settings(self) -> dict[str, Any]:
        return {"kind": self.kind, "nlist": self.nlist, "nprobe": self.nprobe}

    def state(self) -> dict[str, np.ndarray]:
        cent = self._index.quantizer.reconstruct_n(0, self.nlist)
        return {
            "ivf_centroids": np.asarray(cent, dtype=np.float32),
            "ivf_assignment": self.assignment.astype(np.int32),
        }


def default_ef_search(n_rows: int, k: int) -> int:
    """Returns HNSW's default search queue for ``n_rows`` references and ``k`` neighbours."""
    return int(max(64, 2 * k, min(1024, n_rows // 2000)))


class HNSWIndex(NeighbourIndex):
    """FAISS ``IndexHNSWFlat``: a navigable graph, ``M`` links per node.

    ``ef_search=None``: ``max(64, 2 k, n / 2000)`` (at most 1024) at query time: the queue grows
    with the graph, since a fixed one loses recall as ``n`` grows (synthetic 128-d mixture,
    ``benchmarks/results/scale.md``: efSearch 64 kept recall@5 0.992 at 100k but 0.830 at 500k;
    256 gave 0.949 at 500k). ``ef_construction``: the queue while the graph is built (FAISS's
    ``efConstruction``, default :data:`DEFAULT_EF_CONSTRUCTION`); larger builds slower and gives a
    better graph, so higher recall at the same ``ef_search`` (scale.md, 500k rows: 200 gave recall
    1.000 against 0.949 with 40, for 2.8x the build time).
    """

    kind = "hnsw"

    def __init__(
        self,
        reference: np.ndarray,
        metric: str,
        *,
        m: int = 32,
        ef_search: int | None = None,
        ef_construction: int = DEFAULT_EF_CONSTRUCTION,
        saved: dict[str, np.ndarray] | None = None,
        saved_meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(reference, metric)
        faiss = require_faiss(self.kind)
        if isinstance(m, bool) or not isinstance(m, int | np.integer) or not 2 <= m <= MAX_HNSW_M:
            raise ValueError(f"hnsw_m must be an integer in [2, {MAX_HNSW_M}], got {m!r}")
        if (
            isinstance(ef_construction, bool)
            or not isinstance(ef_construction, int | np.integer)
            or ef_construction < 1
        ):
            raise ValueError(f"ef_construction must be a positive integer, got {ef_construction!r}")
        self.m = int(m)
        self.ef_search = ef_search
        self.ef_construction = int(ef_construction)
        faiss.omp_set_num_threads(default_threads())
        self._index = faiss.IndexHNSWFlat(
            self.reference.shape[1], self.m, faiss_metric(faiss, metric)
        )
        self._index.hnsw.efConstruction = self.ef_construction
        if saved is None:
            self._index.add(self.reference)
        else:
            self._restore(faiss, saved, saved_meta or {})

    def _restore(self, faiss: Any, saved: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Rebuild the graph from saved arrays after checking that every id stays in bounds."""
        n = self.n_rows
        hnsw = self._index.hnsw
        cum = faiss.vector_to_array(hnsw.cum_nneighbor_per_level).astype(np.int64)
        n_levels = cum.size - 1
        levels = check_ints(saved.get("hnsw_levels"), "hnsw_levels", (n,), 1, n_levels + 1)
        offsets = check_ints(saved.get("hnsw_offsets"), "hnsw_offsets", (n + 1,), 0, 2**62)
        if offsets[0] != 0 or not np.array_equal(np.diff(offsets), cum[levels]):
            raise ValueError("saved index: hnsw_offsets do not match hnsw_levels")
        total = int(offsets[-1])
        neighbors = check_ints(saved.get("hnsw_neighbors"), "hnsw_neighbors", (total,), -1, n)
        entry, max_level = meta.get("entry_point"), meta.get("max_level")
        if not isinstance(entry, int) or not 0 <= entry < n:
            raise ValueError(f"saved index: entry_point {entry!r} is not a row id")
        if max_level != int(levels.max()) - 1 or levels[entry] - 1 != max_level:
            raise ValueError("saved index: max_level does not match the graph's levels")
        self._index.storage.add(self.reference)
        faiss.copy_array_to_vector(levels.astype(np.int32), hnsw.levels)
        faiss.copy_array_to_vector(offsets.astype(np.uint64), hnsw.offsets)
        faiss.copy_array_to_vector(neighbors.astype(np.int32), hnsw.neighbors)
        hnsw.entry_point = entry
        hnsw.max_level = max_level
        self._index.ntotal = n

    def candidates(self, X: np.ndarray, k: int) -> np.ndarray:
        faiss = require_faiss(self.kind)
        faiss.omp_set_num_threads(default_threads())
        k = min(k, self.n_rows)
        self._index.hnsw.efSearch = int(self.ef_search or default_ef_search(self.n_rows, k))
        _, ids = self._index.search(np.ascontiguousarray(X, dtype=np.float32), k)
        return ids.astype(np.int64)

    def settings(self) -> dict[str, Any]:
        hnsw = self._index.hnsw
        return {
            "kind": self.kind,
            "hnsw_m": self.m,
            "ef_search": self.ef_search,
            "ef_construction": int(hnsw.efConstruction),
            "entry_point": int(hnsw.entry_point),
            "max_level": int(hnsw.max_level),
        }

    def state(self) -> dict[str, np.ndarray]:
        faiss = require_faiss(self.kind)
        hnsw = self._index.hnsw
        return {
            "hnsw_levels": faiss.vector_to_array(hnsw.levels).astype(np.int32),
            "hnsw_offsets": faiss.vector_to_array(hnsw.offsets).astype(np.int64),
            "hnsw_neighbors": faiss.vector_to_array(hnsw.neighbors).astype(np.int32),
        }


def build_index(
    reference: np.ndarray,
    metric: str,
    kind: str = "exact",
    *,
    nlist: int | None = None,
    nprobe: int | None = None,
    hnsw_m: int = 32,
    ef_search: int | None = None,
    ef_construction: int = DEFAULT_EF_CONSTRUCTION,
    seed: int = 0,
    saved: dict[str, np.ndarray] | None = None,
    saved_meta: dict[str, Any] | None = None,
) -> NeighbourIndex:
    """Returns an index of ``kind`` over ``reference`` (built, or restored from ``saved``)."""
    if kind == "exact":
        return ExactIndex(reference, metric)
    if kind == "ivf":
        return IVFIndex(reference, metric, nlist=nlist, nprobe=nprobe, seed=seed, saved=saved)
    if kind == "hnsw":
        return HNSWIndex(
            reference,
            metric,
            m=hnsw_m,
            ef_search=ef_search,
            ef_construction=ef_construction,
            saved=saved,
            saved_meta=saved_meta,
        )
    raise ValueError(f"index must be one of {INDEX_KINDS}, got {kind!r}")


def measure_recall(
    index: NeighbourIndex, X: np.ndarray, k: int, exclude: np.ndarray | None = None
) -> float:
    """Returns recall@k of ``index`` on queries ``X`` against exact search of the same bank.

    ``exclude`` (one reference row id per query, e.g. the query's own row when the queries are
    taken from the bank) is dropped from both neighbour lists, so a query finding itself does
    not count: recall is then measured on the ``k`` other nearest rows.
    """
    extra = 0 if exclude is None else 1
    k = min(k, index.n_rows - extra)
    if k < 1:
        return 1.0
    truth = ExactIndex(index.reference, index.metric).candidates(X, k + extra)
    found = index.candidates(X, k + extra)
    hits = total = 0
    for i in range(X.shape[0]):
        t, f = set(truth[i].tolist()), set(found[i].tolist())
        if exclude is not None:
            t.discard(int(exclude[i]))
            f.discard(int(exclude[i]))
        hits += len(t & f)
        total += len(t)
    return hits / max(total, 1)
