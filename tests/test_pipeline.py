"""The Python API on real images: fit, score, save and load a whole pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import oneclass
from oneclass.pipeline import Pipeline


@pytest.fixture(scope="module")
def crops(data_root):
    cage = sorted((data_root / "niccage" / "crops").glob("*.jpg"))
    trump = sorted((data_root / "faces" / "trump").glob("*.jpg"))
    return cage, trump


def test_fit_score_save_load(tmp_path, crops):
    cage, trump = crops
    model = oneclass.fit("effnet-lite0", "mahalanobis", [str(p) for p in cage[:30]], progress=False)
    assert model.fit_report_["positives"] == {"images": 30, "used": 30, "no_face": 0, "failed": 0}
    test = [str(p) for p in cage[40:46] + trump[:6]]
    df = model.score(test)
    assert list(df.columns) == ["id", "path", "score", "p_value", "in_class", "status"]
    assert (df.status == "ok").all()
    assert df.score[:6].mean() > df.score[6:].mean()
    assert df.p_value.between(0, 1).all()
    assert (df.in_class == (df.score >= model.detector_.threshold_)).all()

    model.save(tmp_path / "m")
    loaded = oneclass.load(tmp_path / "m")
    assert isinstance(loaded, Pipeline) and loaded.embedder_name_ == model.embedder_name_
    np.testing.assert_array_equal(loaded.score(test).score, df.score)
    # PIL images in memory go straight to the embedder
    pil = [Image.open(p).convert("RGB") for p in test[:2]]
    np.testing.assert_allclose(loaded.score(pil).score, df.score[:2], rtol=1e-5)

    header = json.loads((tmp_path / "m" / "oneclass.json").read_text())
    header["embedder_name"] = "effnet-lite0/other-weights"
    (tmp_path / "m" / "oneclass.json").write_text(json.dumps(header))
    with pytest.raises(ValueError, match="fitted with embedder"):
        oneclass.load(tmp_path / "m").score(test[:1])


def test_binary_baseline_needs_negatives(crops):
    cage, trump = crops
    pos = [str(p) for p in cage[:16]]
    with pytest.raises(ValueError, match="binary baseline: give negatives"):
        Pipeline("effnet-lite0", "logistic", progress=False).fit(pos)
    model = Pipeline("effnet-lite0", "logistic", progress=False).fit(
        pos, [str(p) for p in trump[:16]]
    )
    df = model.score([str(cage[50]), str(trump[50])])
    assert df.score[0] > df.score[1]
