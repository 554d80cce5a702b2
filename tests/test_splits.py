"""Perceptual hashes, near-duplicate groups, group splits and leakage audits."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image, ImageEnhance
from sklearn.metrics import adjusted_rand_score

from oneclass.data.manifests import data_root
from oneclass.data.sources import FolderSource
from oneclass.data.splits import (
    group_split,
    hamming_distances,
    image_hash,
    leakage_audit,
    near_duplicate_groups,
    near_duplicate_pairs,
    perceptual_hashes,
)


def bits(*rows: str) -> np.ndarray:
    return np.array([[c == "1" for c in r] for r in rows])


def test_hamming_on_known_bits():
    h = bits("0" * 16, "1" + "0" * 15, "1" * 16, "0" * 8 + "1" * 8)
    d = hamming_distances(np.packbits(h, axis=1))
    assert d.tolist() == [[0, 1, 16, 8], [1, 0, 15, 9], [16, 15, 0, 8], [8, 9, 8, 0]]
    assert hamming_distances(h, h[:2]).shape == (4, 2)  # bool bits accepted too
    with pytest.raises(ValueError, match="hash lengths differ"):
        hamming_distances(np.zeros((2, 2), np.uint8), np.zeros((2, 10), np.uint8))
    with pytest.raises(ValueError, match="packed uint8"):
        hamming_distances(np.zeros((2, 2), np.int32))


def test_groups_single_linkage_and_order():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2, (3, 64)).astype(bool)
    a = base[0]
    b = a.copy()
    b[:3] ^= True  # d(a, b) = 3
    c = b.copy()
    c[3:6] ^= True  # d(b, c) = 3, d(a, c) = 6
    h = np.packbits(np.stack([base[1], a, base[2], c, b]), axis=1)
    groups = near_duplicate_groups(h, max_distance=3)
    assert groups.tolist() == [0, 1, 2, 1, 1]  # a-b-c chained; labels by first appearance
    assert near_duplicate_groups(h, max_distance=2).tolist() == [0, 1, 2, 3, 4]
    i, j, d = near_duplicate_pairs(h, max_distance=3)
    pairs = zip(i.tolist(), j.tolist(), d.tolist(), strict=True)
    assert sorted(pairs) == [(1, 4, 3), (3, 4, 3)]


def test_groups_vectorised_on_many_hashes():
    rng = np.random.default_rng(1)
    h = rng.integers(0, 2, (6000, 256)).astype(bool)
    h[5000:5100] = h[:100]  # 100 planted near-copies ...
    h[5000:5100, :5] ^= True  # ... at distance 5
    groups = near_duplicate_groups(np.packbits(h, axis=1), max_distance=10)
    assert len(np.unique(groups)) == 5900
    assert (groups[:100] == groups[5000:5100]).all()


def test_image_hash_methods():
    im = Image.radial_gradient("L").convert("RGB")
    assert image_hash(im).shape == (256,)
    assert image_hash(im, "phash", 8).shape == (64,)
    with pytest.raises(ValueError, match="unknown hash method"):
        image_hash(im, "md5")


def test_group_split_never_splits_a_group():
    groups = np.repeat(np.arange(40), np.arange(1, 41) % 7 + 1)  # sizes 1..7
    n = len(groups)
    for seed in range(5):
        tr, te = group_split(n, groups, test_size=0.3, seed=seed)
        assert np.intersect1d(groups[tr], groups[te]).size == 0
        assert sorted(np.r_[tr, te].tolist()) == list(range(n))
        assert abs(len(te) - round(0.3 * n)) <= 1
    a = group_split(n, groups, 0.3, seed=1)
    b = group_split(n, groups, 0.3, seed=1)
    c = group_split(n, groups, 0.3, seed=2)
    assert np.array_equal(a[1], b[1]) and not np.array_equal(a[1], c[1])
    ids = [f"img{k}" for k in range(n)]
    tr_ids, te_ids = group_split(ids, groups, test_size=20, seed=0)
    assert len(te_ids) == 20 and set(tr_ids).isdisjoint(te_ids) and tr_ids[0].startswith("img")
    tr, te = group_split(10, None, 0.5)
    assert len(tr) == len(te) == 5


def test_group_split_bad_input():
    with pytest.raises(ValueError, match="test_size"):
        group_split(10, None, 1.5)
    with pytest.raises(ValueError, match="3 entries for 10 samples"):
        group_split(10, [0, 1, 2], 0.5)
    with pytest.raises(ValueError, match="one group"):
        group_split(4, ["a"] * 4, 0.5)


def test_leakage_audit_on_images():
    rng = np.random.default_rng(3)
    images = [
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).resize(
            (128, 128), Image.Resampling.BICUBIC
        )
        for _ in range(4)
    ]
    near_copy = ImageEnhance.Brightness(images[2].resize((100, 100))).enhance(1.1)
    audit = leakage_audit(images[:3], [images[3], near_copy])
    assert list(audit.columns) == ["train_index", "test_index", "train_id", "test_id", "distance"]
    assert audit[["train_index", "test_index"]].values.tolist() == [[2, 1]]
    assert audit["distance"].iloc[0] <= 40
    assert leakage_audit(images[:2], images[3:]).empty


# --- the real Nic Cage crops ------------------------------------------------------------------


@pytest.fixture(scope="module")
def cage():
    try:
        root = data_root()
    except (ValueError, OSError) as exc:
        pytest.skip(str(exc))
    with open(root / "niccage" / "groups.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    items = {it.id: it for it in FolderSource(root / "niccage" / "crops")}
    ordered = [items[r["filename"]] for r in rows]
    truth = np.array([int(r["group"]) for r in rows])
    return ordered, truth, perceptual_hashes(ordered, workers=2), rows


def test_groups_reproduce_groups_csv(cage):
    items, truth, hashes, rows = cage
    assert hashes.shape == (318, 32)
    groups = near_duplicate_groups(hashes)
    assert len(np.unique(groups)) == len(np.unique(truth)) == 213
    assert adjusted_rand_score(truth, groups) == 1.0
    assert np.array_equal(groups, truth)  # even the numbering (order of first appearance)
    # the byte-identical copy is at distance 0 from its original
    index = {r["filename"]: k for k, r in enumerate(rows)}
    for r in rows:
        if r["exact_dup_of"]:
            pair = hashes[[index[r["filename"]], index[r["exact_dup_of"]]]]
            assert hamming_distances(pair)[0, 1] == 0


def test_group_split_on_cage_has_no_leak(cage):
    items, truth, hashes, _ = cage
    tr, te = group_split(len(items), truth, test_size=0.5, seed=0)
    assert abs(len(te) - 159) <= 1
    assert leakage_audit(hashes[tr], hashes[te]).empty
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(items))
    naive = leakage_audit(hashes[perm[:159]], hashes[perm[159:]])  # an ungrouped split leaks
    assert len(naive) > 10
    ids = leakage_audit([items[k] for k in perm[:20]], [items[k] for k in perm[20:60]])
    assert set(ids["train_id"]) <= {items[k].id for k in perm[:20]}
