"""Labelled data: one-class detectors learn only from y == 1; scikit-learn tools work on them."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import oneclass


@pytest.fixture(scope="module")
def labelled(cifar10_0):
    """CIFAR10_0 ResNet-18 vectors: a labelled training set (1 = in-class) and a test set."""
    X, y = cifar10_0
    rng = np.random.default_rng(11)
    pos, neg = rng.permutation(np.flatnonzero(y == 1)), rng.permutation(np.flatnonzero(y == 0))
    train = np.r_[pos[:300], neg[:150]]
    test = np.r_[pos[300:700], neg[150:]]
    return (
        np.asarray(X[train], dtype=np.float64),
        y[train].astype(int),
        np.asarray(X[test], dtype=np.float64),
        y[test].astype(int),
    )


@pytest.mark.parametrize("name", ["ocsvm", "mahalanobis", "iforest"])
def test_negatives_never_train_a_one_class_detector(labelled, name):
    X, y, X_test, y_test = labelled
    with_y = oneclass.make_detector(name, random_state=0).fit(X, y)
    positives_only = oneclass.make_detector(name, random_state=0).fit(X[y == 1])
    # the model is the one learnt from the positives alone; negatives only calibrate
    np.testing.assert_allclose(with_y.score_samples(X_test), positives_only.score_samples(X_test))
    assert with_y.threshold_ == positives_only.threshold_
    assert with_y.calibration_negative_scores_.shape == (150,)
    np.testing.assert_allclose(
        with_y.calibration_negative_scores_, positives_only.score_samples(X[y == 0])
    )
    assert roc_auc_score(y_test, with_y.score_samples(X_test)) > 0.7


def test_labels_in_other_conventions_read_as_one_against_the_rest(labelled):
    X, y, X_test, _ = labelled
    ref = oneclass.make_detector("mahalanobis").fit(X, y).score_samples(X_test)
    for other in (np.where(y == 1, 1, -1), y.astype(bool), np.where(y == 1, 1, 7)):
        got = oneclass.make_detector("mahalanobis").fit(X, other).score_samples(X_test)
        np.testing.assert_allclose(got, ref)
    with pytest.raises(ValueError, match="no positives"):
        oneclass.make_detector("mahalanobis").fit(X, np.zeros_like(y))
    with pytest.raises(ValueError, match="Unknown label type"):
        oneclass.make_detector("mahalanobis").fit(X, np.array(["a"] * len(y)))


def test_negatives_given_to_fit_set_a_target_fpr_threshold(labelled):
    X, y, X_test, y_test = labelled
    det = oneclass.make_detector("ocsvm", random_state=0).fit(X, y)
    det.set_threshold(
        det.calibration_scores_,
        det.calibration_negative_scores_,
        how="fit negatives",
        target_fpr=0.1,
    )
    assert det.calibration_info_ == {
        "method": "fit negatives",
        "folds": None,
        "target": "fpr",
        "value": 0.1,
    }
    assert np.mean(det.predict(X[y == 0])) <= 0.1
    assert np.mean(det.predict(X_test[y_test == 0])) < 0.3  # held-out negatives


def test_cross_val_score_grid_search_and_pipeline_on_labelled_data(labelled):
    X, y, _, _ = labelled
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    det = oneclass.make_detector("mahalanobis", calibration_folds=0)
    aucs = cross_val_score(det, X, y, scoring="roc_auc", cv=cv)
    assert aucs.mean() > 0.7, aucs  # before the fix: trained on negatives too
    pipe = make_pipeline(StandardScaler(), oneclass.make_detector("ocsvm", calibration_folds=0))
    assert cross_val_score(pipe, X, y, scoring="roc_auc", cv=cv).mean() > 0.62
    grid = GridSearchCV(
        oneclass.make_detector("ocsvm", calibration_folds=0),
        {"nu": [0.1, 0.5]},
        scoring="roc_auc",
        cv=cv,
    ).fit(X, y)
    assert grid.best_score_ > 0.7 and grid.best_params_["nu"] in (0.1, 0.5)


def test_pyod_conventions(labelled):
    X, y, X_test, _ = labelled
    pos = X[y == 1]
    det = oneclass.make_detector("mahalanobis", contamination=0.1, random_state=0)
    in_class = det.fit_predict(pos)
    # PyOD: labels_ 1 = outlier, decision_scores_ higher = more outlying; ours: predict 1 = in
    assert np.array_equal(det.labels_, 1 - in_class)
    assert abs(det.labels_.mean() - 0.1) < 0.02
    np.testing.assert_allclose(det.decision_scores_, -det.calibration_scores_)
    assert det.calibration_ == "cross-fitted (5 folds), contamination=0.1"
    assert det.calibration_info_["target"] == "tpr" and det.calibration_info_["value"] == 0.9
    with pytest.raises(ValueError, match="contamination"):
        oneclass.make_detector("mahalanobis", contamination=0.7).fit(pos)
