"""Isolation Forest: the numpy traversal reproduces scikit-learn's scores; seeds; save/load."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

import oneclass
from oneclass.detect.iforest import IForest, average_path_length


@pytest.fixture(scope="module")
def data(cifar10_0):
    X, y = cifar10_0
    pos = np.random.default_rng(3).permutation(np.flatnonzero(y == 1))
    X_test = np.vstack([X[pos[600:900]], X[y == 0]])
    y_test = np.r_[np.ones(300, dtype=int), np.zeros(int((y == 0).sum()), dtype=int)]
    return X[pos[:600]].astype(np.float64), X_test.astype(np.float64), y_test


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"max_features": 0.25, "n_estimators": 40},
        {"bootstrap": True, "max_samples": 100, "n_estimators": 40},
        {"max_samples": 0.5, "n_estimators": 20},
    ],
)
def test_traversal_matches_scikit_learn(data, params):
    X_train, X_test, _ = data
    det = IForest(random_state=7, calibration_folds=0, **params).fit(X_train)
    ref = IsolationForest(random_state=7, **params).fit(X_train)
    np.testing.assert_allclose(
        det.score_samples(X_test), ref.score_samples(X_test), rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(
        det.score_samples(X_train[:50]), ref.score_samples(X_train[:50]), rtol=0, atol=1e-12
    )


def test_average_path_length():
    c = average_path_length(np.array([1, 2, 3, 256]))
    assert c[0] == 0 and c[1] == 1
    assert c[2] == pytest.approx(2 * (np.log(2) + np.euler_gamma) - 4 / 3)
    assert c[3] == pytest.approx(10.2448, abs=1e-3)


def test_random_state_is_honoured(data):
    X_train, X_test, _ = data

    def scores(seed):
        det = IForest(n_estimators=30, random_state=seed, calibration_folds=0)
        return det.fit(X_train).score_samples(X_test)

    assert np.array_equal(scores(1), scores(1))
    assert not np.array_equal(scores(1), scores(2))


def test_separates_the_class_from_anomalies(data):
    X_train, X_test, y_test = data
    det = IForest(random_state=0, calibration_folds=0).fit(X_train)
    assert roc_auc_score(y_test, det.score_samples(X_test)) > 0.62


def test_bad_parameters(data):
    with pytest.raises(ValueError, match="n_estimators"):
        IForest(n_estimators=0).fit(data[0][:50])
    with pytest.raises(ValueError, match="max_features"):
        IForest(max_features=2.5).fit(data[0][:50])


def test_save_load_identical(data, tmp_path):
    X_train, X_test, _ = data
    det = oneclass.make_detector("iforest:n_estimators=25,max_features=0.5", random_state=4).fit(
        X_train
    )
    loaded = oneclass.load(det.save(tmp_path / "forest"))
    assert np.array_equal(loaded.score_samples(X_test), det.score_samples(X_test))
