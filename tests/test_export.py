"""ONNX export and the onnxruntime path, on real images with the wheel-shipped EfficientNet."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

pytest.importorskip("onnxruntime", reason="the ONNX runtime needs the [scale] extra")

import oneclass  # noqa: E402
from oneclass.cli import main  # noqa: E402
from oneclass.embed.onnx_runtime import OnnxEmbedder  # noqa: E402
from oneclass.embed.registry import make_embedder  # noqa: E402
from oneclass.export import export_embedder, export_model  # noqa: E402


@pytest.fixture(scope="module")
def images(data_root):
    cage = sorted((data_root / "niccage" / "crops").glob("*.jpg"))
    bsds = sorted((data_root / "generic" / "bsds500").glob("*.jpg"))
    return [str(p) for p in cage[:10]], [str(p) for p in cage[80:86] + bsds[20:26]]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_onnx_vectors_equal_torch(images, tmp_path):
    base = make_embedder("effnet-lite0:power=0.5")
    path = export_embedder(base, tmp_path / "net.onnx")
    pil = [Image.open(p).convert("RGB") for p in images[1][:6]]
    torch_vecs = base.embed_array(pil, progress=False)
    onnx_vecs = OnnxEmbedder(base, path).embed_array(pil, progress=False)
    assert cosines(torch_vecs, onnx_vecs).min() >= 0.9999
    int8 = OnnxEmbedder(
        base, export_embedder(base, tmp_path / "q.onnx", precision="int8"), precision="int8"
    )
    assert int8.name.endswith("+int8") and int8.name != base.name
    assert cosines(torch_vecs, int8.embed_array(pil, progress=False)).min() > 0.9


def test_export_then_score_with_onnx_runtime(images, tmp_path, monkeypatch):
    monkeypatch.setenv("ONECLASS_CACHE", str(tmp_path / "cache"))
    train, test = images
    model = tmp_path / "model"
    oneclass.fit("effnet-lite0", "knn:k=3", train, progress=False).save(model)
    assert main(["-q", "export", "--model", str(model), "--out", str(tmp_path / "m.onnx")]) == 0
    info = json.loads((tmp_path / "m.json").read_text())
    assert info["onnx"] == "m.onnx" and (tmp_path / "m.model" / "oneclass.json").is_file()
    assert info["preprocessing"]["image_size"] == 224
    torch_csv, onnx_csv = tmp_path / "torch.csv", tmp_path / "onnx.csv"
    assert main(["-q", "score", "--model", str(model), *test, "--out", str(torch_csv)]) == 0
    assert (
        main(
            [
                "-q",
                "score",
                "--model",
                str(model),
                *test,
                "--runtime",
                "onnx",
                "--out",
                str(onnx_csv),
            ]
        )
        == 0
    )
    a, b = pd.read_csv(torch_csv), pd.read_csv(onnx_csv)
    assert list(a.path) == list(b.path)
    assert np.max(np.abs(a.score - b.score)) <= 1e-2 * a.score.std()
    assert (a.in_class == b.in_class).all()


def test_face_models_are_refused_with_the_reason(tmp_path):
    with pytest.raises(NotImplementedError, match="face detector"):
        export_embedder(make_embedder("dlib-face"), tmp_path / "f.onnx")
    assert not (tmp_path / "f.onnx").exists()


def test_export_refuses_a_non_model_folder(tmp_path):
    (tmp_path / "m.model").mkdir()
    (tmp_path / "m.model" / "mine.txt").write_text("user data")
    (tmp_path / "model").mkdir()
    with pytest.raises(Exception):  # noqa: B017 - not a model folder: refused, whatever the type
        export_model(tmp_path / "model", tmp_path / "m.onnx")
    assert (tmp_path / "m.model" / "mine.txt").read_text() == "user data"
