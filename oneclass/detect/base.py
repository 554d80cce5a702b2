"""The detector contract. This is the one place where oneclass's score convention is defined.

Score convention
----------------
``score_samples(X)`` returns the **in-class score**: higher means "more like the class the
detector learnt". Every detector, every wrapper (PyOD's outlier scores are negated), every
pipeline, metric and report in oneclass uses this direction, and nothing flips it.

Labels: ``y == 1`` marks an in-class (positive) row, any other value (0, -1, False, another
class) a row that is not in the class. One-class detectors learn **only from the in-class rows**;
negatives, when given, never train the model: they are scored by it and kept for a threshold at
a target FPR. Binary baselines (``requires_negatives``) learn from both.

* ``fit(X, y=None)`` learns the class, then sets an out-of-sample threshold: cross-fitted scores
  of the training positives (``calibration_folds`` folds; ``0`` = in-sample scores, optimistic)
  give ``threshold_`` so that ``target_tpr`` of the class is kept, or, with ``contamination``
  set (PyOD's rule), so that that fraction of the training rows is flagged.
* ``decision_function(X) = score_samples(X) - threshold_``; ``predict(X)`` is 1 (in-class) where
  it is >= 0, else 0. scikit-learn's ``roc_auc`` scorer with ``y == 1`` in-class uses it as is.
* ``p_value(X)``: conformal p-values against the calibration scores.
* ``calibrate(X, y)`` / :meth:`BaseDetector.set_threshold` re-set the threshold from held-out
  scores; ``calibration_info_`` says how (method, folds, target, value), ``calibration_`` is
  the same as one display string.
* ``get_state()`` / ``set_state(state)``: everything fitted, as JSON + arrays + tensors;
  ``save(path)`` / :func:`oneclass.load` write and read it, never pickle.

PyOD conventions (their direction, kept apart from ours): ``decision_scores_`` are the training
rows' **outlier** scores (higher = more outlying, i.e. minus our out-of-sample training
scores), ``labels_`` flags training rows with **1 = outlier** (PyOD's meaning, the opposite of
our ``predict``), and ``fit_predict(X)`` returns our ``predict`` convention (1 = in-class), i.e.
``1 - labels_``. Training rows left unscored by the calibration cap
(``max_calibration_scores``) have NaN in ``decision_scores_`` and label 0.

A detector implements ``_fit_model``, ``_score``, ``_get_state`` and ``_set_state`` (protected
hooks, called only from here) and declares ``_parameter_constraints``; its ``__init__`` only
stores parameters, and everything learnt ends in ``_``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils._param_validation import Interval, Options, validate_parameter_constraints
from sklearn.utils.validation import check_is_fitted

from oneclass import calibrate as cal
from oneclass.detect.state import State, calibration_fields, split_state
from oneclass.detect.validation import check_finite_fields, check_labels, check_matrix

__all__ = ["BaseDetector", "BinaryBaseline", "State"]

#: the threshold rules ``calibration_info_["target"]`` names
TARGETS = ("tpr", "fpr")


class BaseDetector(BaseEstimator, ABC):
    """Base class of every detector; subclasses implement the four protected hooks."""

    #: registry name, set by each subclass
    name: ClassVar[str] = ""
    #: binary baselines need negatives at fit time
    requires_negatives: ClassVar[bool] = False
    #: smallest training set the model itself accepts
    min_train_samples: ClassVar[int] = 2
    #: most training samples scored for calibration (a seeded subset beyond that)
    max_calibration_scores: ClassVar[int] = 20_000
    #: saved arrays of the model state that may hold +-inf (never NaN)
    infinite_arrays: ClassVar[frozenset[str]] = frozenset()
    #: parameters and their constraints (scikit-learn's ``_param_validation`` style)
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "target_tpr": [Interval(Real, 0, 1, closed="right")],
        "calibration_folds": [Options(Integral, {0}), Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
        "contamination": [None, Interval(Real, 0, 0.5, closed="neither")],
    }

    # ---- hooks for subclasses -------------------------------------------------------------
    @abstractmethod
    def _fit_model(self, X: np.ndarray, y: np.ndarray | None) -> None:
        """Learn from validated ``X`` (and ``y`` for binary baselines); set fitted attributes."""

    @abstractmethod
    def _score(self, X: np.ndarray) -> np.ndarray:
        """In-class scores of validated ``X`` (higher = more in-class)."""

    @abstractmethod
    def _get_state(self) -> State:
        """The model part of the state: everything ``_score`` needs."""

    @abstractmethod
    def _set_state(self, state: State) -> None:
        """Restore what ``_get_state`` returned (already checked for NaN/inf)."""

    def _check_train_size(self, n: int) -> None:
        """Raise ``ValueError`` when ``n`` samples are too few for this model."""
        if n < self.min_train_samples:
            raise ValueError(
                f"{type(self).__name__} needs at least {self.min_train_samples} training "
                f"samples, got n_samples={n}"
            )

    def validate_params(self) -> None:
        """Check the parameters against ``_parameter_constraints`` without fitting (so a bad
        value fails before any image is embedded).

        Raises:
            ValueError: a parameter has a value its constraint refuses (named in the message).
        """
        validate_parameter_constraints(
            self._parameter_constraints,
            self.get_params(deep=False),
            caller_name=type(self).__name__,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = self.requires_negatives
        tags.non_deterministic = getattr(self, "random_state", 0) is None
        return tags

    # ---- the contract ---------------------------------------------------------------------
    def fit(self, X, y=None):
        """Learn the class from the in-class rows of ``X`` and set the threshold.

        Args:
            X: training vectors, ``(n_samples, n_features)``.
            y: optional labels, 1 = in-class. One-class detectors learn only from the rows
                with ``y == 1``; the other rows are scored and kept as negative calibration
                scores. Binary baselines need both.

        Returns:
            ``self``, fitted.
        """
        X = check_matrix(X, what="training X")
        y = check_labels(y, X.shape[0], required=self.requires_negatives)
        self.validate_params()
        if self.requires_negatives or y is None:
            X_fit, y_fit, X_neg = X, y, None
        else:
            X_fit, y_fit = X[y == 1], None
            X_neg = X[y == 0] if (y == 0).any() else None
        n_pos = X_fit.shape[0] if y_fit is None else int((y_fit == 1).sum())
        self._check_train_size(n_pos)
        self.n_features_in_ = X.shape[1]
        self._fit_model(X_fit, y_fit)
        scores, how, folds = self._training_scores(X_fit, y_fit)
        if X_neg is None:
            per_row = scores
        else:  # negatives never trained the model: its scores of them are out-of-sample
            per_row = np.empty(X.shape[0])
            per_row[y == 1] = scores
            per_row[y == 0] = self._score(X_neg)
        labels = y if y is not None else np.ones(X.shape[0], dtype=np.int64)
        pos, neg = per_row[labels == 1], per_row[labels == 0]
        self.set_threshold(
            pos[~np.isnan(pos)], neg[~np.isnan(neg)] if neg.size else None, how=how, folds=folds
        )
        self.decision_scores_ = -per_row
        self.labels_ = (per_row < self.threshold_).astype(np.int64)
        return self

    def fit_predict(self, X, y=None) -> np.ndarray:
        """Fit, then predict the training rows from their out-of-sample scores.

        Returns:
            1 for training rows predicted in-class, 0 otherwise (our ``predict`` convention;
            PyOD's ``labels_``, 1 = outlier, is ``1 -`` this).
        """
        return 1 - self.fit(X, y).labels_

    def score_samples(self, X) -> np.ndarray:
        """In-class score of each row of ``X``.

        Returns:
            A float array, higher = more like the learnt class.
        """
        check_is_fitted(self, "threshold_")
        X = check_matrix(X, n_features=self.n_features_in_, owner=type(self).__name__)
        return np.asarray(self._score(X), dtype=np.float64).ravel()

    def decision_function(self, X) -> np.ndarray:
        """Returns ``score_samples(X) - threshold_``: >= 0 means predicted in-class."""
        return self.score_samples(X) - self.threshold_

    def predict(self, X) -> np.ndarray:
        """Returns 1 for predicted in-class rows, 0 otherwise."""
        return (self.decision_function(X) >= 0).astype(np.int64)

    def p_value(self, X) -> np.ndarray:
        """Returns conformal p-values of ``X`` against the calibration positives."""
        return cal.conformal_p_values(self.calibration_scores_, self.score_samples(X))

    def calibrate(
        self, X, y=None, *, target_tpr: float | None = None, target_fpr: float | None = None
    ):
        """Re-set the threshold (and p-values) from held-out data the detector did not see.

        Without ``y`` every row is a positive. With ``target_fpr`` the threshold comes from the
        negatives (``y != 1``); otherwise from the positives at ``target_tpr`` (default: the
        detector's rule, ``target_tpr`` or ``1 - contamination``).

        Returns:
            ``self``.
        """
        scores = self.score_samples(X)
        if target_fpr is not None and (y is None or not np.any(np.asarray(y) != 1)):
            raise ValueError("a target FPR needs labels y with negatives (y == 0)")
        y = check_labels(y, scores.size, required=target_fpr is not None)
        pos = scores if y is None else scores[y == 1]
        neg = None if y is None else scores[y == 0]
        self.set_threshold(pos, neg, how="held-out", target_tpr=target_tpr, target_fpr=target_fpr)
        return self

    def save(self, path: str | Path) -> Path:
        """Save the fitted detector to ``path`` (a folder); load it with :func:`oneclass.load`.

        Returns:
            The model folder.
        """
        from oneclass.detect.saving import save_detector

        return save_detector(self, path)

    # ---- threshold ------------------------------------------------------------------------
    def default_tpr(self) -> float:
        """Returns the TPR of the detector's own rule: ``1 - contamination`` or ``target_tpr``."""
        contamination = getattr(self, "contamination", None)
        return float(self.target_tpr if contamination is None else 1.0 - contamination)

    def set_threshold(
        self,
        positive_scores,
        negative_scores=None,
        *,
        how: str,
        target_tpr: float | None = None,
        target_fpr: float | None = None,
        folds: int | None = None,
    ) -> None:
        """Set ``threshold_`` and the calibration scores from scores the model did not fit.

        Args:
            positive_scores: in-class scores of positives (also the p-value reference).
            negative_scores: scores of negatives, or None.
            how: how the scores were obtained: ``"cross-fitted"``, ``"in-sample"``,
                ``"held-out"``, ...
            target_tpr: keep this fraction of positives (default :meth:`default_tpr`).
            target_fpr: instead, accept at most this fraction of negatives.
            folds: the number of cross-fitting folds, if any.
        """
        pos = np.asarray(positive_scores, dtype=np.float64).ravel()
        neg = (
            None
            if negative_scores is None
            else np.asarray(negative_scores, dtype=np.float64).ravel()
        )
        for field, arr in (("positive_scores", pos), ("negative_scores", neg)):
            if arr is not None and not np.isfinite(arr).all():
                raise ValueError(f"{field} contain NaN or infinity")
        if target_fpr is not None:
            threshold = cal.threshold_for_fpr(neg if neg is not None else np.empty(0), target_fpr)
            target, value = "fpr", float(target_fpr)
        else:
            value = self.default_tpr() if target_tpr is None else float(target_tpr)
            threshold = cal.threshold_for_tpr(pos, value)
            target = "tpr"
        contamination = getattr(self, "contamination", None)
        rule = (
            f"contamination={contamination:g}"
            if (target_tpr is None and target_fpr is None and contamination is not None)
            else f"{target.upper()}={value:g}"
        )
        self.threshold_ = threshold
        self.calibration_scores_ = pos
        self.calibration_negative_scores_ = neg if neg is not None and neg.size else None
        self.calibration_info_ = {
            "method": str(how),
            "folds": folds,
            "target": target,
            "value": value,
        }
        label = f"{how} ({folds} folds)" if folds else str(how)
        self.calibration_ = f"{label}, {rule}"

    def _training_scores(
        self, X: np.ndarray, y: np.ndarray | None
    ) -> tuple[np.ndarray, str, int | None]:
        """Out-of-sample scores of the training rows (NaN beyond the calibration cap).

        Returns:
            ``(scores per row, method, folds)``.
        """
        folds = int(self.calibration_folds)
        if folds == 0:
            idx = np.arange(X.shape[0])
            if idx.size > self.max_calibration_scores:
                rng = np.random.default_rng(self.random_state)
                idx = np.sort(rng.choice(idx, self.max_calibration_scores, replace=False))
            scores = np.full(X.shape[0], np.nan)
            scores[idx] = self._score(X[idx])
            return scores, "in-sample", None
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

        scores = cal.crossfit_scores(
            fit_score,
            X.shape[0],
            folds,
            self.random_state,
            y,
            max_scored=self.max_calibration_scores,
        )
        return np.asarray(scores, dtype=np.float64), "cross-fitted", folds

    # ---- state ----------------------------------------------------------------------------
    def get_state(self) -> State:
        """Everything fitted: the model's state and the calibration.

        Returns:
            A :class:`State`: ``meta = {"model": {...}, "calibration": {...}}`` (JSON),
            arrays ``"model/<name>"`` and ``"calibration/<name>"``, tensors ``"model/<name>"``.
        """
        check_is_fitted(self, "threshold_")
        own = self._get_state()
        arrays = {"calibration/calibration_scores_": self.calibration_scores_}
        if self.calibration_negative_scores_ is not None:
            arrays["calibration/calibration_negative_scores_"] = self.calibration_negative_scores_
        calibration = {
            "threshold_": float(self.threshold_),
            "calibration_": self.calibration_,
            "calibration_info_": dict(self.calibration_info_),
            "n_features_in_": int(self.n_features_in_),
        }
        arrays.update({f"model/{k}": v for k, v in own.arrays.items()})
        return State(
            meta={"model": own.meta, "calibration": calibration},
            arrays=arrays,
            tensors={f"model/{k}": v for k, v in own.tensors.items()},
        )

    def set_state(self, state: State) -> None:
        """Restore what :meth:`get_state` returned, refusing NaN/inf and malformed fields.

        Raises:
            ValueError: naming the field that is missing, not finite or of the wrong shape.
        """
        model, calibration = split_state(state)
        check_finite_fields(model.meta, "model")
        check_finite_fields({**model.arrays, **model.tensors}, "model", self.infinite_arrays)
        self._restore_calibration(calibration)
        self._set_state(model)

    def _restore_calibration(self, calibration: State) -> None:
        for key, value in calibration_fields(calibration).items():
            setattr(self, key, value)


class BinaryBaseline(BaseDetector):
    """A supervised baseline under the same contract: ``fit(X, y)`` with y=1 in-class, 0 not."""

    requires_negatives = True
