"""Embedders inside pipelines: stateful ones saved in the model folder, Embedder objects saved as
specs, and the inputs every embedder takes (paths, PIL images, numpy arrays)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np
import pytest
from PIL import Image

import oneclass
from oneclass.data.errors import ImageLoadError
from oneclass.embed.base import Embedder, EmbedderState, ImageEmbedding
from oneclass.embed.registry import EMBEDDERS, embedder_spec
from oneclass.persist import EMBEDDER_CONFIG, EMBEDDER_TENSORS, HEADER, ModelFileError
from oneclass.pipeline import Pipeline


class Projection(Embedder):
    """A small stateful embedder: 16 x 16 grey pixels times a learnt (here: seeded) matrix."""

    kind = "image"

    def __init__(self, *, tensors: dict, size: int = 16, batch_size: int = 8):
        self.tensors = tensors
        self.size = size
        self.batch_size = batch_size

    @property
    def name(self) -> str:
        w = self.tensors["w"].numpy()
        return f"test-projection/{hashlib.sha256(w.tobytes()).hexdigest()[:12]}"

    @property
    def dim(self) -> int:
        return int(self.tensors["w"].shape[1])

    def embed_batch(self, images: Sequence[Image.Image]) -> list[ImageEmbedding]:
        w = self.tensors["w"].numpy()
        out = []
        for im in images:
            x = np.asarray(im.convert("L").resize((self.size, self.size)), np.float32) / 255
            out.append(ImageEmbedding((x.reshape(1, -1) @ w).astype(np.float32)))
        return out

    def get_state(self) -> EmbedderState:
        return EmbedderState({"kind": "test-projection", "size": self.size}, dict(self.tensors))

    @classmethod
    def from_state(cls, state: EmbedderState, **params) -> Projection:
        return cls(tensors=dict(state.tensors), size=int(state.config["size"]), **params)


@pytest.fixture
def projection():
    import torch

    EMBEDDERS.register("test-projection", Projection)
    w = torch.from_numpy(np.random.default_rng(0).normal(size=(256, 24)).astype(np.float32))
    yield Projection(tensors={"w": w})
    EMBEDDERS.unregister("test-projection")


@pytest.fixture(scope="module")
def crops(data_root):
    cage = [str(p) for p in sorted((data_root / "niccage" / "crops").glob("*.jpg"))]
    trump = [str(p) for p in sorted((data_root / "faces" / "trump").glob("*.jpg"))]
    return cage, trump


def test_a_stateful_embedder_is_saved_in_the_model_and_restored(projection, crops, tmp_path):
    cage, trump = crops
    model = oneclass.fit(projection, "knn:k=3", cage[:30], progress=False, cache=False)
    test = cage[40:44] + trump[:4]
    before = model.score(test)
    path = model.save(tmp_path / "m")
    header = json.loads((path / HEADER).read_text())
    assert header["embedder"] == {"state": "test-projection"}
    assert set(header["files"]) >= {EMBEDDER_CONFIG, EMBEDDER_TENSORS}
    assert (
        header["files"][EMBEDDER_TENSORS]
        == hashlib.sha256((path / EMBEDDER_TENSORS).read_bytes()).hexdigest()
    )
    loaded = oneclass.load(path, embedder_options={"batch_size": 2}, cache=False)
    assert isinstance(loaded.embedder_, Projection) and loaded.embedder_.batch_size == 2
    assert loaded.embedder_.name == projection.name
    np.testing.assert_array_equal(loaded.score(test).score, before.score)

    data = bytearray((path / EMBEDDER_TENSORS).read_bytes())
    data[-3] ^= 0xFF
    (path / EMBEDDER_TENSORS).write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=f"{EMBEDDER_TENSORS}: checksum mismatch"):
        oneclass.load(path)


def test_an_embedder_object_saves_a_spec_that_load_rebuilds(crops, tmp_path):
    cage, trump = crops
    emb = oneclass.make_embedder("effnet-lite0", power=0.5, batch_size=8)
    assert embedder_spec(emb) == "effnet-lite0:power=0.5"
    model = oneclass.fit(emb, "knn:k=3", cage[:12], progress=False, cache=False)
    path = model.save(tmp_path / "m")
    assert json.loads((path / HEADER).read_text())["embedder"] == "effnet-lite0:power=0.5"
    loaded = oneclass.load(path, cache=False)
    test = [cage[50], trump[0]]
    np.testing.assert_allclose(loaded.score(test).score, model.score(test).score, rtol=1e-5)


def test_an_unregistered_embedder_object_cannot_be_saved(projection, crops, tmp_path):
    class Unlisted(Projection):
        def get_state(self):
            return None

    emb = Unlisted(tensors=projection.tensors)
    model = oneclass.fit(emb, "knn:k=3", crops[0][:8], progress=False, cache=False)
    with pytest.raises(ValueError, match="not a registered embedder"):
        model.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_embedders_take_paths_pil_images_and_arrays(crops, tmp_path):
    cage, _ = crops
    emb = oneclass.make_embedder("effnet-lite0")
    pil = Image.open(cage[0]).convert("RGB")
    arr = np.asarray(pil)
    vecs = emb.embed_array([cage[0], pil, arr, arr.astype(np.float32) / 255.0], progress=False)
    assert vecs.shape == (4, 1280)
    np.testing.assert_allclose(vecs[1], vecs[2], rtol=1e-6)
    np.testing.assert_allclose(vecs[0], vecs[1], atol=1e-3)
    np.testing.assert_allclose(vecs[3], vecs[2], atol=1e-3)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really")
    with pytest.raises(ImageLoadError, match="broken.jpg"):
        emb.embed([cage[0], str(bad)], progress=False)
    with pytest.raises(ValueError, match=r"image\[0\]: an array of shape \(5,\) is not an image"):
        emb.embed([np.zeros(5)], progress=False)


def test_pipelines_score_arrays_and_pil_images_and_name_ids_uniquely(projection, crops, tmp_path):
    cage, _ = crops
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, src in ((a, cage[0]), (b, cage[1])):
        folder.mkdir()
        (folder / "same.jpg").write_bytes(open(src, "rb").read())
    model = oneclass.fit(projection, "knn:k=3", cage[:20], progress=False, cache=False)
    pil = Image.open(cage[2]).convert("RGB")
    df = model.score([str(a), str(b), pil, np.asarray(pil), cage[3], cage[3]])
    assert df["id"].is_unique, df["id"].tolist()
    assert (df["status"] == "ok").all()
    assert df.score[2] == pytest.approx(df.score[3])


def test_library_calls_use_the_embedding_cache_by_default(projection, crops, tmp_path, monkeypatch):
    monkeypatch.setenv("ONECLASS_CACHE", str(tmp_path / "cache"))
    model = oneclass.fit(projection, "knn:k=3", crops[0][:10], progress=False, cache=True)
    assert model.cache is True and Pipeline(projection, "knn").cache is True
    assert (tmp_path / "cache" / "embeddings.sqlite").is_file(), "the cache was not written"
