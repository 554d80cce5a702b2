"""The public detector state and threshold API: get_state/set_state, set_threshold, info."""

from __future__ import annotations

import numpy as np
import pytest

import oneclass
from oneclass.detect.state import State


@pytest.fixture(scope="module")
def vectors(cifar10_0):
    X, y = cifar10_0
    pos = np.asarray(X[y == 1][:200], dtype=np.float64)
    return pos[:150], pos[150:]


@pytest.mark.parametrize("name", ["mahalanobis", "iforest", "ocsvm"])
def test_get_state_set_state_round_trip(vectors, name):
    X, X_test = vectors
    det = oneclass.make_detector(name, random_state=0).fit(X)
    state = det.get_state()
    assert set(state.meta) == {"model", "calibration"}
    assert all(k.startswith(("model/", "calibration/")) for k in state.arrays)
    fresh = oneclass.make_detector(name, random_state=0)
    fresh.set_state(state)
    assert np.array_equal(fresh.score_samples(X_test), det.score_samples(X_test))
    assert fresh.threshold_ == det.threshold_
    assert (
        fresh.calibration_info_
        == det.calibration_info_
        == {"method": "cross-fitted", "folds": 5, "target": "tpr", "value": 0.95}
    )
    assert fresh.calibration_ == det.calibration_ == "cross-fitted (5 folds), TPR=0.95"


@pytest.mark.parametrize(
    "where, value, match",
    [
        ("threshold", np.nan, r"calibration\.threshold_ = nan"),
        ("threshold", np.inf, r"calibration\.threshold_ = inf"),
        ("calibration", np.nan, r"calibration\.calibration_scores_ holds 1 NaN/inf"),
        ("model array", np.inf, r"model\.precision holds 1 NaN/inf"),
    ],
)
def test_set_state_refuses_nan_and_inf_naming_the_field(vectors, where, value, match):
    det = oneclass.make_detector("mahalanobis").fit(vectors[0])
    state = det.get_state()
    if where == "threshold":
        state.meta["calibration"]["threshold_"] = value
    elif where == "calibration":
        state.arrays["calibration/calibration_scores_"] = state.arrays[
            "calibration/calibration_scores_"
        ].copy()
        state.arrays["calibration/calibration_scores_"][3] = value
    else:
        state.arrays["model/precision"] = state.arrays["model/precision"].copy()
        state.arrays["model/precision"][0, 0] = value
    with pytest.raises(ValueError, match=match):
        oneclass.make_detector("mahalanobis").set_state(state)


def test_set_state_refuses_missing_and_malformed_fields(vectors):
    det = oneclass.make_detector("mahalanobis").fit(vectors[0])
    state = det.get_state()
    del state.meta["calibration"]["threshold_"]
    with pytest.raises(ValueError, match=r"calibration\.threshold_ is missing"):
        oneclass.make_detector("mahalanobis").set_state(state)
    with pytest.raises(ValueError, match="meta"):
        oneclass.make_detector("mahalanobis").set_state(State(meta={}))
    bad = det.get_state()
    bad.arrays["weird/x"] = np.zeros(2)
    with pytest.raises(ValueError, match="unexpected state entries"):
        oneclass.make_detector("mahalanobis").set_state(bad)


def test_iforest_leaves_may_hold_minus_infinity_but_not_nan(vectors):
    det = oneclass.make_detector("iforest", n_estimators=10, random_state=0).fit(vectors[0])
    state = det.get_state()
    assert np.isneginf(state.arrays["model/threshold"]).any()
    oneclass.make_detector("iforest", n_estimators=10).set_state(state)  # accepted
    state.arrays["model/threshold"] = state.arrays["model/threshold"].copy()
    state.arrays["model/threshold"][0] = np.nan
    with pytest.raises(ValueError, match=r"model\.threshold"):
        oneclass.make_detector("iforest", n_estimators=10).set_state(state)


def test_set_threshold_records_structured_info(vectors):
    X, X_test = vectors
    det = oneclass.make_detector("mahalanobis", calibration_folds=0).fit(X)
    assert det.calibration_info_ == {
        "method": "in-sample",
        "folds": None,
        "target": "tpr",
        "value": 0.95,
    }
    scores = det.score_samples(X_test)
    det.set_threshold(scores, how="held-out", target_tpr=0.8)
    assert det.calibration_info_ == {
        "method": "held-out",
        "folds": None,
        "target": "tpr",
        "value": 0.8,
    }
    assert det.calibration_ == "held-out, TPR=0.8"
    assert abs(np.mean(det.predict(X_test)) - 0.8) < 0.03
    with pytest.raises(ValueError, match="positive_scores contain NaN"):
        det.set_threshold(np.r_[scores, np.nan], how="held-out")
