"""KNN detector: exact neighbours (checked against scikit-learn), metrics, blocking, edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

import oneclass
from oneclass.detect.knn import KNN, knn_distances, top_k


@pytest.fixture(scope="module")
def data(cifar10_0):
    """300 training positives; 300 held-out positives and 263 anomalies (real ResNet-18 vectors)."""
    X, y = cifar10_0
    pos = np.random.default_rng(1).permutation(np.flatnonzero(y == 1))
    X_test = np.vstack([X[pos[300:600]], X[y == 0]])
    y_test = np.r_[np.ones(300, dtype=int), np.zeros(int((y == 0).sum()), dtype=int)]
    return X[pos[:300]].astype(np.float64), X_test.astype(np.float64), y_test


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("aggregation", ["max", "mean"])
def test_scores_are_exact_neighbour_distances(data, metric, aggregation):
    X_train, X_test, _ = data
    det = KNN(k=7, metric=metric, aggregation=aggregation, calibration_folds=0).fit(X_train)
    nn = NearestNeighbors(n_neighbors=7, metric=metric, algorithm="brute").fit(X_train)
    dist, _ = nn.kneighbors(X_test)
    expected = -(dist[:, -1] if aggregation == "max" else dist.mean(axis=1))
    np.testing.assert_allclose(det.score_samples(X_test), expected, rtol=1e-9, atol=1e-9)


def test_cosine_ignores_scale_euclidean_does_not(data):
    X_train, X_test, _ = data
    cos = KNN(metric="cosine", calibration_folds=0).fit(X_train)
    euc = KNN(metric="euclidean", calibration_folds=0).fit(X_train)
    np.testing.assert_allclose(cos.score_samples(3 * X_test), cos.score_samples(X_test),
                               atol=1e-12)
    assert not np.allclose(euc.score_samples(3 * X_test), euc.score_samples(X_test))


def test_separates_the_class_from_anomalies(data):
    """Real behaviour: held-out airplanes score above other CIFAR-10 classes (cosine is better)."""
    X_train, X_test, y_test = data
    auc = {m: roc_auc_score(y_test, KNN(metric=m, calibration_folds=0).fit(X_train)
                            .score_samples(X_test)) for m in ("cosine", "euclidean")}
    assert auc["cosine"] > 0.72, auc
    assert auc["cosine"] > auc["euclidean"], auc


def test_training_vectors_are_their_own_nearest_neighbour(data):
    X_train = data[0]
    det = KNN(k=1, calibration_folds=0).fit(X_train)
    np.testing.assert_allclose(det.score_samples(X_train[:20]), 0.0, atol=1e-12)


def test_blocking_and_selection_paths_agree(data):
    X_train, X_test, _ = data
    ref = knn_distances(X_test, X_train, 30, "euclidean")  # partition path (k > 16)
    tiny = knn_distances(X_test, X_train, 30, "euclidean", budget=1)  # one row per block
    np.testing.assert_allclose(np.sort(tiny, axis=1), np.sort(ref, axis=1), rtol=1e-12)
    G = np.random.default_rng(0).standard_normal((50, 200))
    for k in (1, 5, 16, 17, 200):
        np.testing.assert_array_equal(np.sort(top_k(G.copy(), k), axis=1),
                                      np.sort(G, axis=1)[:, 200 - k:])


def test_more_neighbours_than_samples_is_a_clear_error(data):
    with pytest.raises(ValueError, match=r"k=10 needs at least 10 training samples, got 6"):
        KNN(k=10, calibration_folds=0).fit(data[0][:6])
    with pytest.raises(ValueError, match="calibration_folds"):
        KNN(k=5, calibration_folds=5).fit(data[0][:6])


@pytest.mark.parametrize("params, match", [
    ({"k": 0}, "k must be a positive integer"),
    ({"k": 2.5}, "k must be a positive integer"),
    ({"metric": "manhattan"}, "metric must be one of"),
    ({"aggregation": "median"}, "aggregation must be one of"),
])
def test_bad_parameters(data, params, match):
    with pytest.raises(ValueError, match=match):
        KNN(**params).fit(data[0][:50])


def test_cosine_refuses_all_zero_rows(data):
    X = data[0][:20].copy()
    X[3] = 0.0
    with pytest.raises(ValueError, match=r"all-zero row.*\(3\).*euclidean"):
        KNN(calibration_folds=0).fit(X)
    det = KNN(calibration_folds=0).fit(data[0][:20])
    with pytest.raises(ValueError, match="all-zero"):
        det.score_samples(X)


def test_euclidean_save_load_identical(data, tmp_path):
    X_train, X_test, _ = data
    det = oneclass.make_detector("knn:metric=euclidean,aggregation=max,k=3").fit(X_train)
    loaded = oneclass.load(det.save(tmp_path / "knn"))
    assert (loaded.k, loaded.metric, loaded.aggregation) == (3, "euclidean", "max")
    assert np.array_equal(loaded.score_samples(X_test), det.score_samples(X_test))
