"""Our detectors against their PyOD counterparts on ADBench CIFAR10_0, and the ADBench loader.

Protocol (ADBench's one-class setting, :func:`oneclass.data.adbench.adbench_split`): fit on a
seeded 70% of the in-class rows (seed 0), test on the other 30% plus every anomaly. Each of ours
must reach the ROC-AUC of its PyOD counterpart, less 0.02, on the same split; both with their
default parameters (ours with ``calibration_folds=0``: thresholds play no part in an AUC).
"""

from __future__ import annotations

import numpy as np
import pytest

import oneclass
from oneclass.data.adbench import CV_SETS, adbench_split, available_adbench, load_adbench
from oneclass.detect.pyod_adapter import pyod_counterpart
from oneclass.metrics import roc_auc

# ---- the loader and the protocol ------------------------------------------------------------


def test_load_adbench_converts_anomaly_labels_to_inclass(data_root):
    X, y = load_adbench("CIFAR10_0", root=data_root)
    assert X.shape == (5263, 512) and X.dtype == np.float32
    assert y.dtype == np.int64 and np.bincount(y).tolist() == [263, 5000]  # 263 anomalies
    with np.load(data_root / "adbench/CV_by_ResNet18/CIFAR10_0.npz") as raw:
        assert np.array_equal(y, 1 - raw["y"])  # ADBench: y = 1 is an anomaly
        assert np.array_equal(X, raw["X"])
    X2, y2 = load_adbench("CV_by_ResNet18/CIFAR10_0", root=data_root)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)


def test_all_image_sets_and_the_classical_ones_are_there(data_root):
    names = available_adbench(data_root)
    assert [n for n in names if n.startswith("CV_by_ResNet18/")] == sorted(
        f"CV_by_ResNet18/{s}" for s in CV_SETS
    )
    assert "Classical/4_breastw" in names
    X, y = load_adbench("4_breastw", root=data_root)
    assert X.shape[0] == y.shape[0] and set(np.unique(y)) == {0, 1}


def test_loader_errors(data_root, tmp_path):
    with pytest.raises(ValueError, match="unknown ADBench set 'CIFAR10_99'.*CIFAR10_0"):
        load_adbench("CIFAR10_99", root=data_root)
    with pytest.raises(FileNotFoundError, match="ONECLASS_DATA"):
        load_adbench("CIFAR10_0", root=tmp_path)
    bad = tmp_path / "bad.npz"
    np.savez(bad, X=np.zeros((3, 2)), y=np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"bad.npz: y must be 0 \(normal\) / 1 \(anomaly\)"):
        load_adbench(str(bad))
    np.savez(bad, X=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="bad.npz: not a readable ADBench array"):
        load_adbench(str(bad))


def test_split_follows_the_protocol(cifar10_0):
    X, y = cifar10_0
    split = adbench_split(X, y, train_fraction=0.7, seed=0)
    assert split.X_train.shape == (3500, 512)
    assert split.X_test.shape == (1763, 512) and np.bincount(split.y_test).tolist() == [263, 1500]
    # every row lands on exactly one side, and the training side holds only in-class rows
    rows = {r.tobytes() for r in X[y == 1]}
    assert all(r.tobytes() in rows for r in split.X_train)
    both = np.vstack([split.X_train, split.X_test])
    assert np.unique(both, axis=0).shape[0] == np.unique(X, axis=0).shape[0]
    # seeded: the same seed gives the same split, another seed another one
    assert np.array_equal(adbench_split(X, y, seed=0).X_train, split.X_train)
    assert not np.array_equal(adbench_split(X, y, seed=1).X_train, split.X_train)
    with pytest.raises(ValueError, match="train_fraction"):
        adbench_split(X, y, train_fraction=1.0)
    with pytest.raises(ValueError, match="both sides"):
        adbench_split(X[:3], np.array([1, 0, 0]), train_fraction=0.5)


# ---- ours vs PyOD -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def split(cifar10_0):
    return adbench_split(*cifar10_0, train_fraction=0.7, seed=0)


PAIRS = [
    pytest.param("knn", "KNN", id="knn-vs-KNN"),
    pytest.param("iforest", "IForest", id="iforest-vs-IForest"),
    pytest.param("ocsvm", "OCSVM", id="ocsvm-vs-OCSVM"),
    pytest.param("mahalanobis", "MCD", id="mahalanobis-vs-MCD", marks=pytest.mark.slow),
    pytest.param("deep-svdd", "DeepSVDD", id="deep-svdd-vs-DeepSVDD", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("ours", "theirs"), PAIRS)
def test_ours_reaches_the_pyod_counterparts_auc(ours, theirs, split):
    det = oneclass.make_detector(ours, calibration_folds=0, random_state=0)
    our_auc = roc_auc(split.y_test, det.fit(split.X_train).score_samples(split.X_test))
    model = pyod_counterpart(theirs, split.X_train.shape[1], seed=0).fit(split.X_train)
    their_auc = roc_auc(split.y_test, -model.decision_function(split.X_test))
    # a check on the split itself: PyOD's models land at 0.6-0.85 on this protocol
    assert 0.6 < their_auc < 0.85, f"PyOD {theirs}: AUC {their_auc:.3f}"
    assert our_auc >= their_auc - 0.02, (
        f"{ours}: AUC {our_auc:.4f} < PyOD {theirs} {their_auc:.4f} - 0.02"
    )
