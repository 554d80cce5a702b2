"""The detector contract (oneclass.detect.base), checked on every registered detector.

Real vectors throughout: slices of ADBench CIFAR10_0 (ImageNet ResNet-18 embeddings, 512-d), with
the airplane class as in-class and the other classes' images (ADBench's anomalies) as negatives.
``pyod:<Name>`` is checked through two concrete PyOD models; ``clip-prompt`` scores against text
prompts rather than learning from vectors, so it has its own tests.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

import oneclass
from oneclass.detect.base import BaseDetector
from oneclass.metrics import roc_auc

# two concrete PyOD models (a neighbour-based one and a histogram one); the transductive ones
# (ECOD, COPOD) are scored a row at a time by the adapter, too slow for this suite
PYOD_MODELS = ("pyod:LOF", "pyod:HBOS")
#: parameters a detector cannot do without (fusion combines other detectors)
REQUIRED_PARAMS = {"fusion": {"detectors": ["knn:k=5", "mahalanobis"]}}
NOT_VECTOR_DETECTORS = {"clip-prompt": "scores images against text prompts, not learnt vectors"}


def make(name: str, **params) -> BaseDetector:
    return oneclass.make_detector(name, **{**REQUIRED_PARAMS.get(name, {}), **params})


def contract_detectors() -> list:
    names = []
    for name in oneclass.available_detectors():
        if name == "pyod:<Name>":
            names.extend(PYOD_MODELS)
        elif name in NOT_VECTOR_DETECTORS:
            names.append(
                pytest.param(
                    name, marks=pytest.mark.skip(reason=f"{name} {NOT_VECTOR_DETECTORS[name]}")
                )
            )
        else:
            names.append(name)
    return names


DETECTORS = contract_detectors()
N_TRAIN_POS, N_TRAIN_NEG, N_TEST_POS = 300, 100, 1000


@pytest.fixture(scope="module")
def data(cifar10_0) -> dict[str, np.ndarray]:
    """Disjoint real slices: training positives/negatives, held-out positives/negatives."""
    X, y = cifar10_0
    rng = np.random.default_rng(0)
    pos = rng.permutation(np.flatnonzero(y == 1))
    neg = rng.permutation(np.flatnonzero(y == 0))
    return {
        "train_pos": X[pos[:N_TRAIN_POS]],
        "test_pos": X[pos[N_TRAIN_POS : N_TRAIN_POS + N_TEST_POS]],
        "train_neg": X[neg[:N_TRAIN_NEG]],
        "test_neg": X[neg[N_TRAIN_NEG:]],
    }


def fit(det: BaseDetector, pos: np.ndarray, neg: np.ndarray) -> BaseDetector:
    """Fit on positives; binary baselines also get the negatives, with labels."""
    if det.requires_negatives:
        X = np.vstack([pos, neg])
        y = np.r_[np.ones(len(pos), dtype=int), np.zeros(len(neg), dtype=int)]
        return det.fit(X, y)
    return det.fit(pos)


def normalised(params: dict) -> dict:
    """Parameters as JSON would hold them (tuples become lists), for comparisons across a save."""
    return json.loads(json.dumps(params))


@pytest.fixture(scope="module", params=DETECTORS)
def fitted(request, data) -> BaseDetector:
    det = make(request.param, random_state=0)
    returned = fit(det, data["train_pos"], data["train_neg"])
    assert returned is det, "fit must return self"
    return det


@pytest.mark.parametrize("name", DETECTORS)
def test_init_only_stores_parameters(name):
    det = make(name)
    params = det.get_params(deep=False)
    assert set(vars(det)) == set(params), "__init__ must store exactly its parameters"
    for key in ("target_tpr", "calibration_folds", "random_state"):
        assert key in params, f"every detector takes {key}"
    assert not [k for k in vars(det) if k.endswith("_") and not k.startswith("_")]


@pytest.mark.parametrize("name", DETECTORS)
def test_get_set_params_round_trip(name):
    det = make(name, random_state=3)
    params = det.get_params()
    other = make(name)
    assert other.set_params(**params) is other
    assert other.get_params() == params
    assert clone(det).get_params() == params
    assert type(det)(**det.get_params(deep=False)).get_params() == params


@pytest.mark.parametrize("name", DETECTORS)
def test_unfitted_detector_refuses_to_score(name, data):
    det = make(name)
    with pytest.raises(NotFittedError):
        det.score_samples(data["test_pos"][:3])


def test_fit_sets_only_underscored_attributes_and_keeps_params(fitted, request):
    params = fitted.get_params(deep=False)
    name = request.node.callspec.params["fitted"]
    unfitted = make(name, random_state=0).get_params(deep=False)
    assert params == unfitted, "fit must not change the parameters"
    learnt = set(vars(fitted)) - set(params)
    bad = sorted(k for k in learnt if not (k.endswith("_") or k.startswith("_")))
    assert not bad, f"fitted attributes must end in '_': {bad}"
    for key in ("threshold_", "calibration_scores_", "calibration_", "n_features_in_"):
        assert key in learnt
    assert fitted.n_features_in_ == 512


def test_shapes_and_dtypes(fitted, data):
    X = data["test_pos"][:50]
    s = fitted.score_samples(X)
    assert s.shape == (50,) and s.dtype == np.float64 and np.isfinite(s).all()
    d = fitted.decision_function(X)
    assert d.shape == (50,) and d.dtype == np.float64
    p = fitted.predict(X)
    assert p.shape == (50,) and np.issubdtype(p.dtype, np.integer) and set(p) <= {0, 1}
    pv = fitted.p_value(X)
    n_cal = fitted.calibration_scores_.size
    assert pv.shape == (50,) and pv.min() >= 1 / (n_cal + 1) and pv.max() <= 1.0
    assert isinstance(fitted.threshold_, float) and math.isfinite(fitted.threshold_)
    assert n_cal == N_TRAIN_POS, "the calibration scores are those of the training positives"


def test_a_sample_scores_the_same_alone_or_in_any_batch(fitted, data):
    X = np.vstack([data["test_pos"][:40], data["test_neg"][:10]])
    s = fitted.score_samples(X)
    alone = np.array([fitted.score_samples(X[i : i + 1])[0] for i in (0, 3, 45)])
    assert alone == pytest.approx(s[[0, 3, 45]], rel=1e-5, abs=1e-9)  # float32 rounding at most
    assert fitted.score_samples(X[::-1])[::-1] == pytest.approx(s, rel=1e-5, abs=1e-9)


def test_decision_function_and_predict_follow_the_threshold(fitted, data):
    X = np.vstack([data["test_pos"][:200], data["test_neg"][:100]])
    s, d = fitted.score_samples(X), fitted.decision_function(X)
    assert np.array_equal(d, s - fitted.threshold_)
    assert np.array_equal(fitted.predict(X), (d >= 0).astype(int))
    # p-values grow with the score (conformal p-values are ranks among calibration scores)
    order = np.argsort(s, kind="stable")
    assert np.all(np.diff(fitted.p_value(X)[order]) >= 0)


def test_higher_scores_mean_more_in_class(fitted, data):
    pos, neg = data["test_pos"], data["test_neg"]
    y = np.r_[np.ones(len(pos), dtype=int), np.zeros(len(neg), dtype=int)]
    auc = roc_auc(y, fitted.score_samples(np.vstack([pos, neg])))
    assert auc > 0.6, f"{fitted.name}: held-out AUC {auc:.3f}: scores point the wrong way?"


def test_threshold_keeps_target_tpr_of_held_out_positives(fitted, data):
    kept = fitted.predict(data["test_pos"]).mean()
    t, n_cal, n_test = fitted.target_tpr, fitted.calibration_scores_.size, N_TEST_POS
    se = math.sqrt(t * (1 - t) * (1 / n_cal + 1 / n_test))
    assert abs(kept - t) <= 3 * se, (
        f"{fitted.name} ({fitted.calibration_}) keeps {kept:.3f} of held-out positives, "
        f"target {t} (3 s.e. = {3 * se:.3f})"
    )


def test_clone_and_refit_give_identical_scores(fitted, data):
    X = np.vstack([data["test_pos"][:200], data["test_neg"][:50]])
    again = fit(clone(fitted), data["train_pos"], data["train_neg"])
    assert np.array_equal(again.score_samples(X), fitted.score_samples(X))
    assert again.threshold_ == fitted.threshold_
    assert np.array_equal(again.calibration_scores_, fitted.calibration_scores_)


def test_save_load_round_trip(fitted, data, tmp_path):
    X = np.vstack([data["test_pos"][:200], data["test_neg"][:50]])
    path = fitted.save(tmp_path / "model")
    loaded = oneclass.load(path)
    assert type(loaded) is type(fitted)
    assert normalised(loaded.get_params(deep=False)) == normalised(fitted.get_params(deep=False))
    assert np.array_equal(loaded.score_samples(X), fitted.score_samples(X))
    assert loaded.threshold_ == fitted.threshold_
    assert loaded.calibration_ == fitted.calibration_
    assert np.array_equal(loaded.calibration_scores_, fitted.calibration_scores_)
    assert np.array_equal(loaded.predict(X), fitted.predict(X))
    assert np.array_equal(loaded.p_value(X), fitted.p_value(X))
    # a loaded model saves again to an equivalent model
    reloaded = oneclass.load(loaded.save(tmp_path / "again"))
    assert np.array_equal(reloaded.score_samples(X), fitted.score_samples(X))


@pytest.mark.parametrize("name", DETECTORS)
def test_fewer_samples_than_dimensions(name, data):
    """10 training samples in 128 dimensions (binary baselines: 10 of each class)."""
    pos, neg = data["train_pos"][:10, :128], data["train_neg"][:10, :128]
    det = fit(make(name, random_state=0), pos, neg)
    s = det.score_samples(data["test_pos"][:40, :128])
    assert s.shape == (40,) and np.isfinite(s).all()
    assert math.isfinite(det.threshold_)
    assert np.unique(s).size > 1, "scores must still tell samples apart"


BAD_TRAINING = {
    "NaN": (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 7, np.nan, X), "NaN"),
    "inf": (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 7, np.inf, X), "infinity"),
    "empty": (lambda X: X[:0], "empty"),
    "single sample": (lambda X: X[:1], "sample"),
    "1-d": (lambda X: X[0], "2-d"),
    "3-d": (lambda X: X[:4].reshape(2, 2, -1), "2-d"),
    "text": (lambda X: np.array([["a", "b"], ["c", "d"]]), "numeric"),
}


@pytest.mark.parametrize("case", list(BAD_TRAINING))
@pytest.mark.parametrize("name", DETECTORS)
def test_bad_training_input_raises_a_clear_value_error(name, case, data):
    make_bad, match = BAD_TRAINING[case]
    det = make(name, random_state=0)
    X = make_bad(data["train_pos"][:20].astype(np.float64))
    y = None
    if det.requires_negatives and np.ndim(X) == 2 and len(X) >= 1:
        X = np.vstack([X, data["train_neg"][:10, : X.shape[1]]])
        y = np.r_[np.ones(len(X) - 10, dtype=int), np.zeros(10, dtype=int)]
    with pytest.raises(ValueError, match=match):
        det.fit(X, y)


BAD_SCORING = {
    "NaN": (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 3, np.nan, X), "NaN"),
    "inf": (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 3, -np.inf, X), "infinity"),
    "wrong dimension": (lambda X: X[:, :100], "100 features.*512"),
    "1-d sample": (lambda X: X[0], r"reshape\(1, -1\)"),
    "empty": (lambda X: X[:0], "empty"),
}


@pytest.mark.parametrize("case", list(BAD_SCORING))
def test_bad_scoring_input_raises_a_clear_value_error(fitted, case, data):
    make_bad, match = BAD_SCORING[case]
    X = make_bad(data["test_pos"][:5].astype(np.float64))
    for method in (fitted.score_samples, fitted.decision_function, fitted.predict):
        with pytest.raises(ValueError, match=match):
            method(X)


def test_binary_baselines_need_both_classes(data):
    binary = [n for n in DETECTORS if isinstance(n, str) and make(n).requires_negatives]
    assert binary, "logistic, svm and mlp are binary baselines"
    pos = data["train_pos"][:20]
    for name in binary:
        det = make(name)
        with pytest.raises(ValueError, match="needs labels"):
            det.fit(pos)
        with pytest.raises(ValueError, match="both"):
            det.fit(pos, np.ones(20, dtype=int))
        with pytest.raises(ValueError, match="labels for"):
            det.fit(pos, np.ones(19, dtype=int))
