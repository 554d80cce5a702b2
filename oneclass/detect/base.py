"""The detector contract. This is the one place where oneclass's score convention is defined.

Score convention
----------------
``score_samples(X)`` returns the **in-class score**: higher means "more like the class the
detector learnt". Every detector, every wrapper (PyOD's outlier scores are negated), every
pipeline, metric and report in oneclass uses this direction, and nothing flips it.

Labels: ``1`` = in-class (positive), ``0`` = not in-class (negative). Data sets that mark anomalies
with 1 (ADBench) are converted when they are loaded.

The rest follows from one scoring method:

* ``fit(X)`` learns the class from positives (binary baselines: ``fit(X, y)``), then sets an
  out-of-sample threshold: cross-fitted scores of the training positives (``calibration_folds``
  folds; ``0`` = in-sample scores, optimistic) give ``threshold_`` so that ``target_tpr`` of the
  class is kept.
* ``decision_function(X) = score_samples(X) - threshold_``; ``predict(X)`` is 1 where it is >= 0.
* ``p_value(X)``: conformal p-values against the calibration scores,
  ``P(p <= alpha | in-class) <= alpha``.
* ``calibrate(X, y)`` re-sets the threshold from held-out data, at a target TPR (positives) or a
  target FPR (negatives).
* ``save(path)`` / :func:`oneclass.load`: JSON + npz + safetensors, never pickle.

A detector implements ``_fit_model``, ``_score``, ``_get_state`` and ``_set_state``; its
``__init__`` only stores parameters (scikit-learn's rule), and everything learnt ends in ``_``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from oneclass import calibrate as cal
from oneclass.detect.validation import check_labels, check_matrix


@dataclass
class State:
    """What a fitted detector saves: JSON-able ``meta``, numpy ``arrays``, torch ``tensors``."""

    meta: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    tensors: dict[str, Any] = field(default_factory=dict)


class BaseDetector(BaseEstimator, ABC):
    """Base class of every detector; subclasses implement the four private hooks."""

    #: registry name, set by each subclass
    name: ClassVar[str] = ""
    #: binary baselines need negatives at fit time
    requires_negatives: ClassVar[bool] = False
    #: smallest training set the model itself accepts
    min_train_samples: ClassVar[int] = 2
    #: most training samples scored for calibration (a seeded subset beyond that)
    max_calibration_scores: ClassVar[int] = 20_000

    # ---- hooks for subclasses -------------------------------------------------------------
    @abstractmethod
    def _fit_model(self, X: np.ndarray, y: np.ndarray | None) -> None:
        """Learn from validated ``X`` (and ``y`` for binary baselines); set fitted attributes."""

    @abstractmethod
    def _score(self, X: np.ndarray) -> np.ndarray:
        """In-class scores of validated ``X`` (higher = more in-class)."""

    @abstractmethod
    def _get_state(self) -> State:
        """Everything ``_score`` needs, as JSON + arrays (+ torch tensors)."""

    @abstractmethod
    def _set_state(self, state: State) -> None:
        """Restore what ``_get_state`` returned."""

    def _check_train_size(self, n: int) -> None:
        """Raise ``ValueError`` when ``n`` samples are too few for this model."""
        if n < self.min_train_samples:
            raise ValueError(
                f"{type(self).__name__} needs at least {self.min_train_samples} training "
                f"samples, got {n}"
            )

    # ---- the contract ---------------------------------------------------------------------
    def fit(self, X, y=None):
        """Learn the class from ``X`` (positives; with ``y`` also negatives) and calibrate."""
        X = check_matrix(X, what="training X")
        y = check_labels(y, X.shape[0], required=self.requires_negatives)
        n_pos = X.shape[0] if y is None else int((y == 1).sum())
        self._check_train_size(n_pos)
        self.n_features_in_ = X.shape[1]
        self._fit_model(X, y)
        self._calibrate_on_training_data(X, y)
        return self

    def score_samples(self, X) -> np.ndarray:
        """In-class score of each row of ``X``: higher = more like the learnt class."""
        check_is_fitted(self, "threshold_")
        X = check_matrix(X, n_features=self.n_features_in_)
        return np.asarray(self._score(X), dtype=np.float64).ravel()

    def decision_function(self, X) -> np.ndarray:
        """``score_samples(X) - threshold_``: >= 0 means predicted in-class."""
        return self.score_samples(X) - self.threshold_

    def predict(self, X) -> np.ndarray:
        """1 for predicted in-class, 0 otherwise."""
        return (self.decision_function(X) >= 0).astype(np.int64)

    def p_value(self, X) -> np.ndarray:
        """Conformal p-values of ``X`` against the calibration positives."""
        return cal.conformal_p_values(self.calibration_scores_, self.score_samples(X))

    def calibrate(self, X, y=None, *, target_tpr: float | None = None,
                  target_fpr: float | None = None):
        """Re-set the threshold (and p-values) from held-out data the detector did not see.

        Without ``y`` every row is a positive. With ``target_fpr`` the threshold comes from the
        negatives (``y == 0``); otherwise from the positives at ``target_tpr`` (default: the
        detector's ``target_tpr``).
        """
        scores = self.score_samples(X)
        if target_fpr is not None and (y is None or not np.any(np.asarray(y) == 0)):
            raise ValueError("a target FPR needs labels y with negatives (y == 0)")
        y = check_labels(y, scores.size, required=target_fpr is not None)
        pos = scores if y is None else scores[y == 1]
        neg = None if y is None else scores[y == 0]
        self._set_threshold(pos, neg, "held-out", target_tpr, target_fpr)
        return self

    def save(self, path: str | Path) -> Path:
        """Save the fitted detector to ``path`` (a folder); load it with :func:`oneclass.load`."""
        from oneclass.persist import save_detector

        return save_detector(self, path)

    # ---- calibration internals ------------------------------------------------------------
    def _set_threshold(self, pos, neg, how: str, target_tpr=None, target_fpr=None) -> None:
        self.calibration_scores_ = np.asarray(pos, dtype=np.float64)
        self.calibration_negative_scores_ = (
            np.asarray(neg, dtype=np.float64) if neg is not None and len(neg) else None
        )
        if target_fpr is not None:
            self.threshold_ = cal.threshold_for_fpr(self.calibration_negative_scores_, target_fpr)
            self.calibration_ = f"{how}, FPR={target_fpr:g}"
        else:
            tpr = self.target_tpr if target_tpr is None else target_tpr
            self.threshold_ = cal.threshold_for_tpr(self.calibration_scores_, tpr)
            self.calibration_ = f"{how}, TPR={tpr:g}"

    def _calibrate_on_training_data(self, X: np.ndarray, y: np.ndarray | None) -> None:
        folds = int(self.calibration_folds)
        if folds == 0:
            idx = np.arange(X.shape[0])
            if idx.size > self.max_calibration_scores:
                rng = np.random.default_rng(self.random_state)
                idx = np.sort(rng.choice(idx, self.max_calibration_scores, replace=False))
            scores = np.full(X.shape[0], np.nan)
            scores[idx] = self._score(X[idx])
            how = "in-sample"
        else:
            if folds < 2:
                raise ValueError(f"calibration_folds must be 0 or >= 2, got {folds}")

            def fit_score(train_idx, test_idx):
                fold = clone(self)
                fold.n_features_in_ = self.n_features_in_
                y_train = None if y is None else y[train_idx]
                n_pos = train_idx.size if y_train is None else int((y_train == 1).sum())
                fold._check_train_size(n_pos)
                fold._fit_model(X[train_idx], y_train)
                return fold._score(X[test_idx])

            scores = cal.crossfit_scores(fit_score, X.shape[0], folds, self.random_state, y,
                                         max_scored=self.max_calibration_scores)
            how = f"cross-fitted ({folds} folds)"
        scores = np.asarray(scores, dtype=np.float64)
        pos = scores if y is None else scores[y == 1]
        neg = None if y is None else scores[y == 0]
        pos = pos[~np.isnan(pos)]
        neg = None if neg is None else neg[~np.isnan(neg)]
        self._set_threshold(pos, neg, how)

    def _base_state(self) -> State:
        """The calibration part of the state, saved for every detector."""
        arrays = {"calibration_scores_": self.calibration_scores_}
        if self.calibration_negative_scores_ is not None:
            arrays["calibration_negative_scores_"] = self.calibration_negative_scores_
        meta = {"threshold_": self.threshold_, "calibration_": self.calibration_,
                "n_features_in_": self.n_features_in_}
        return State(meta=meta, arrays=arrays)

    def _set_base_state(self, state: State) -> None:
        self.threshold_ = float(state.meta["threshold_"])
        self.calibration_ = str(state.meta["calibration_"])
        self.n_features_in_ = int(state.meta["n_features_in_"])
        self.calibration_scores_ = state.arrays["calibration_scores_"]
        self.calibration_negative_scores_ = state.arrays.get("calibration_negative_scores_")


class BinaryBaseline(BaseDetector):
    """A supervised baseline under the same contract: ``fit(X, y)`` with y=1 in-class, 0 not."""

    requires_negatives = True
