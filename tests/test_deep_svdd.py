"""Deep SVDD on real ADBench embeddings (ResNet-18 features of MVTec-AD images)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone

import oneclass
from oneclass.data.adbench import adbench_split
from oneclass.detect.deep_svdd import DeepSVDD
from oneclass.metrics import roc_auc


@pytest.fixture(scope="module")
def bottle(adbench):
    """Fit on a seeded 70% of the bottle normals; test on the rest plus every anomaly."""
    return adbench_split(*adbench("MVTec-AD_bottle"), seed=0)


@pytest.fixture(scope="module")
def toothbrush(adbench):
    return adbench_split(*adbench("MVTec-AD_toothbrush"), seed=0)


@pytest.mark.parametrize("objective", ["one-class", "soft-boundary"])
def test_in_class_scores_higher(bottle, objective):
    X_train, X_test, y_test = bottle
    det = DeepSVDD(objective=objective, calibration_folds=0, random_state=0).fit(X_train)
    scores = det.score_samples(X_test)
    assert scores[y_test == 1].mean() > scores[y_test == 0].mean()
    assert roc_auc(y_test, scores) > 0.9
    if objective == "soft-boundary":
        assert det.radius_ > 0
        # R is the (1 - nu) quantile of the training distances: about 1 - nu fall inside
        train_rows = np.setdiff1d(np.arange(len(X_train)), det.validation_indices_)
        inside = np.mean(det.score_samples(X_train[train_rows]) >= 0)
        assert 1 - det.nu - 0.02 <= inside <= 1 - det.nu + 0.05
    else:
        assert det.radius_ == 0
        assert np.all(scores <= 0)


def test_network_is_bias_free_and_center_away_from_zero(toothbrush):
    det = DeepSVDD(
        hidden_sizes=[64, 32], rep_dim=16, epochs=5, calibration_folds=0, random_state=0
    ).fit(toothbrush[0])
    names = [name for name, _ in det.net_.named_parameters()]
    assert names and not any("bias" in name for name in names)
    assert [p.shape for p in det.net_.parameters()] == [(64, 512), (32, 64), (16, 32)]
    assert det.center_.shape == (16,)
    assert np.all(np.abs(det.center_) >= det.center_eps - 1e-7)


def test_same_seed_same_scores_refit_and_clone(toothbrush):
    X_train, X_test, _ = toothbrush
    det = DeepSVDD(epochs=30, calibration_folds=2, random_state=7)
    first = det.fit(X_train).score_samples(X_test)
    threshold = det.threshold_
    again = det.fit(X_train).score_samples(X_test)
    cloned = clone(det).fit(X_train).score_samples(X_test)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, cloned)
    assert det.threshold_ == threshold
    assert clone(det).get_params() == det.get_params()
    other = clone(det).set_params(random_state=8).fit(X_train).score_samples(X_test)
    assert not np.array_equal(first, other)


def test_early_stopping_stops_and_restores_best_weights(bottle):
    X_train = bottle[0]
    det = DeepSVDD(epochs=300, lr=3e-2, patience=3, calibration_folds=0, random_state=0).fit(
        X_train
    )
    assert det.early_stopping_ and det.stopped_early_
    assert det.n_epochs_ < 300 and len(det.validation_loss_) == det.n_epochs_
    assert det.best_epoch_ == int(np.argmin(det.validation_loss_)) + 1
    assert det.best_epoch_ < det.n_epochs_
    # the kept weights are the best epoch's: their held-out objective is the minimum seen
    held_out = -det.score_samples(X_train[det.validation_indices_]).mean()
    assert held_out == pytest.approx(min(det.validation_loss_), rel=1e-4)
    assert held_out < det.validation_loss_[-1]


def test_tiny_training_set_trains_on_everything(toothbrush):
    X = toothbrush[0][:5]
    det = DeepSVDD(epochs=4, random_state=0).fit(X)
    assert det.early_stopping_ is False and det.validation_indices_ is None
    assert det.validation_loss_ == [] and det.n_epochs_ == 4
    assert np.isfinite(det.threshold_) and det.calibration_scores_.shape == (5,)


def test_autoencoder_pretraining_runs(toothbrush):
    X_train, X_test, y_test = toothbrush
    det = DeepSVDD(pretrain_epochs=30, calibration_folds=0, random_state=0).fit(X_train)
    assert len(det.pretrain_loss_) == 30
    assert det.pretrain_loss_[-1] < 0.5 * det.pretrain_loss_[0]
    assert roc_auc(y_test, det.score_samples(X_test)) > 0.8


@pytest.mark.parametrize("objective", ["one-class", "soft-boundary"])
def test_save_load_identical_scores(tmp_path, toothbrush, objective):
    X_train, X_test, _ = toothbrush
    det = DeepSVDD(
        hidden_sizes=[128, 64],
        rep_dim=32,
        standardize="feature",
        objective=objective,
        calibration_folds=0,
        random_state=0,
    ).fit(X_train)
    path = det.save(tmp_path / "model")
    assert (path / "weights.safetensors").is_file()
    loaded = oneclass.load(path)
    assert isinstance(loaded, DeepSVDD) and loaded.get_params() == det.get_params()
    np.testing.assert_array_equal(loaded.score_samples(X_test), det.score_samples(X_test))
    np.testing.assert_array_equal(loaded.predict(X_test), det.predict(X_test))
    assert loaded.radius_ == det.radius_ and loaded.threshold_ == det.threshold_


def test_registry_builds_it():
    det = oneclass.make_detector("deep-svdd:rep_dim=8,objective=soft-boundary")
    assert isinstance(det, DeepSVDD) and det.rep_dim == 8 and det.objective == "soft-boundary"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"nu": 0.0}, "'nu' parameter"),
        ({"nu": 1.5}, "'nu' parameter"),
        ({"objective": "hard-margin"}, "'objective' parameter"),
        ({"hidden_sizes": [64, 0]}, "hidden_sizes must be positive"),
        ({"hidden_sizes": ["wide"]}, "hidden_sizes must be a list of ints"),
        ({"rep_dim": 0}, "rep_dim"),
        ({"activation": "swish"}, "'activation' parameter"),
        ({"epochs": 0}, "'epochs' parameter"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"lr": -1.0}, "'lr' parameter"),
        ({"standardize": "minmax"}, "'standardize' parameter"),
        ({"init": "zeros"}, "'init' parameter"),
        ({"device": "not-a-device"}, "device must be"),
    ],
)
def test_bad_params_raise_clear_errors(params, message):
    X = np.random.default_rng(0).normal(size=(20, 8))
    with pytest.raises(ValueError, match=message):
        DeepSVDD(calibration_folds=0, **params).fit(X)


def test_bad_input_raises(toothbrush):
    det = DeepSVDD(epochs=2, calibration_folds=0, random_state=0).fit(toothbrush[0])
    with pytest.raises(ValueError, match="features"):
        det.score_samples(np.ones((3, 7)))
    with pytest.raises(ValueError, match="at least 2"):
        DeepSVDD().fit(np.ones((1, 4)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fit_and_cpu_load(tmp_path, bottle):
    X_train, X_test, y_test = bottle
    det = DeepSVDD(device="cuda", calibration_folds=0, random_state=0).fit(X_train)
    assert det.device_.type == "cuda"
    scores = det.score_samples(X_test)
    assert roc_auc(y_test, scores) > 0.9
    np.testing.assert_array_equal(
        scores,
        DeepSVDD(device="cuda", calibration_folds=0, random_state=0)
        .fit(X_train)
        .score_samples(X_test),
    )
    det.set_params(device="cpu")  # a saved GPU model loads on the CPU
    cpu = oneclass.load(det.save(tmp_path / "model"))
    assert cpu.device_.type == "cpu"
    np.testing.assert_allclose(cpu.score_samples(X_test), scores, rtol=1e-4, atol=1e-4)
