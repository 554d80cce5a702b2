"""One-class SVM: numpy scoring equals libsvm's, gamma choices, parameter checks, save/load."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.svm import OneClassSVM

import oneclass
from oneclass.detect import ocsvm
from oneclass.detect.ocsvm import OCSVM, resolve_gamma


@pytest.fixture(scope="module")
def data(cifar10_0):
    X, y = cifar10_0
    pos = np.random.default_rng(2).permutation(np.flatnonzero(y == 1))
    X_test = np.vstack([X[pos[300:600]], X[y == 0]])
    y_test = np.r_[np.ones(300, dtype=int), np.zeros(int((y == 0).sum()), dtype=int)]
    return X[pos[:300]].astype(np.float64), X_test.astype(np.float64), y_test


@pytest.mark.parametrize("precompute", [True, False])
def test_scores_equal_libsvm_decision_function(data, monkeypatch, precompute):
    """Both fitting paths (BLAS Gram matrix, libsvm's own kernel) give libsvm's model."""
    if not precompute:
        monkeypatch.setattr(ocsvm, "PRECOMPUTE_BYTES", 0)
    X_train, X_test, _ = data
    det = OCSVM(nu=0.2, calibration_folds=0).fit(X_train)
    ref = OneClassSVM(nu=0.2, gamma=det.gamma_).fit(X_train)
    total = ref.dual_coef_.sum()
    assert total == pytest.approx(0.2 * len(X_train))  # libsvm: sum of dual coefs = nu * n
    np.testing.assert_allclose(
        det.score_samples(X_test) * total, ref.decision_function(X_test), rtol=1e-6, atol=1e-6
    )
    assert det.support_vectors_.shape[0] == ref.support_vectors_.shape[0]


def test_scores_share_one_scale_across_training_sizes(data):
    """Cross-fitted calibration compares fold models (fewer samples) with the final model."""
    X_train, X_test, _ = data

    def spread(s):
        return np.subtract(*np.percentile(s, [95, 5]))

    small = OCSVM(calibration_folds=0).fit(X_train[:150]).score_samples(X_test)
    full = OCSVM(calibration_folds=0).fit(X_train).score_samples(X_test)
    assert 0.75 < spread(small) / spread(full) < 1.33  # libsvm's raw values: about 0.5
    det = OCSVM(random_state=0).fit(X_train)  # cross-fitted threshold keeps ~95% of new positives
    assert 0.9 < det.predict(X_test[:300]).mean() <= 1.0


def test_gamma_choices(data):
    X = data[0]
    assert resolve_gamma("auto", X) == pytest.approx(1 / 512)
    assert resolve_gamma("scale", X) == pytest.approx(1 / (512 * X.var()))
    d2 = euclidean_distances(X, squared=True)[np.triu_indices(len(X), 1)]
    assert resolve_gamma("median", X) == pytest.approx(1 / np.median(d2))
    assert resolve_gamma(0.25, X) == 0.25
    # for unit-norm embeddings "scale" is about 1 (kernel width ~ their typical distance)
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    assert 0.3 < resolve_gamma("scale", U) < 3


def test_separates_the_class_from_anomalies(data):
    X_train, X_test, y_test = data
    det = OCSVM(calibration_folds=0).fit(X_train)
    assert roc_auc_score(y_test, det.score_samples(X_test)) > 0.65


@pytest.mark.parametrize(
    "params, match",
    [
        ({"nu": 0.0}, "'nu' parameter"),
        ({"nu": 1.5}, "'nu' parameter"),
        ({"gamma": "wide"}, "'gamma' parameter"),
        ({"gamma": -1.0}, "'gamma' parameter"),
        ({"tol": 0}, "'tol' parameter"),
    ],
)
def test_bad_parameters(data, params, match):
    with pytest.raises(ValueError, match=match):
        OCSVM(**params).fit(data[0][:40])


def test_save_load_identical_with_user_gamma(data, tmp_path):
    X_train, X_test, _ = data
    det = oneclass.make_detector("ocsvm:gamma=0.01,nu=0.1", random_state=0).fit(X_train)
    loaded = oneclass.load(det.save(tmp_path / "svm"))
    assert loaded.gamma_ == det.gamma_ == 0.01
    assert np.array_equal(loaded.score_samples(X_test), det.score_samples(X_test))
