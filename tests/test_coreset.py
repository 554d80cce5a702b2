"""Greedy k-center coreset (PatchCore): the batched selection equals the one-at-a-time greedy."""

from __future__ import annotations

import numpy as np
import pytest

from oneclass.detect.coreset import coreset_size, greedy_coreset, random_projection


@pytest.fixture(scope="module")
def bank(cifar10_0) -> np.ndarray:
    """1500 real ResNet-18 vectors (512-d) of ADBench CIFAR10_0."""
    X, _ = cifar10_0
    return np.ascontiguousarray(X[np.random.default_rng(0).permutation(X.shape[0])[:1500]])


def one_at_a_time(X: np.ndarray, m: int, seed: int = 0, dim: int = 128) -> np.ndarray:
    """The textbook greedy k-center (PatchCore's loop): one pass over the bank per pick."""
    Z = random_projection(X, dim, seed).astype(np.float64)
    first = int(np.random.default_rng(seed).integers(len(Z)))
    chosen, d = [first], ((Z - Z[first]) ** 2).sum(1)
    while len(chosen) < m:
        j = int(d.argmax())
        chosen.append(j)
        d = np.minimum(d, ((Z - Z[j]) ** 2).sum(1))
    return np.sort(chosen)


@pytest.mark.parametrize("batch", [1, 16, 1024])
def test_batched_selection_is_the_greedy_one(bank, batch):
    np.testing.assert_array_equal(greedy_coreset(bank, 0.1, batch=batch), one_at_a_time(bank, 150))


def test_covers_the_bank_better_than_a_random_subset(bank):
    def radius(ids):  # the largest distance from a bank row to its nearest kept row
        X, C = bank.astype(np.float64), bank[ids].astype(np.float64)
        d = (X**2).sum(1)[:, None] - 2 * X @ C.T + (C**2).sum(1)[None, :]
        return float(np.sqrt(max(d.min(axis=1).max(), 0.0)))

    ids = greedy_coreset(bank, 100, seed=0)
    random_ids = np.random.default_rng(0).choice(len(bank), 100, replace=False)
    assert ids.shape == (100,) and np.unique(ids).size == 100
    assert radius(ids) < 0.9 * radius(random_ids)


def test_seeded(bank):
    a, b = greedy_coreset(bank, 0.05, seed=1), greedy_coreset(bank, 0.05, seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, greedy_coreset(bank, 0.05, seed=2))


def test_sizes_and_errors(bank):
    assert coreset_size(1000, 0.1) == 100 and coreset_size(1000, 1.0) == 1000
    assert coreset_size(1000, 0.0001) == 1 and coreset_size(1000, 5000) == 1000
    np.testing.assert_array_equal(greedy_coreset(bank[:10], 1.0), np.arange(10))
    for bad in (0, -3, 0.0, 1.5, True, "10%"):
        with pytest.raises(ValueError, match="coreset"):
            coreset_size(1000, bad)
    with pytest.raises(ValueError, match="non-empty 2-d"):
        greedy_coreset(np.zeros((0, 4)), 0.5)


def test_duplicate_rows_still_give_distinct_ids():
    X = np.repeat(np.eye(3, 8, dtype=np.float32), 20, axis=0)  # 3 distinct rows, 60 in all
    ids = greedy_coreset(X, 10, batch=4)
    assert ids.size == 10 and np.unique(ids).size == 10
    assert {tuple(r) for r in X[ids]} == {tuple(r) for r in X}  # every distinct row is kept
