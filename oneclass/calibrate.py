"""Honest thresholds and conformal p-values from scores the detector did not train on.

Scores follow the oneclass convention (see :mod:`oneclass.detect.base`): higher = more in-class.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold


def threshold_for_tpr(positive_scores: np.ndarray, tpr: float) -> float:
    """Largest threshold that keeps at least ``tpr`` of ``positive_scores`` (score >= threshold)."""
    if not 0.0 < tpr <= 1.0:
        raise ValueError(f"target TPR must be in (0, 1], got {tpr}")
    s = np.sort(np.asarray(positive_scores, dtype=np.float64))
    if s.size == 0:
        raise ValueError("no positive calibration scores to set a threshold from")
    keep = math.ceil(tpr * s.size - 1e-9)
    return float(s[s.size - keep])


def threshold_for_fpr(negative_scores: np.ndarray, fpr: float) -> float:
    """Smallest threshold that accepts at most ``fpr`` of ``negative_scores``."""
    if not 0.0 <= fpr < 1.0:
        raise ValueError(f"target FPR must be in [0, 1), got {fpr}")
    s = np.sort(np.asarray(negative_scores, dtype=np.float64))
    if s.size == 0:
        raise ValueError("no negative calibration scores: a target FPR needs negatives")
    allowed = math.floor(fpr * s.size + 1e-9)
    return float(np.nextafter(s[s.size - allowed - 1], np.inf))


def conformal_p_values(calibration_scores: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Split-conformal p-values: ``(1 + #{calibration <= score}) / (n + 1)``.

    For an exchangeable in-class sample, ``P(p <= alpha) <= alpha``: a small p-value says the
    sample scores lower than nearly all calibration positives.
    """
    cal = np.sort(np.asarray(calibration_scores, dtype=np.float64))
    if cal.size == 0:
        raise ValueError("no calibration scores: fit the detector first")
    below = np.searchsorted(cal, np.asarray(scores, dtype=np.float64), side="right")
    return (1.0 + below) / (cal.size + 1.0)


def rejection_rates(p_values: np.ndarray, alphas=(0.01, 0.05, 0.1)) -> dict[float, float]:
    """Achieved ``P(p <= alpha)`` per alpha (for in-class samples: the false-rejection rate)."""
    p = np.asarray(p_values, dtype=np.float64)
    return {float(a): float(np.mean(p <= a)) for a in alphas}


def crossfit_scores(
    fit_score: Callable[[np.ndarray, np.ndarray], np.ndarray],
    n_samples: int,
    n_folds: int,
    random_state: int | None,
    y: np.ndarray | None = None,
    max_scored: int | None = None,
) -> np.ndarray:
    """Out-of-fold scores: each sample is scored by a model fitted without it.

    ``fit_score(train_idx, test_idx)`` fits on ``train_idx`` and returns scores of ``test_idx``.
    Folds are stratified when labels are given. With ``max_scored``, each fold scores a seeded
    random subset of its held-out samples (about ``max_scored`` in all) and the rest are NaN:
    calibration on 100k+ vectors then costs a fixed number of scores, not ``n`` of them.
    """
    if n_samples < 2:
        raise ValueError("cross-fitted calibration needs at least 2 training samples")
    if y is not None and np.bincount(y, minlength=2).min() >= 2:
        folds = min(n_folds, int(np.bincount(y, minlength=2).min()))
        splitter = StratifiedKFold(folds, shuffle=True, random_state=random_state)
        splits = splitter.split(np.zeros(n_samples), y)
    else:
        splitter = KFold(min(n_folds, n_samples), shuffle=True, random_state=random_state)
        splits = splitter.split(np.zeros(n_samples))
    out = np.full(n_samples, np.nan)
    rng = np.random.default_rng(random_state)
    per_fold = None if max_scored is None else -(-max_scored // splitter.get_n_splits())
    for train_idx, test_idx in splits:
        if per_fold is not None and test_idx.size > per_fold:
            test_idx = np.sort(rng.choice(test_idx, per_fold, replace=False))
        out[test_idx] = fit_score(train_idx, test_idx)
    return out
