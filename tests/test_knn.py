"""KNN detector: exact neighbours (checked against scikit-learn), metrics, blocking, edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

import oneclass
from oneclass.detect.index import ExactIndex
from oneclass.detect.knn import KNN, candidate_distances, k_smallest


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
    # the data are float32 numbers: euclidean is exact; cosine keeps float32 unit rows (1e-7)
    tol = 1e-9 if metric == "euclidean" else 1e-6
    np.testing.assert_allclose(det.score_samples(X_test), expected, rtol=tol, atol=tol)


def test_cosine_ignores_scale_euclidean_does_not(data):
    X_train, X_test, _ = data
    cos = KNN(metric="cosine", calibration_folds=0).fit(X_train)
    euc = KNN(metric="euclidean", calibration_folds=0).fit(X_train)
    np.testing.assert_allclose(cos.score_samples(3 * X_test), cos.score_samples(X_test), atol=1e-12)
    assert not np.allclose(euc.score_samples(3 * X_test), euc.score_samples(X_test))


def test_separates_the_class_from_anomalies(data):
    """Real behaviour: held-out airplanes score above other CIFAR-10 classes (cosine is better)."""
    X_train, X_test, y_test = data
    auc = {
        m: roc_auc_score(
            y_test, KNN(metric=m, calibration_folds=0).fit(X_train).score_samples(X_test)
        )
        for m in ("cosine", "euclidean")
    }
    assert auc["cosine"] > 0.72, auc
    assert auc["cosine"] > auc["euclidean"], auc


def test_training_vectors_are_their_own_nearest_neighbour(data):
    X_train = data[0]
    det = KNN(k=1, calibration_folds=0).fit(X_train)
    np.testing.assert_allclose(det.score_samples(X_train[:20]), 0.0, atol=1e-12)


def test_blocking_and_selection_paths_agree(data):
    X_train, X_test, _ = data
    for metric in ("euclidean", "cosine"):
        ref = (
            X_train / np.linalg.norm(X_train, axis=1, keepdims=True)
            if metric == "cosine"
            else X_train
        ).astype(np.float32)
        Q = X_test / np.linalg.norm(X_test, axis=1, keepdims=True) if metric == "cosine" else X_test
        whole = ExactIndex(ref, metric).candidates(Q, 30)
        tiny = ExactIndex(ref, metric, budget=1).candidates(Q, 30)  # one query row per block
        np.testing.assert_array_equal(np.sort(tiny, axis=1), np.sort(whole, axis=1))
        nn = NearestNeighbors(n_neighbors=30, metric=metric, algorithm="brute").fit(ref)
        dist, ids = nn.kneighbors(Q)
        np.testing.assert_allclose(
            k_smallest(candidate_distances(Q, ref, whole, metric), 30), dist, rtol=1e-6, atol=1e-6
        )
        assert (np.sort(whole, axis=1) == np.sort(ids, axis=1)).mean() > 0.999


def test_scores_equal_pyod_knn(data):
    """PyOD's KNN (euclidean, k-th neighbour) gives the same scores as ours, up to the sign."""
    from pyod.models.knn import KNN as PyODKNN

    X_train, X_test, _ = data
    ours = KNN(metric="euclidean", aggregation="max", calibration_folds=0).fit(X_train)
    theirs = PyODKNN(n_neighbors=5, method="largest").fit(X_train)
    np.testing.assert_allclose(
        ours.score_samples(X_test), -theirs.decision_function(X_test), rtol=1e-6, atol=1e-6
    )


def test_more_neighbours_than_samples_is_a_clear_error(data):
    with pytest.raises(
        ValueError, match=r"k=10 needs at least 10 training samples, got n_samples=6"
    ):
        KNN(k=10, calibration_folds=0).fit(data[0][:6])
    with pytest.raises(ValueError, match="calibration_folds"):
        KNN(k=5, calibration_folds=5).fit(data[0][:6])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"k": 0}, "'k' parameter of KNN must be an int in the range"),
        ({"k": 2.5}, "'k' parameter of KNN must be an int"),
        ({"metric": "manhattan"}, "'metric' parameter of KNN must be a str among"),
        ({"aggregation": "median"}, "'aggregation' parameter of KNN must be a str among"),
        ({"index": "annoy"}, "'index' parameter of KNN must be a str among"),
        ({"coreset": 1.5}, "'coreset' parameter of KNN must be"),
        ({"coreset": 0}, "'coreset' parameter of KNN must be"),
    ],
)
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


def test_a_saved_model_with_an_unknown_metric_is_refused(data, tmp_path):
    """Issue 7: a model file naming an unknown metric was scored with euclidean distances."""
    import json

    det = KNN(metric="euclidean", calibration_folds=0).fit(data[0])
    path = det.save(tmp_path / "knn")
    head = path / "oneclass.json"
    text = head.read_text()
    assert '"metric": "euclidean"' in text
    head.write_text(text.replace('"metric": "euclidean"', '"metric": "manhattan"'))
    with pytest.raises(ValueError, match="metric"):
        oneclass.load(path)
    # and a detector whose metric is changed after fitting refuses to score
    det.set_params(metric="manhattan")
    with pytest.raises(ValueError, match="'metric' parameter"):
        det.score_samples(data[1][:3])
    assert json.loads(text)  # the file itself was valid JSON


def test_coreset_option_keeps_a_subset_of_the_training_rows(data):
    X_train, X_test, y_test = data
    det = KNN(coreset=0.2, calibration_folds=0, random_state=0).fit(X_train)
    assert det.reference_.shape == (60, X_train.shape[1])
    assert det.coreset_indices_.shape == (60,)
    full = KNN(calibration_folds=0).fit(X_train)
    assert (
        roc_auc_score(y_test, det.score_samples(X_test))
        > roc_auc_score(y_test, full.score_samples(X_test)) - 0.05
    )
    assert KNN(coreset=25, calibration_folds=0).fit(X_train).reference_.shape[0] == 25
    with pytest.raises(ValueError, match=r"coreset=0.01 keeps 3"):
        KNN(coreset=0.01, calibration_folds=0).fit(X_train)
