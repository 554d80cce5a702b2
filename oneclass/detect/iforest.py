"""Isolation Forest (Liu et al.), fitted by scikit-learn, scored by a vectorised numpy traversal.

After fitting, every tree is flattened into shared node arrays (global feature index, threshold,
right child, leaf value); scikit-learn stores each left child right after its parent, so the next
node is ``node + 1`` or ``right[node]``. Leaves point right to themselves with a ``-inf``
threshold, so all trees walk together, one level per step, for ``max_depth`` steps. The leaf
value is its depth plus ``c(n_node_samples)``, the average path length of the unbuilt subtree;
the score is ``-2 ** (-mean path length / c(max_samples))``, i.e. scikit-learn's
``IsolationForest.score_samples`` (minus the anomaly score of the paper).
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions

from oneclass.detect.base import BaseDetector, State

#: query rows walked through the forest at once (bounds the (rows, trees) index arrays)
BLOCK_ROWS = 512


def average_path_length(n: np.ndarray) -> np.ndarray:
    """``c(n)``: mean path length of an unsuccessful search in a binary search tree of ``n``."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


def flatten_forest(forest: IsolationForest) -> dict[str, np.ndarray]:
    """A fitted forest as flat node arrays (see the module docstring) plus each tree's root."""
    feats, thrs, rights, values, roots, depths = [], [], [], [], [], []
    offset = 0
    for est, subset in zip(forest.estimators_, forest.estimators_features_, strict=True):
        t = est.tree_
        leaf = t.children_left < 0
        node_depth = t.compute_node_depths() - 1  # root at depth 0
        nodes = np.arange(t.node_count)
        if not np.array_equal(t.children_left[~leaf], nodes[~leaf] + 1):
            raise RuntimeError("unexpected tree layout: a left child does not follow its parent")
        feats.append(np.where(leaf, 0, np.asarray(subset)[np.maximum(t.feature, 0)]))
        thrs.append(np.where(leaf, -np.inf, t.threshold))
        rights.append(np.where(leaf, nodes, t.children_right) + offset)
        values.append(node_depth + average_path_length(t.n_node_samples))
        roots.append(offset)
        depths.append(int(node_depth.max()))
        offset += t.node_count
    return {
        "feature": np.concatenate(feats).astype(np.int64),
        "threshold": np.concatenate(thrs).astype(np.float64),
        "right": np.concatenate(rights).astype(np.int64),
        "value": np.concatenate(values).astype(np.float64),
        "roots": np.asarray(roots, dtype=np.int64),
        "max_depth": np.asarray(max(depths), dtype=np.int64),
    }


def float32_floor(t: np.ndarray) -> np.ndarray:
    """Largest float32 <= each ``t``: for a float32 ``x``, ``x <= t`` iff ``x <= floor(t)``."""
    f = np.asarray(t, dtype=np.float64).astype(np.float32)
    over = f.astype(np.float64) > t
    f[over] = np.nextafter(f[over], np.float32(-np.inf))
    return f


def mean_path_length(X: np.ndarray, f: dict[str, np.ndarray]) -> np.ndarray:
    """Mean over the trees of each row's path length (depth of its leaf + ``c(leaf size)``)."""
    # scikit-learn's trees compare float32 features with float64 thresholds; comparing with the
    # float32 floor of each threshold gives the same answers at half the memory traffic
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    n, d = X32.shape
    threshold = float32_floor(f["threshold"])
    # one gather fetches both the feature (low 32 bits) and the right child (high 32 bits)
    packed = (f["right"].astype(np.int64) << 32) | f["feature"].astype(np.int64)
    value, roots, max_depth = f["value"], f["roots"].astype(np.int64), int(f["max_depth"])
    out = np.empty(n, dtype=np.float64)
    for start in range(0, n, BLOCK_ROWS):
        block = X32[start : start + BLOCK_ROWS].ravel()
        m = block.size // d
        row_base = (np.arange(m, dtype=np.int64) * d)[:, None]
        node = np.broadcast_to(roots, (m, roots.size)).copy()
        for _ in range(max_depth):
            p = packed[node]
            go_left = block[row_base + (p & 0xFFFFFFFF)] <= threshold[node]
            node = np.where(go_left, node + 1, p >> 32)
        out[start : start + m] = value[node].mean(axis=1)
    return out


class IForest(BaseDetector):
    """Isolation Forest; score = scikit-learn's ``score_samples`` (higher = more in-class).

    Parameters
    ----------
    n_estimators : number of trees.
    max_samples : samples drawn per tree: ``"auto"`` (``min(256, n)``), an int, or a fraction.
    max_features : features drawn per tree: an int or a fraction in (0, 1].
    bootstrap : draw samples with replacement.
    target_tpr, calibration_folds, random_state, contamination : as for every detector
        (:mod:`oneclass.detect.base`).
    """

    name = "iforest"
    #: leaves hold a -inf threshold (see the module docstring)
    infinite_arrays = frozenset({"threshold"})
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseDetector._parameter_constraints,
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "max_samples": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
            Interval(RealNotInt, 0, 1, closed="right"),
        ],
        "max_features": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0, 1, closed="right"),
        ],
        "bootstrap": ["boolean"],
    }

    def __init__(
        self,
        n_estimators: int = 100,
        max_samples: str | int | float = "auto",
        max_features: int | float = 1.0,
        bootstrap: bool = False,
        target_tpr: float = 0.95,
        calibration_folds: int = 5,
        random_state: int | None = None,
        *,
        contamination: float | None = None,
    ):
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_features = max_features
        self.bootstrap = bootstrap
        self.target_tpr = target_tpr
        self.calibration_folds = calibration_folds
        self.random_state = random_state
        self.contamination = contamination

    def _fit_model(self, X: np.ndarray, y: np.ndarray | None) -> None:
        forest = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=self.max_samples,
            max_features=self.max_features,
            bootstrap=self.bootstrap,
            contamination="auto",
            random_state=self.random_state,
        )
        forest.fit(X)  # scikit-learn validates max_samples / max_features (ValueError)
        self.forest_ = flatten_forest(forest)
        self.max_samples_ = int(forest.max_samples_)

    def _score(self, X: np.ndarray) -> np.ndarray:
        denom = float(average_path_length(np.asarray([self.max_samples_]))[0])
        depth = mean_path_length(X, self.forest_)
        if denom == 0:  # one sample per tree: scikit-learn's convention, every score -1
            return -np.ones(X.shape[0])
        return -np.exp2(-depth / denom)

    def _get_state(self) -> State:
        return State(meta={"max_samples_": self.max_samples_}, arrays=dict(self.forest_))

    def _set_state(self, state: State) -> None:
        self.max_samples_ = int(state.meta["max_samples_"])
        keys = ("feature", "threshold", "right", "value", "roots", "max_depth")
        self.forest_ = {k: np.asarray(state.arrays[k]) for k in keys}
