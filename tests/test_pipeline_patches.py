"""Patch embedders through the one scoring path: every patch trains, the least in-class patch
scores the image, the threshold is set on image scores, and `score --maps` draws the patch scores.

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
        assert details.table.score[i] == pytest.approx(scores.min())

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
