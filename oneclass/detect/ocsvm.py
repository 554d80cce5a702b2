"""One-class SVM with an RBF kernel (Schölkopf et al.), fitted by libsvm, scored with numpy.

The fit is scikit-learn's ``OneClassSVM``. For up to :data:`PRECOMPUTE_BYTES` of kernel matrix
the RBF Gram matrix is computed once with BLAS and handed to libsvm as a precomputed kernel
(the same solution, several times faster than libsvm's own kernel evaluations); larger
training sets use libsvm's RBF kernel. Scoring uses only the saved arrays (support vectors,
dual coefficients, intercept, gamma), so a loaded model scores exactly like the fitted one; the
score is libsvm's decision value divided by the sum of the dual coefficients (see
:class:`OCSVM`).
"""

from __future__ import annotations

import numbers
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn.svm import OneClassSVM
from sklearn.utils._param_validation import Interval, StrOptions

from oneclass.detect.base import BaseDetector, State
from oneclass.detect.knn import row_blocks, squared_distances

#: largest training Gram matrix (bytes) computed up front instead of by libsvm
PRECOMPUTE_BYTES = 512 * 2**20

GAMMAS = ("scale", "auto", "median")


def resolve_gamma(gamma: str | float, X: np.ndarray) -> float:
    """The numeric RBF ``gamma`` for ``X``.

    ``"scale"``: ``1 / (n_features * X.var())`` (scikit-learn's default; for unit-norm
    embeddings about 1, i.e. a kernel width of the typical distance between them);
    ``"auto"``: ``1 / n_features``; ``"median"``: ``1 / median squared distance`` between
    training vectors (on up to 1000 evenly spaced rows, so it needs no random numbers);
    a positive number is used as is.
    """
    if isinstance(gamma, str):
        if gamma == "scale":
            var = float(X.var())
            return 1.0 / (X.shape[1] * var) if var > 0 else 1.0
        if gamma == "auto":
            return 1.0 / X.shape[1]
        if gamma == "median":
            sub = X[np.linspace(0, X.shape[0] - 1, min(X.shape[0], 1000)).astype(int)]
            d2 = squared_distances(sub, sub)[np.triu_indices(sub.shape[0], 1)]
            med = float(np.median(d2)) if d2.size else 0.0
            return 1.0 / med if med > 0 else 1.0
        raise ValueError(f"gamma must be a positive number or one of {GAMMAS}, got {gamma!r}")
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not gamma > 0:
        raise ValueError(f"gamma must be a positive number or one of {GAMMAS}, got {gamma!r}")
    return float(gamma)


def rbf_gram(X: np.ndarray, gamma: float) -> np.ndarray:
    """``exp(-gamma * |x_i - x_j|^2)`` for all pairs of rows of ``X``."""
    K = squared_distances(X, X)
    K *= -gamma
    return np.exp(K, out=K)


def rbf_decision(
    X: np.ndarray, support: np.ndarray, coef: np.ndarray, intercept: float, gamma: float
) -> np.ndarray:
    """``sum_i coef_i * exp(-gamma * |x - s_i|^2) + intercept`` for each row of ``X``, in blocks."""
    out = np.empty(X.shape[0], dtype=np.float64)
    s_sq = np.einsum("ij,ij->i", support, support)
    for sl in row_blocks(X.shape[0], support.shape[0]):
        K = squared_distances(X[sl], support, s_sq)
        K *= -gamma
        np.exp(K, out=K)
        out[sl] = K @ coef + intercept
    return out


def fit_rbf_svm(svm_cls: type, X: np.ndarray, y: np.ndarray | None, gamma: float, **kwargs):
    """Fit a libsvm estimator with an RBF kernel of width ``gamma`` on ``X`` (and ``y``).

    Small training sets get a BLAS-computed precomputed kernel (see :data:`PRECOMPUTE_BYTES`).
    Returns the fitted estimator; its ``support_`` indexes rows of ``X``.
    """
    n = X.shape[0]
    if 8 * n * n <= PRECOMPUTE_BYTES:
        return svm_cls(kernel="precomputed", **kwargs).fit(rbf_gram(X, gamma), y)
    return svm_cls(kernel="rbf", gamma=gamma, **kwargs).fit(X, y)


class OCSVM(BaseDetector):
    """One-class SVM (RBF kernel); score = its decision value, normalised (higher = in-class).

    libsvm's decision value ``sum_i a_i K(x, s_i) - rho`` grows with the training set
    (``sum_i a_i = nu * n``), so models fitted on different numbers of samples, such as the
    calibration folds and the final model, would score on different scales. The score divides
    it by ``sum_i a_i``: a weighted mean kernel similarity to the support vectors minus an
    offset, the same ranking on one scale.

    Parameters
    ----------
    nu : upper bound on the fraction of training vectors left outside the boundary (and lower
        bound on the fraction of support vectors), in (0, 1].
    gamma : RBF width, ``"scale"`` (default), ``"auto"``, ``"median"`` or a positive number;
        see :func:`resolve_gamma`.
    tol, max_iter : libsvm's stopping tolerance and iteration cap (-1 = none).
    target_tpr, calibration_folds, random_state, contamination : as for every detector
        (:mod:`oneclass.detect.base`).
    """

    name = "ocsvm"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseDetector._parameter_constraints,
        "nu": [Interval(Real, 0, 1, closed="right")],
        "gamma": [StrOptions(set(GAMMAS)), Interval(Real, 0, None, closed="neither")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, -1, None, closed="left")],
    }

    def __init__(
        self,
        nu: float = 0.5,
        gamma: str | float = "scale",
        tol: float = 1e-3,
        max_iter: int = -1,
        target_tpr: float = 0.95,
        calibration_folds: int = 5,
        random_state: int | None = None,
        *,
        contamination: float | None = None,
    ):
        self.nu = nu
        self.gamma = gamma
        self.tol = tol
        self.max_iter = max_iter
        self.target_tpr = target_tpr
        self.calibration_folds = calibration_folds
        self.random_state = random_state
        self.contamination = contamination

    def _fit_model(self, X: np.ndarray, y: np.ndarray | None) -> None:
        gamma = resolve_gamma(self.gamma, X)
        svm = fit_rbf_svm(
            OneClassSVM, X, None, gamma, nu=self.nu, tol=self.tol, max_iter=self.max_iter
        )
        self.gamma_ = gamma
        self.support_vectors_ = np.ascontiguousarray(X[svm.support_])
        dual = np.asarray(svm.dual_coef_, dtype=np.float64).ravel()
        total = float(dual.sum())  # nu * n for libsvm's one-class problem, > 0
        self.dual_coef_ = np.ascontiguousarray(dual / total)
        self.intercept_ = float(svm.intercept_[0]) / total

    def _score(self, X: np.ndarray) -> np.ndarray:
        return rbf_decision(X, self.support_vectors_, self.dual_coef_, self.intercept_, self.gamma_)

    def _get_state(self) -> State:
        return State(
            meta={"gamma_": self.gamma_, "intercept_": self.intercept_},
            arrays={"support_vectors": self.support_vectors_, "dual_coef": self.dual_coef_},
        )

    def _set_state(self, state: State) -> None:
        self.gamma_ = float(state.meta["gamma_"])
        self.intercept_ = float(state.meta["intercept_"])
        self.support_vectors_ = np.ascontiguousarray(
            state.arrays["support_vectors"], dtype=np.float64
        )
        self.dual_coef_ = np.ascontiguousarray(state.arrays["dual_coef"], dtype=np.float64)
