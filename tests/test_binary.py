"""Binary baselines: numpy scoring equals scikit-learn's, standardisation, seeds, save/load.

(That they need both classes is checked for all three in the contract suite.)
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import oneclass
from oneclass.detect.binary import LogisticBaseline, MLPBaseline, SVMBaseline


@pytest.fixture(scope="module")
def data(cifar10_0):
    """200 positives + 100 negatives to train; 300 positives + the other 163 negatives to test."""
    X, y = cifar10_0
    rng = np.random.default_rng(6)
    pos = rng.permutation(np.flatnonzero(y == 1))
    neg = rng.permutation(np.flatnonzero(y == 0))
    X_train = np.vstack([X[pos[:200]], X[neg[:100]]]).astype(np.float64)
    y_train = np.r_[np.ones(200, dtype=int), np.zeros(100, dtype=int)]
    X_test = np.vstack([X[pos[200:500]], X[neg[100:]]]).astype(np.float64)
    y_test = np.r_[np.ones(300, dtype=int), np.zeros(len(neg) - 100, dtype=int)]
    return X_train, y_train, X_test, y_test


def test_logistic_score_is_the_logit(data):
    X_train, y_train, X_test, _ = data
    det = LogisticBaseline(calibration_folds=0).fit(X_train, y_train)
    scaler = StandardScaler().fit(X_train)
    ref = LogisticRegression(class_weight="balanced", max_iter=1000).fit(
        scaler.transform(X_train), y_train
    )
    np.testing.assert_allclose(
        det.score_samples(X_test), ref.decision_function(scaler.transform(X_test)), rtol=1e-6
    )


def test_svm_score_is_the_decision_value(data):
    X_train, y_train, X_test, _ = data
    det = SVMBaseline(C=2.0, calibration_folds=0).fit(X_train, y_train)
    scaler = StandardScaler().fit(X_train)
    assert det.gamma_ == pytest.approx(1 / (512 * scaler.transform(X_train).var()))  # "scale"
    ref = SVC(C=2.0, gamma=det.gamma_, class_weight="balanced").fit(
        scaler.transform(X_train), y_train
    )
    np.testing.assert_allclose(
        det.score_samples(X_test),
        ref.decision_function(scaler.transform(X_test)),
        rtol=1e-6,
        atol=1e-6,
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_mlp_score_is_the_output_logit(data):
    X_train, y_train, X_test, _ = data
    det = MLPBaseline(
        hidden_layer_sizes=(16, 8), max_iter=20, random_state=0, calibration_folds=0
    ).fit(X_train, y_train)
    scaler = StandardScaler().fit(X_train)
    ref = MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=20, random_state=0).fit(
        scaler.transform(X_train), y_train
    )
    p = ref.predict_proba(scaler.transform(X_test))[:, 1]
    np.testing.assert_allclose(1 / (1 + np.exp(-det.score_samples(X_test))), p, rtol=1e-6)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_mlp_random_state_is_honoured(data):
    X_train, y_train, X_test, _ = data

    def scores(seed):
        det = MLPBaseline(hidden_layer_sizes=8, max_iter=20, random_state=seed, calibration_folds=0)
        return det.fit(X_train, y_train).score_samples(X_test)

    assert np.array_equal(scores(1), scores(1))
    assert not np.allclose(scores(1), scores(2))


@pytest.mark.parametrize("name", ["logistic", "svm"])
def test_negatives_help(data, name):
    """Real behaviour: with 100 negatives, held-out airplanes rank well above other classes."""
    X_train, y_train, X_test, y_test = data
    det = oneclass.make_detector(name, calibration_folds=0).fit(X_train, y_train)
    assert roc_auc_score(y_test, det.score_samples(X_test)) > 0.78


def test_standardize_off_uses_raw_inputs(data):
    X_train, y_train, X_test, _ = data
    X_train, X_test = X_train[:, :64], X_test[:, :64]
    det = LogisticBaseline(standardize=False, calibration_folds=0).fit(X_train, y_train)
    ref = LogisticRegression(class_weight="balanced", max_iter=1000).fit(X_train, y_train)
    np.testing.assert_allclose(det.score_samples(X_test), ref.decision_function(X_test), rtol=1e-5)


@pytest.mark.parametrize(
    "cls, params, match",
    [
        (LogisticBaseline, {"C": 0}, "'C' parameter"),
        (LogisticBaseline, {"class_weight": "auto"}, "'class_weight' parameter"),
        (SVMBaseline, {"gamma": "wide"}, "'gamma' parameter"),
        (MLPBaseline, {"activation": "gelu"}, "'activation' parameter"),
        (MLPBaseline, {"hidden_layer_sizes": (8, 0)}, "hidden_layer_sizes must be positive"),
        (LogisticBaseline, {"standardize": "yes"}, "'standardize' parameter"),
    ],
)
def test_bad_parameters(data, cls, params, match):
    X_train, y_train, _, _ = data
    with pytest.raises(ValueError, match=match):
        cls(**params).fit(X_train, y_train)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "spec",
    [
        "svm:C=0.5,gamma=median",
        "mlp:hidden_layer_sizes=16|8,max_iter=30",
        "logistic:standardize=false",
    ],
)
def test_save_load_identical(data, tmp_path, spec):
    X_train, y_train, X_test, _ = data
    det = oneclass.make_detector(spec, random_state=0, calibration_folds=2).fit(X_train, y_train)
    loaded = oneclass.load(det.save(tmp_path / "model"))
    assert np.array_equal(loaded.score_samples(X_test), det.score_samples(X_test))
    assert loaded.threshold_ == det.threshold_
