"""Thresholds and conformal p-values: exact rules on small arrays, guarantees on real data."""

from __future__ import annotations

import math

import numpy as np
import pytest

import oneclass
from oneclass import calibrate as cal

# ---- threshold rules, exactly -------------------------------------------------------------


@pytest.mark.parametrize(
    ("tpr", "expected"),
    [(1.0, 1.0), (0.95, 1.0), (0.8, 2.0), (0.6, 3.0), (0.5, 3.0), (0.2, 5.0), (0.01, 5.0)],
)
def test_threshold_for_tpr_keeps_at_least_the_target(tpr, expected):
    scores = np.array([5.0, 1.0, 4.0, 2.0, 3.0])  # unsorted on purpose
    thr = cal.threshold_for_tpr(scores, tpr)
    assert thr == expected
    assert np.mean(scores >= thr) >= tpr


def test_thresholds_have_no_floating_point_off_by_one():
    scores = np.arange(100.0)
    # 0.07 * 100 = 7.000000000000001: keep exactly 7, not 8
    assert cal.threshold_for_tpr(scores, 0.07) == 93.0
    assert np.sum(scores >= 93.0) == 7
    # 0.29 * 100 = 28.999999999999996: 29 negatives may be accepted, not 28
    assert np.sum(scores >= cal.threshold_for_fpr(scores, 0.29)) == 29


def test_threshold_for_tpr_with_ties_keeps_the_whole_tie():
    scores = np.array([1.0, 2.0, 2.0, 2.0, 3.0])
    thr = cal.threshold_for_tpr(scores, 0.4)  # 2 of 5 wanted; the tie at 2 keeps 4
    assert thr == 2.0 and np.mean(scores >= thr) == 0.8


def test_threshold_for_tpr_is_the_largest_such_threshold():
    rng = np.random.default_rng(0)
    s = rng.normal(size=997)
    for tpr in (0.5, 0.9, 0.95, 0.99):
        thr = cal.threshold_for_tpr(s, tpr)
        assert np.mean(s >= thr) == math.ceil(tpr * s.size) / s.size
        assert np.mean(s >= np.nextafter(thr, np.inf)) < tpr


@pytest.mark.parametrize(
    ("fpr", "accepted"), [(0.0, 0), (0.05, 0), (0.1, 1), (0.25, 2), (0.3, 3), (0.99, 9)]
)
def test_threshold_for_fpr_accepts_at_most_the_target(fpr, accepted):
    neg = np.arange(1.0, 11.0)[::-1]
    thr = cal.threshold_for_fpr(neg, fpr)
    assert int(np.sum(neg >= thr)) == accepted
    # the smallest such threshold: the next negative down would be accepted too
    below = np.sort(neg)[neg.size - accepted - 1]
    assert below < thr <= np.nextafter(below, np.inf)


def test_threshold_for_fpr_with_ties_stays_below_the_target():
    neg = np.array([1.0, 2.0, 2.0, 2.0, 3.0])
    thr = cal.threshold_for_fpr(neg, 0.4)  # accepting the tie at 2 would give FPR 0.8
    assert np.mean(neg >= thr) == 0.2


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: cal.threshold_for_tpr([1.0, 2.0], 0.0), "target TPR"),
        (lambda: cal.threshold_for_tpr([1.0, 2.0], 1.2), "target TPR"),
        (lambda: cal.threshold_for_tpr([], 0.9), "no positive"),
        (lambda: cal.threshold_for_fpr([1.0, 2.0], 1.0), "target FPR"),
        (lambda: cal.threshold_for_fpr([1.0, 2.0], -0.1), "target FPR"),
        (lambda: cal.threshold_for_fpr([], 0.05), "needs negatives"),
        (lambda: cal.conformal_p_values([], [1.0]), "no calibration scores"),
    ],
)
def test_threshold_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---- conformal p-values, exactly ----------------------------------------------------------


def test_conformal_p_values_by_hand():
    calib = np.array([3.0, 1.0, 2.0])
    p = cal.conformal_p_values(calib, [0.0, 1.0, 2.0, 2.5, 9.0])
    # (1 + #{calibration <= score}) / (3 + 1)
    assert np.allclose(p, [0.25, 0.5, 0.75, 0.75, 1.0])


def test_rejection_rates_by_hand():
    p = np.array([0.01, 0.04, 0.05, 0.2, 0.5])
    assert cal.rejection_rates(p, (0.01, 0.05, 0.1)) == {0.01: 0.2, 0.05: 0.6, 0.1: 0.6}


def test_crossfit_scores_scores_each_sample_once_with_a_model_that_did_not_see_it():
    seen = []

    def fit_score(train_idx, test_idx):
        assert not set(train_idx) & set(test_idx)
        seen.append((train_idx, test_idx))
        return test_idx * 10.0

    out = cal.crossfit_scores(fit_score, 23, 5, random_state=0)
    assert len(seen) == 5
    assert np.array_equal(np.sort(np.concatenate([t for _, t in seen])), np.arange(23))
    assert np.array_equal(out, np.arange(23) * 10.0)


def test_crossfit_scores_stratifies_when_labels_are_given():
    y = np.r_[np.ones(20, dtype=int), np.zeros(6, dtype=int)]
    folds = []
    cal.crossfit_scores(lambda tr, te: folds.append((tr, te)) or np.zeros(te.size), 26, 5, 0, y)
    assert len(folds) == 5
    for train_idx, _ in folds:
        assert set(y[train_idx]) == {0, 1}, "every training fold holds both classes"
    with pytest.raises(ValueError, match="at least 2"):
        cal.crossfit_scores(lambda tr, te: np.zeros(te.size), 1, 5, 0)


# ---- guarantees on real data (ADBench CIFAR10_0) -------------------------------------------

ALPHAS = (0.05, 0.1)


def within_sampling_error(rate: float, alpha: float, n_test: int, n_cal: int) -> bool:
    """|rate - alpha| <= 3 standard errors (test draws and the calibration quantile both vary)."""
    se = math.sqrt(alpha * (1 - alpha) * (1 / n_test + 1 / n_cal))
    return abs(rate - alpha) <= 3 * se + 1 / (n_cal + 1)


@pytest.fixture(scope="module")
def cifar(cifar10_0):
    """Shuffled CIFAR10_0 normals and anomalies (y = 1 in-class)."""
    X, y = cifar10_0
    rng = np.random.default_rng(0)
    return X[rng.permutation(np.flatnonzero(y == 1))], X[rng.permutation(np.flatnonzero(y == 0))]


def test_cross_fitted_p_values_hold_their_level_on_held_out_positives(cifar):
    pos, neg = cifar
    det = oneclass.make_detector("knn", random_state=0).fit(pos[:2000])
    assert det.calibration_.startswith("cross-fitted")
    held_out = pos[2000:]
    rates = cal.rejection_rates(det.p_value(held_out), ALPHAS)
    for alpha, rate in rates.items():
        assert within_sampling_error(rate, alpha, held_out.shape[0], 2000), (alpha, rate)
    # and they have power: most anomalies are rejected far more often than alpha
    assert cal.rejection_rates(det.p_value(neg), ALPHAS)[0.1] > 0.3


def test_split_conformal_after_calibrate_on_held_out_positives(cifar):
    pos, _ = cifar
    det = oneclass.make_detector("knn", calibration_folds=0, random_state=0).fit(pos[:2000])
    assert det.calibration_.startswith("in-sample")
    test = pos[3000:]
    # in-sample p-values are optimistic: a training vector is its own nearest neighbour
    in_sample_rate = cal.rejection_rates(det.p_value(test), [0.1])[0.1]
    assert in_sample_rate > 0.2
    det.calibrate(pos[2000:3000])
    assert det.calibration_ == f"held-out, TPR={det.target_tpr:g}"
    assert np.array_equal(det.calibration_scores_, det.score_samples(pos[2000:3000]))
    assert det.threshold_ == cal.threshold_for_tpr(det.calibration_scores_, det.target_tpr)
    for alpha, rate in cal.rejection_rates(det.p_value(test), ALPHAS).items():
        assert within_sampling_error(rate, alpha, test.shape[0], 1000), (alpha, rate)
    kept = det.predict(test).mean()
    assert within_sampling_error(1 - kept, 1 - det.target_tpr, test.shape[0], 1000)


def test_calibration_without_any_negatives(cifar):
    pos, _ = cifar
    det = oneclass.make_detector("knn", random_state=0).fit(pos[:300])
    assert det.calibration_negative_scores_ is None
    det.calibrate(pos[300:600])  # no y at all: every row is a positive
    assert det.calibration_negative_scores_ is None
    det.calibrate(pos[300:600], np.ones(300, dtype=int), target_tpr=0.9)
    assert det.calibration_ == "held-out, TPR=0.9"
    assert np.mean(det.score_samples(pos[300:600]) >= det.threshold_) == pytest.approx(0.9)
    assert det.p_value(pos[600:700]).shape == (100,)
    with pytest.raises(ValueError, match="needs labels"):
        det.calibrate(pos[300:600], target_fpr=0.05)
    with pytest.raises(ValueError, match="negatives"):
        det.calibrate(pos[300:600], np.ones(300, dtype=int), target_fpr=0.05)


def test_target_fpr_threshold_from_held_out_negatives(cifar):
    pos, neg = cifar
    det = oneclass.make_detector("knn", random_state=0).fit(pos[:2000])
    cal_neg, test_neg = neg[:131], neg[131:]
    X = np.vstack([pos[2000:2500], cal_neg])
    y = np.r_[np.ones(500, dtype=int), np.zeros(len(cal_neg), dtype=int)]
    det.calibrate(X, y, target_fpr=0.05)
    assert det.calibration_ == "held-out, FPR=0.05"
    cal_scores = det.score_samples(cal_neg)
    assert np.array_equal(det.calibration_negative_scores_, cal_scores)
    assert det.threshold_ == cal.threshold_for_fpr(cal_scores, 0.05)
    assert np.mean(cal_scores >= det.threshold_) <= 0.05
    # the p-values stay those of the held-out positives
    assert np.array_equal(det.calibration_scores_, det.score_samples(pos[2000:2500]))
    fpr = det.predict(test_neg).mean()
    assert within_sampling_error(fpr, 0.05, len(test_neg), len(cal_neg)), fpr
    # the positives pay for the low FPR: TPR drops well below the default 0.95
    assert det.predict(pos[2500:]).mean() < 0.9
