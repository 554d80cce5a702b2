"""Patch embedders through the one scoring path: every patch trains, the least in-class 1 % of
patches score the image, the threshold is set on image scores, and `score --maps` draws the
patch scores.

Real KolektorSDD images (normal commutator surfaces vs cracked ones).
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import oneclass
from oneclass.cli import main
from oneclass.embed import aggregate
from oneclass.embed.base import ImageEmbedding


@pytest.fixture(scope="module")
def kolektor(data_root):
    root = data_root / "kolektor_sdd"
    if not root.is_dir():
        pytest.skip("kolektor_sdd not in the shared data")
    return sorted((root / "normal").glob("*.jpg")), sorted((root / "defective").glob("*.jpg"))


def test_image_scores_from_rows_follow_the_kind():
    rows = np.array([0.5, 0.1, np.nan, 0.9, 0.3])
    owner = np.array([0, 0, 1, 1, 2])
    np.testing.assert_array_equal(
        aggregate.image_scores_from_rows(rows, owner, 4, "patch"), [0.1, 0.9, 0.3, np.nan]
    )
    np.testing.assert_array_equal(
        aggregate.image_scores_from_rows(rows, owner, 4, "face"), [0.5, 0.9, 0.3, np.nan]
    )


def test_a_patch_image_takes_the_mean_of_its_least_in_class_tail():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=250), rng.normal(size=40)  # 3 patches and 1 patch in the 1 % tail
    rule = aggregate.aggregation_for("patch")
    j, score = rule.reduce(a)
    assert j == int(np.argmin(a)) and score == pytest.approx(np.sort(a)[:3].mean())
    assert rule.reduce(b) == (int(np.argmin(b)), pytest.approx(b.min()))
    # calibration aggregates training rows by the same rule as scoring
    rows, owner = np.r_[a, b], np.r_[np.zeros(250, int), np.ones(40, int)]
    shuffled = rng.permutation(rows.size)
    np.testing.assert_allclose(
        aggregate.image_scores_from_rows(rows[shuffled], owner[shuffled], 2, "patch"),
        [np.sort(a)[:3].mean(), b.min()],
    )
    embs = [ImageEmbedding(a[:, None], grid=(25, 10)), ImageEmbedding(b[:, None], grid=(8, 5))]
    scored = aggregate.score_images(embs, "patch", lambda X: X[:, 0])
    np.testing.assert_allclose(scored.scores, [np.sort(a)[:3].mean(), b.min()])
    assert list(scored.decisive) == [int(np.argmin(a)), int(np.argmin(b))]


@pytest.mark.slow
def test_patch_pipeline_scores_maps_and_calibrates_per_image(kolektor, tmp_path):
    pytest.importorskip("oneclass.embed.anomaly_map")
    normal, defective = kolektor
    train = [str(p) for p in normal[:6]]
    model = oneclass.fit(
        "effnet-lite0-patches:size=128",
        "knn:k=1,calibration_folds=0",
        train,
        progress=False,
        cache=False,
    )
    assert len(model.detector_.calibration_scores_) == len(train)  # one per image, not patch
    assert "per image" in model.detector_.calibration_info_["method"]
    test = [str(p) for p in normal[6:8] + defective[:2]]
    details = model.score_details(test)
    for i in range(len(test)):
        scores, grid = details.patch_map(i)
        assert scores.size == grid[0] * grid[1]
        n = int(np.ceil(aggregate.PATCH_TAIL * scores.size))
        assert n > 1  # the tail, not the single least in-class patch
        assert details.table.score[i] == pytest.approx(np.sort(scores.ravel())[:n].mean())

    folder = tmp_path / "new"
    folder.mkdir()
    for p in test:
        shutil.copy(p, folder)
    path = model.save(tmp_path / "m")
    maps, out = tmp_path / "maps", tmp_path / "scores.csv"
    assert (
        main(
            [
                "-q",
                "score",
                "--model",
                str(path),
                str(folder),
                "--maps",
                str(maps),
                "--out",
                str(out),
                "--no-cache",
            ]
        )
        == 0
    )
    df = pd.read_csv(out)
    assert len(df) == 4 and (df.status == "ok").all()
    pngs = sorted(maps.glob("*.png"))
    assert len(pngs) == 4
    for png in pngs:  # <position>_<stem>.png, the size of its image
        with Image.open(png) as im, Image.open(folder / (png.stem.split("_", 1)[1] + ".jpg")) as o:
            assert im.size == o.size
