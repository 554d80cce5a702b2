"""Mahalanobis detector: shrinkage covariances, n < d, MCD, agreement with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.covariance import OAS, LedoitWolf, MinCovDet
from sklearn.metrics import roc_auc_score

import oneclass
from oneclass.detect.mahalanobis import Mahalanobis


@pytest.fixture(scope="module")
def data(cifar10_0):
    X, y = cifar10_0
    pos = np.random.default_rng(4).permutation(np.flatnonzero(y == 1))
    X_test = np.vstack([X[pos[400:700]], X[y == 0]])
    y_test = np.r_[np.ones(300, dtype=int), np.zeros(int((y == 0).sum()), dtype=int)]
    return X[pos[:400]].astype(np.float64), X_test.astype(np.float64), y_test


@pytest.mark.parametrize("covariance, ref", [("ledoit-wolf", LedoitWolf), ("oas", OAS)])
def test_scores_equal_minus_squared_mahalanobis(data, covariance, ref):
    X_train, X_test = data[0][:, :128], data[1][:, :128]
    det = Mahalanobis(covariance=covariance, calibration_folds=0).fit(X_train)
    expected = -ref().fit(X_train).mahalanobis(X_test)
    np.testing.assert_allclose(det.score_samples(X_test), expected, rtol=1e-7)


def test_mcd_matches_scikit_learn_on_few_dimensions(data):
    X_train, X_test, _ = data
    X_train, X_test = X_train[:, :12], X_test[:, :12]
    det = Mahalanobis(covariance="mcd", random_state=0, calibration_folds=0).fit(X_train)
    expected = -MinCovDet(random_state=0).fit(X_train).mahalanobis(X_test)
    np.testing.assert_allclose(det.score_samples(X_test), expected, rtol=1e-6)


@pytest.mark.parametrize("covariance", ["ledoit-wolf", "oas"])
def test_fewer_samples_than_features(data, covariance):
    """10 samples in 128-d: the shrunk covariance is invertible and scores are meaningful."""
    X_train, X_test, _ = data
    det = Mahalanobis(covariance=covariance, calibration_folds=0).fit(X_train[:10, :128])
    assert np.all(np.linalg.eigvalsh(det.precision_) > 0)
    s = det.score_samples(X_test[:, :128])
    assert np.isfinite(s).all() and np.unique(s).size == s.size
    assert det.score_samples(det.location_[None, :])[0] == pytest.approx(0.0, abs=1e-9)
    assert s.max() < 0


def test_mcd_needs_more_samples_than_features(data):
    with pytest.raises(ValueError, match=r"more samples than features.*10 samples of 128"):
        Mahalanobis(covariance="mcd", calibration_folds=0).fit(data[0][:10, :128])


def test_separates_the_class_from_anomalies(data):
    X_train, X_test, y_test = data
    det = Mahalanobis(calibration_folds=0).fit(X_train)
    assert roc_auc_score(y_test, det.score_samples(X_test)) > 0.65


@pytest.mark.parametrize(
    "params, match",
    [
        ({"covariance": "empirical"}, "'covariance' parameter"),
        ({"support_fraction": 0.8}, "only to covariance='mcd'"),
    ],
)
def test_bad_parameters(data, params, match):
    with pytest.raises(ValueError, match=match):
        Mahalanobis(**params).fit(data[0][:40, :8])


def test_save_load_identical(data, tmp_path):
    X_train, X_test, _ = data
    det = oneclass.make_detector("mahalanobis:covariance=oas", calibration_folds=2).fit(X_train)
    loaded = oneclass.load(det.save(tmp_path / "maha"))
    assert np.array_equal(loaded.precision_, det.precision_)
    assert np.array_equal(loaded.score_samples(X_test), det.score_samples(X_test))
