"""PyOD adapter: lookup by name, parameter pass-through, negated scores, refit-on-load."""

from __future__ import annotations

import numpy as np
import pytest
from pyod.models.iforest import IForest as PyODIForest
from pyod.models.lof import LOF
from sklearn.base import clone

import oneclass
from oneclass.detect.pyod_adapter import PyODDetector, pyod_class, pyod_models


@pytest.fixture(scope="module")
def data(cifar10_0):
    X, y = cifar10_0
    pos = np.random.default_rng(5).permutation(np.flatnonzero(y == 1))
    return X[pos[:200]].astype(np.float64), X[pos[200:300]].astype(np.float64)


def test_models_are_found_by_name():
    models = pyod_models()
    assert {"KNN", "LOF", "IForest", "ECOD", "OCSVM", "MCD"} <= set(models)
    assert models["LOF"] == "pyod.models.lof"
    assert pyod_class("LOF") is LOF
    assert pyod_class("lof") is LOF  # case-insensitive when unambiguous


def test_unknown_name_lists_valid_ones(data):
    det = oneclass.make_detector("pyod:LOFF")  # checked in fit, as scikit-learn does
    with pytest.raises(ValueError, match=r"unknown PyOD model 'LOFF'.*Did you mean LOF.*KNN"):
        det.fit(data[0])
    with pytest.raises(ValueError, match="unknown PyOD model 'NotADetector'"):
        PyODDetector("NotADetector").fit(data[0])


def test_params_pass_through_and_clone():
    det = oneclass.make_detector("pyod:LOF", n_neighbors=10)
    assert det.model == "LOF" and det.params == {"n_neighbors": 10}
    merged = PyODDetector("LOF", params={"n_neighbors": 3}, leaf_size=20)
    assert merged.params == {"n_neighbors": 3, "leaf_size": 20}
    assert clone(merged).get_params() == merged.get_params()
    spec = oneclass.make_detector("pyod:LOF:n_neighbors=4")
    assert spec.params == {"n_neighbors": 4}


def test_scores_are_negated_decision_function(data):
    X_train, X_test = data
    det = PyODDetector("LOF", n_neighbors=10, calibration_folds=0).fit(X_train)
    assert det.model_.n_neighbors == 10
    ref = LOF(n_neighbors=10).fit(X_train)
    np.testing.assert_allclose(det.score_samples(X_test), -ref.decision_function(X_test))


def test_bad_parameter_names_the_accepted_ones(data):
    with pytest.raises(ValueError, match=r"bad parameters for PyOD LOF.*n_neighbors"):
        PyODDetector("LOF", n_neighbours=10).fit(data[0])


def test_random_state_reaches_the_model_and_survives_save(data, tmp_path):
    X_train, X_test = data
    det = PyODDetector("IForest", n_estimators=20, random_state=3).fit(X_train)
    assert det.model_.random_state == 3
    ref = PyODIForest(n_estimators=20, random_state=3).fit(X_train)
    np.testing.assert_allclose(det.score_samples(X_test), -ref.decision_function(X_test))
    loaded = oneclass.load(det.save(tmp_path / "seeded"))
    assert np.array_equal(loaded.score_samples(X_test), det.score_samples(X_test))


def test_unseeded_random_model_reloads_identically(data, tmp_path):
    """random_state=None: a seed is drawn at fit time and saved, so the refit is the same model."""
    X_train, X_test = data
    det = PyODDetector("IForest", n_estimators=20, calibration_folds=0).fit(X_train)
    assert isinstance(det.seed_, int)
    loaded = oneclass.load(det.save(tmp_path / "unseeded"))
    assert np.array_equal(loaded.score_samples(X_test), det.score_samples(X_test))


def test_batch_dependent_models_score_each_sample_alone(data):
    """PyOD's ECOD scores a batch jointly with the training data; the adapter does not."""
    X_train, X_test = data
    det = PyODDetector("ECOD", calibration_folds=0).fit(X_train[:30])
    together = det.score_samples(X_test[:8])
    alone = np.array([det.score_samples(X_test[i : i + 1])[0] for i in range(8)])
    np.testing.assert_allclose(together, alone)
    joint = -det.model_.decision_function(X_test[:8])
    assert not np.allclose(joint, together)  # what PyOD alone would have given


def test_pyod_contamination_is_ours_or_refused(data):
    X_train, _ = data
    det = oneclass.make_detector(
        "pyod:IForest:contamination=0.2", n_estimators=20, random_state=0
    ).fit(X_train)
    assert det.contamination == 0.2 and "contamination" not in (det.params or {})
    assert abs(det.labels_.mean() - 0.2) < 0.03  # our rule, on out-of-sample training scores
    assert det.calibration_.endswith("contamination=0.2")
    with pytest.raises(ValueError, match="PyOD's contamination is not used"):
        PyODDetector("IForest", params={"contamination": 0.2}).fit(X_train)


def test_pca_threshold_keeps_the_target_tpr(cifar10_0):
    """PyOD PCA's scale depends on the training-set size (1/variance of ~null components):
    fold scores are aligned to the final model's scale, so the threshold transfers."""
    X, y = cifar10_0
    pos = np.random.default_rng(0).permutation(np.flatnonzero(y == 1))
    X_train, X_test = X[pos[:1000]], X[pos[2000:2500]]
    det = oneclass.make_detector("pyod:PCA", random_state=0).fit(X_train)
    kept = np.mean(det.predict(X_test))
    assert 0.9 <= kept <= 0.99, kept  # before: 0.000 (fold scores 1e35, final model 1e37)


def test_load_refuses_unbounded_refits(data, tmp_path):
    import json

    X_train, _ = data
    path = (
        PyODDetector("IForest", n_estimators=5, random_state=0)
        .fit(X_train[:50])
        .save(tmp_path / "m")
    )
    header = json.loads((path / "oneclass.json").read_text())
    header["params"]["params"]["n_estimators"] = 10**9
    (path / "oneclass.json").write_text(json.dumps(header))
    with pytest.raises(ValueError, match=r"params\.n_estimators = 1000000000"):
        oneclass.load(path)
