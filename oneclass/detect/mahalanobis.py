"""Gaussian model of the class: score = minus the squared Mahalanobis distance to its mean.

The covariance is shrunk so that it stays invertible with fewer samples than features (10
embeddings of 128 numbers are fine): Ledoit-Wolf by default, or OAS; ``"mcd"`` (Minimum
Covariance Determinant, robust to outliers in the training set, PyOD's MCD) needs more samples
than features. Only the mean and the precision matrix are kept.
"""

from __future__ import annotations

from numbers import Real
from typing import Any, ClassVar

import numpy as np
from scipy import linalg
from sklearn.covariance import OAS, LedoitWolf, MinCovDet
from sklearn.utils._param_validation import Interval, StrOptions

from oneclass.detect.base import BaseDetector, State
from oneclass.detect.knn import row_blocks

COVARIANCES = ("ledoit-wolf", "oas", "mcd")


def precision_matrix(cov: np.ndarray) -> np.ndarray:
    """Inverse of a covariance matrix: by Cholesky if positive definite, else pseudo-inverse."""
    try:
        chol = linalg.cholesky(cov, lower=True, check_finite=False)
    except linalg.LinAlgError:
        prec = linalg.pinvh(cov, check_finite=False)
        return (prec + prec.T) / 2.0
    inv_chol = linalg.solve_triangular(chol, np.eye(cov.shape[0]), lower=True, check_finite=False)
    return inv_chol.T @ inv_chol


def squared_mahalanobis(X: np.ndarray, location: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """``(x - location)^T precision (x - location)`` for each row of ``X``, in blocks."""
    out = np.empty(X.shape[0], dtype=np.float64)
    for sl in row_blocks(X.shape[0], X.shape[1]):
        D = X[sl] - location
        out[sl] = np.einsum("ij,ij->i", D @ precision, D)
    return out


class Mahalanobis(BaseDetector):
    """Squared Mahalanobis distance under a shrinkage covariance (higher score = more in-class).

    Parameters
    ----------
    covariance : ``"ledoit-wolf"`` (default), ``"oas"`` or ``"mcd"``.
    support_fraction : for ``"mcd"`` only: fraction of points in the MCD support (None =
        scikit-learn's default ``(n + d + 1) / 2n``).
    target_tpr, calibration_folds, random_state, contamination : as for every detector
        (:mod:`oneclass.detect.base`).
    """

    name = "mahalanobis"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseDetector._parameter_constraints,
        "covariance": [StrOptions(set(COVARIANCES))],
        "support_fraction": [None, Interval(Real, 0, 1, closed="right")],
    }

    def __init__(
        self,
        covariance: str = "ledoit-wolf",
        support_fraction: float | None = None,
        target_tpr: float = 0.95,
        calibration_folds: int = 5,
        random_state: int | None = None,
        *,
        contamination: float | None = None,
    ):
        self.covariance = covariance
        self.support_fraction = support_fraction
        self.target_tpr = target_tpr
        self.calibration_folds = calibration_folds
        self.random_state = random_state
        self.contamination = contamination

    def _fit_model(self, X: np.ndarray, y: np.ndarray | None) -> None:
        if self.support_fraction is not None and self.covariance != "mcd":
            raise ValueError("support_fraction applies only to covariance='mcd'")
        n, d = X.shape
        if self.covariance == "mcd":
            if n <= d:
                raise ValueError(
                    f"covariance='mcd' needs more samples than features, got {n} samples of "
                    f"{d} features; use covariance='ledoit-wolf' or 'oas'"
                )
            est = MinCovDet(support_fraction=self.support_fraction, random_state=self.random_state)
        elif self.covariance == "ledoit-wolf":
            est = LedoitWolf(store_precision=False)
        else:
            est = OAS(store_precision=False)
        est.fit(X)
        self.location_ = np.ascontiguousarray(est.location_, dtype=np.float64)
        self.precision_ = precision_matrix(est.covariance_)

    def _score(self, X: np.ndarray) -> np.ndarray:
        return -squared_mahalanobis(X, self.location_, self.precision_)

    def _get_state(self) -> State:
        return State(arrays={"location": self.location_, "precision": self.precision_})

    def _set_state(self, state: State) -> None:
        self.location_ = np.ascontiguousarray(state.arrays["location"], dtype=np.float64)
        self.precision_ = np.ascontiguousarray(state.arrays["precision"], dtype=np.float64)
