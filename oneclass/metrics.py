"""Evaluation metrics for one-class detectors, with a bootstrap confidence interval for ROC-AUC.

Conventions (see :mod:`oneclass.detect.base`): labels ``1`` = in-class (positive), ``0`` = not
in-class (negative); scores are in-class scores, higher = more in-class. Average precision is
therefore the precision of *finding the class* (in-class is the positive class), not of finding
anomalies as in much of the anomaly-detection literature.

Operating points use the same threshold rules as :mod:`oneclass.calibrate`, so a reported
"TPR at FPR 1%" is what a detector calibrated on those negatives would achieve:

* ``tpr_at_fpr(f)``: the smallest threshold that accepts at most ``f`` of the negatives, and the
  fraction of positives it accepts (the highest TPR whose FPR does not exceed ``f``).
* ``fpr_at_tpr(t)``: the largest threshold that keeps at least ``t`` of the positives, and the
  fraction of negatives it lets through.

Bootstrap CI (``auc_lo``, ``auc_hi``): a *stratified* percentile bootstrap. Each resample draws
``n_pos`` positives from the positives and ``n_neg`` negatives from the negatives, with
replacement (so both class sizes stay fixed, as they are fixed by the test-set design), and the
CI is the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the resampled AUCs. It is
vectorised: every resample is two count vectors over the sorted distinct score values (one for
its positives, one for its negatives); a cumulative sum of the positive counts gives, at every
value, how many resampled positives lie at or below it, so each resample's AUC is a few array
operations (no loop over samples; ties count one half). 1000 resamples of 10,000 scores take a
fraction of a second.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from oneclass.calibrate import threshold_for_fpr, threshold_for_tpr

#: keys of :func:`evaluate`'s result, in the order a results table shows them
METRIC_KEYS = (
    "auc",
    "auc_lo",
    "auc_hi",
    "ap",
    "tpr_at_fpr1",
    "tpr_at_fpr5",
    "fpr_at_tpr95",
    "n_pos",
    "n_neg",
)

# resampled count matrices are built in chunks of at most this many cells (memory bound)
_CHUNK_CELLS = 1 << 20


def check_scored_labels(y, scores) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``(y, scores)``: binary labels with both classes, finite scores, same length."""
    y = np.asarray(y).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape[0] != s.shape[0]:
        raise ValueError(f"{y.shape[0]} labels for {s.shape[0]} scores")
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        raise ValueError(f"labels must be 1 (in-class) and 0 (not in-class), got {sorted(values)}")
    if values != {0, 1}:
        present = "in-class (1)" if values == {1} else "not-in-class (0)" if values else "no"
        raise ValueError(
            f"metrics need both in-class (label 1) and not-in-class (label 0) samples; "
            f"got only {present} labels ({y.shape[0]} samples)"
        )
    bad = ~np.isfinite(s)
    if bad.any():
        raise ValueError(f"scores contain {int(bad.sum())} non-finite value(s) (NaN or inf)")
    return y.astype(np.int64), s


def roc_auc(y, scores) -> float:
    """ROC-AUC of in-class scores (0.5 = chance, 1 = every positive above every negative)."""
    y, s = check_scored_labels(y, scores)
    return float(roc_auc_score(y, s))


def average_precision(y, scores) -> float:
    """Average precision with in-class (``y == 1``) as the positive class."""
    y, s = check_scored_labels(y, scores)
    return float(average_precision_score(y, s))


def tpr_at_fpr(y, scores, fpr: float) -> float:
    """Fraction of positives accepted by the smallest threshold with FPR <= ``fpr``."""
    y, s = check_scored_labels(y, scores)
    return float(np.mean(s[y == 1] >= threshold_for_fpr(s[y == 0], fpr)))


def fpr_at_tpr(y, scores, tpr: float) -> float:
    """Fraction of negatives accepted by the largest threshold with TPR >= ``tpr``."""
    y, s = check_scored_labels(y, scores)
    return float(np.mean(s[y == 0] >= threshold_for_tpr(s[y == 1], tpr)))


def bootstrap_auc(y, scores, n_boot: int = 1000, seed: int | None = 0) -> np.ndarray:
    """ROC-AUCs of ``n_boot`` stratified bootstrap resamples (method: see the module docstring)."""
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    y, s = check_scored_labels(y, scores)
    values, rank = np.unique(s, return_inverse=True)  # rank: position of each score's value
    rank_pos, rank_neg = rank[y == 1], rank[y == 0]
    n_pos, n_neg, n_val = rank_pos.size, rank_neg.size, values.size
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot, dtype=np.float64)
    chunk = max(1, _CHUNK_CELLS // max(n_val, n_pos, n_neg))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        offset = (n_val * np.arange(b))[:, None]

        def counts(ranks: np.ndarray, b: int = b, offset: np.ndarray = offset) -> np.ndarray:
            draws = ranks[rng.integers(0, ranks.size, size=(b, ranks.size))] + offset
            return np.bincount(draws.ravel(), minlength=b * n_val).reshape(b, n_val)

        c_pos, c_neg = counts(rank_pos), counts(rank_neg)
        # 2 x #(positive <= negative pairs, ties counted one half), per resample
        losses2 = (c_neg * (2 * np.cumsum(c_pos, axis=1) - c_pos)).sum(axis=1)
        out[start : start + b] = 1.0 - losses2 / (2.0 * n_pos * n_neg)
    return out


def auc_ci(
    y, scores, n_boot: int = 1000, seed: int | None = 0, level: float = 0.95
) -> tuple[float, float]:
    """Stratified percentile-bootstrap confidence interval of the ROC-AUC."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_boot < 1:
        raise ValueError(f"a confidence interval needs n_boot >= 1, got {n_boot}")
    aucs = bootstrap_auc(y, scores, n_boot=n_boot, seed=seed)
    lo, hi = np.quantile(aucs, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(lo), float(hi)


def evaluate(
    y, scores, n_boot: int = 1000, seed: int | None = 0, level: float = 0.95
) -> dict[str, float | int]:
    """All metrics as one flat dict (keys: :data:`METRIC_KEYS`); ``n_boot=0`` skips the CI (NaN).

    ``y``: 1 = in-class, 0 = not; ``scores``: higher = more in-class.
    """
    y, s = check_scored_labels(y, scores)
    lo, hi = auc_ci(y, s, n_boot, seed, level) if n_boot else (float("nan"), float("nan"))
    return {
        "auc": roc_auc(y, s),
        "auc_lo": lo,
        "auc_hi": hi,
        "ap": average_precision(y, s),
        "tpr_at_fpr1": tpr_at_fpr(y, s, 0.01),
        "tpr_at_fpr5": tpr_at_fpr(y, s, 0.05),
        "fpr_at_tpr95": fpr_at_tpr(y, s, 0.95),
        "n_pos": int((y == 1).sum()),
        "n_neg": int((y == 0).sum()),
    }
