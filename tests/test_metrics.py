"""oneclass.metrics against scikit-learn and hand-worked cases, on real detector scores."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from oneclass import metrics
from oneclass.metrics import METRIC_KEYS, bootstrap_auc, evaluate


@pytest.fixture(scope="module")
def real_scores(cifar10_0):
    """Labels and in-class scores on ADBench CIFAR10_0: minus the distance to the training mean."""
    X, y = cifar10_0
    rng = np.random.default_rng(0)
    inclass = np.flatnonzero(y == 1)
    train = rng.choice(inclass, 1000, replace=False)
    test = np.setdiff1d(np.arange(y.size), train)
    centre = X[train].mean(axis=0)
    scores = -np.linalg.norm(X[test] - centre, axis=1).astype(np.float64)
    return y[test], scores


def roc_tpr_at_fpr(y, s, fpr):
    """Reference: the highest TPR on sklearn's ROC curve whose FPR does not exceed ``fpr``."""
    f, t, _ = roc_curve(y, s, drop_intermediate=False)
    return t[f <= fpr + 1e-12].max()


def roc_fpr_at_tpr(y, s, tpr):
    """Reference: the lowest FPR on sklearn's ROC curve whose TPR reaches ``tpr``."""
    f, t, _ = roc_curve(y, s, drop_intermediate=False)
    return f[t >= tpr - 1e-12].min()


def test_evaluate_matches_sklearn_on_real_scores(real_scores):
    y, s = real_scores
    out = evaluate(y, s, n_boot=200, seed=0)
    assert tuple(out) == METRIC_KEYS
    assert out["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert out["ap"] == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert out["tpr_at_fpr1"] == pytest.approx(roc_tpr_at_fpr(y, s, 0.01), abs=1e-12)
    assert out["tpr_at_fpr5"] == pytest.approx(roc_tpr_at_fpr(y, s, 0.05), abs=1e-12)
    assert out["fpr_at_tpr95"] == pytest.approx(roc_fpr_at_tpr(y, s, 0.95), abs=1e-12)
    assert (out["n_pos"], out["n_neg"]) == (int(y.sum()), int((y == 0).sum()))
    assert out["auc_lo"] < out["auc"] < out["auc_hi"]
    # a real signal: the class centre separates CIFAR airplanes from the other classes
    assert 0.6 < out["auc"] < 1.0


def test_operating_points_with_ties_match_roc_curve():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    s = np.round(rng.normal(size=500) + y, 1)  # many ties
    for f in (0.0, 0.01, 0.05, 0.2):
        assert metrics.tpr_at_fpr(y, s, f) == pytest.approx(roc_tpr_at_fpr(y, s, f))
    for t in (0.5, 0.95, 1.0):
        assert metrics.fpr_at_tpr(y, s, t) == pytest.approx(roc_fpr_at_tpr(y, s, t))


def test_hand_worked_example():
    y = np.array([1, 1, 1, 0, 0])
    s = np.array([0.9, 0.8, 0.3, 0.5, 0.1])
    # pairs (pos > neg): 0.9 > both, 0.8 > both, 0.3 > 0.1 only: 5 of 6
    assert metrics.roc_auc(y, s) == pytest.approx(5 / 6)
    # FPR 0 allows no negative: threshold just above 0.5 keeps 0.9 and 0.8
    assert metrics.tpr_at_fpr(y, s, 0.0) == pytest.approx(2 / 3)
    # TPR 1 needs threshold 0.3, which lets 0.5 through: FPR 1/2
    assert metrics.fpr_at_tpr(y, s, 1.0) == pytest.approx(0.5)


def test_direction_follows_the_score_convention():
    y = np.array([1, 1, 0, 0])
    assert metrics.roc_auc(y, [4.0, 3.0, 2.0, 1.0]) == 1.0  # higher score = more in-class
    assert metrics.roc_auc(y, [1.0, 2.0, 3.0, 4.0]) == 0.0


def test_bootstrap_matches_a_direct_resample(real_scores):
    """The vectorised bootstrap agrees with resampling and calling sklearn, in distribution."""
    y, s = real_scores
    pos, neg = s[y == 1], s[y == 0]
    rng = np.random.default_rng(1)
    direct = []
    for _ in range(150):
        p = rng.choice(pos, pos.size)
        n = rng.choice(neg, neg.size)
        direct.append(roc_auc_score(np.r_[np.ones(p.size), np.zeros(n.size)], np.r_[p, n]))
    fast = bootstrap_auc(y, s, n_boot=2000, seed=0)
    assert fast.mean() == pytest.approx(np.mean(direct), abs=0.004)
    assert fast.std() == pytest.approx(np.std(direct), rel=0.2)  # 150 direct draws: +-6% s.e.
    assert fast.mean() == pytest.approx(roc_auc_score(y, s), abs=0.003)


def test_bootstrap_single_resample_is_exact_auc_of_that_resample():
    """With one value per class the resample is the data itself: its AUC is exact, ties too."""
    y = np.array([1, 0, 1, 0])
    s = np.array([2.0, 2.0, 2.0, 2.0])
    assert np.all(bootstrap_auc(y, s, n_boot=50, seed=0) == 0.5)
    y = np.array([1, 0])
    assert np.all(bootstrap_auc(y, [1.0, 0.0], n_boot=20, seed=0) == 1.0)


def test_bootstrap_is_seeded_and_stratified(real_scores):
    y, s = real_scores
    a = bootstrap_auc(y, s, n_boot=100, seed=7)
    assert np.array_equal(a, bootstrap_auc(y, s, n_boot=100, seed=7))
    assert not np.array_equal(a, bootstrap_auc(y, s, n_boot=100, seed=8))
    # the CI itself barely depends on the seed
    lo1, hi1 = metrics.auc_ci(y, s, n_boot=1000, seed=1)
    lo2, hi2 = metrics.auc_ci(y, s, n_boot=1000, seed=2)
    assert lo1 == pytest.approx(lo2, abs=0.01) and hi1 == pytest.approx(hi2, abs=0.01)


def test_bootstrap_keeps_both_classes_in_every_resample():
    """Stratified: one positive above all negatives stays in every resample, so every AUC is 1."""
    y = np.r_[1, np.zeros(50, dtype=int)]
    s = np.r_[100.0, np.arange(50.0)]
    assert np.all(bootstrap_auc(y, s, n_boot=500, seed=0) == 1.0)


def test_bootstrap_of_ten_thousand_scores_is_vectorised():
    """1000 resamples of 10k scores: one call, the right shape and spread (binormal, d' = 1)."""
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(5000, dtype=int), np.zeros(5000, dtype=int)]
    s = rng.normal(size=10_000) + y
    aucs = bootstrap_auc(y, s, n_boot=1000, seed=0)
    assert aucs.shape == (1000,)
    # the AUC's standard error here is sqrt(Var Phi(X+)/5000 + Var Phi(1-X-)/5000) = 0.00472
    # (X+ ~ N(1, 1), X- ~ N(0, 1)); the bootstrap must reproduce it (+-10%: 1000 resamples)
    assert aucs.std() == pytest.approx(0.00472, rel=0.1)
    assert aucs.mean() == pytest.approx(roc_auc_score(y, s), abs=0.001)


def test_no_ci_when_n_boot_is_zero(real_scores):
    y, s = real_scores
    out = evaluate(y, s, n_boot=0)
    assert np.isnan(out["auc_lo"]) and np.isnan(out["auc_hi"])


@pytest.mark.parametrize(
    ("y", "s", "match"),
    [
        ([1, 1, 1], [0.1, 0.2, 0.3], "only in-class"),
        ([0, 0], [0.1, 0.2], "only not-in-class"),
        ([1, 0, 2], [0.1, 0.2, 0.3], "labels must be"),
        ([1, 0], [0.1, 0.2, 0.3], "2 labels for 3 scores"),
        ([1, 0], [0.1, np.nan], "non-finite"),
        ([1, 0], [np.inf, 0.0], "non-finite"),
    ],
)
def test_bad_input_errors(y, s, match):
    with pytest.raises(ValueError, match=match):
        evaluate(y, s)


def test_bad_options():
    y, s = [1, 0], [1.0, 0.0]
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_auc(y, s, n_boot=-1)
    with pytest.raises(ValueError, match="level"):
        metrics.auc_ci(y, s, level=1.5)
    with pytest.raises(ValueError, match="target FPR"):
        metrics.tpr_at_fpr(y, s, 1.0)
