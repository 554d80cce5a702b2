"""Calibration on large training sets scores a bounded, seeded subset."""

from __future__ import annotations

import numpy as np

import oneclass
from oneclass.detect.base import BaseDetector


def test_calibration_on_many_samples_scores_a_capped_subset(cifar10_0):
    """Calibration cost is bounded: beyond the cap, a seeded subset of positives is scored."""

    X = np.asarray(cifar10_0[0][cifar10_0[1] == 1][:3000])
    old = BaseDetector.max_calibration_scores
    BaseDetector.max_calibration_scores = 500
    try:
        det = oneclass.make_detector("mahalanobis", random_state=0, calibration_folds=5).fit(X)
        insample = oneclass.make_detector("mahalanobis", random_state=0, calibration_folds=0).fit(X)
    finally:
        BaseDetector.max_calibration_scores = old
    assert det.calibration_scores_.size == 500 and insample.calibration_scores_.size == 500
    assert np.isfinite(det.calibration_scores_).all()
    kept = np.mean(det.score_samples(X[:1000]) >= det.threshold_)
    assert 0.9 < kept <= 1.0
