"""EfficientNet-Lite0/Lite2 embedders on real images: vectors, preprocessing, optimised == plain."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from oneclass import make_embedder
from oneclass.embed.effnet import (
    EffNetLite0Embedder,
    EffNetLite2Embedder,
    EffNetLiteEmbedder,
    crop_resize,
    load_effnet_lite,
    load_effnet_lite0,
)

DOG_CLASSES = range(151, 269)  # ImageNet-1k dog breeds


@pytest.fixture(scope="module")
def crops(data_root):
    files = sorted((data_root / "niccage" / "crops").glob("*.jpg"))[:6]
    return [Image.open(f).convert("RGB") for f in files]


@pytest.fixture(scope="module")
def cifar_dogs(data_root):
    with zipfile.ZipFile(data_root / "cifar10" / "cifar10_subset.zip") as zf:
        names = sorted(n for n in zf.namelist() if n.startswith("cifar10_jpg/test/dog/"))[:24]
        return [Image.open(io.BytesIO(zf.read(n))).convert("RGB") for n in names]


@pytest.fixture(scope="module")
def plain():
    return EffNetLite0Embedder(optimize="none", workers=0)


@pytest.fixture(scope="module")
def fast():
    return EffNetLite0Embedder(optimize="jit")


def _matrix(results) -> np.ndarray:
    return np.stack([r.vectors[0] for r in results])


def test_vectors_of_real_images(fast, crops, cifar_dogs):
    results = fast.embed_batch(crops + cifar_dogs[:2])  # 256 px crops and 32 px CIFAR images
    assert fast.name == "effnet-lite0/imagenet" and fast.dim == 1280
    for r in results:
        assert r.vectors.shape == (1, 1280) and r.vectors.dtype == np.float32
        assert r.boxes is None and np.isfinite(r.vectors).all()
    X = _matrix(results)
    assert (X >= -1e-6).all()  # pooled ReLU6 activations
    assert np.linalg.matrix_rank(X) == len(results)  # different images, different vectors


def test_optimised_model_matches_plain_model(plain, fast, crops, cifar_dogs):
    images = crops + cifar_dogs[:4]
    a, b = _matrix(plain.embed_batch(images)), _matrix(fast.embed_batch(images))
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() > 0.999


def test_features_are_the_classifier_input(plain, cifar_dogs):
    """The vectors are the pooled penultimate layer: the wheel's ImageNet classifier head on
    them recognises CIFAR-10 dogs as dog breeds, which also checks the preprocessing."""
    fc = load_effnet_lite0()._fc
    X = _matrix(plain.embed_batch(cifar_dogs))
    logits = X @ fc.weight.detach().numpy().T + fc.bias.detach().numpy()
    top1 = logits.argmax(1)
    assert np.mean([t in DOG_CLASSES for t in top1]) >= 0.5


def test_preprocessing_is_centre_crop_of_shorter_side():
    # a wide image whose middle square is white and its sides black: the crop sees only white
    a = np.zeros((100, 300, 3), np.uint8)
    a[:, 100:200] = 255
    out = crop_resize(Image.fromarray(a))
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    assert out.min() >= 250
    gray = crop_resize(Image.fromarray(a[..., 0], "L"))  # grayscale is converted
    assert gray.shape == (224, 224, 3)


def test_bad_parameters_and_empty_batch(plain):
    assert plain.embed_batch([]) == []
    with pytest.raises(ValueError, match="optimize"):
        EffNetLite0Embedder(optimize="fastest").embed_batch([Image.new("RGB", (8, 8))])
    with pytest.raises(ValueError, match="precision"):
        EffNetLite0Embedder(precision="int4").embed_batch([Image.new("RGB", (8, 8))])
    assert EffNetLite0Embedder(precision="bf16").name != plain.name  # own cache key


def test_registry_builds_it():
    emb = make_embedder("effnet-lite0:batch_size=8,optimize=none")
    assert isinstance(emb, EffNetLite0Embedder) and emb.batch_size == 8


def test_power_normalisation_is_the_signed_root_with_its_own_name(data_root):
    img = Image.open(sorted((data_root / "niccage" / "crops").glob("*.jpg"))[0]).convert("RGB")
    raw, root = EffNetLite0Embedder(), EffNetLite0Embedder(power=0.5)
    assert root.name != raw.name and root.name.endswith("+pow0.5")
    a = raw.embed_batch([img])[0].vectors
    b = root.embed_batch([img])[0].vectors
    np.testing.assert_allclose(b, np.sign(a) * np.sqrt(np.abs(a)), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="power"):
        EffNetLite0Embedder(power=0).embed_batch([img])


def test_lite2_is_the_same_embedder_at_260_px(cifar_dogs, crops):
    """EfficientNet-Lite2 (its own wheel): 260 px input, own name, optimised == plain, and its
    features are its ImageNet classifier's input (CIFAR-10 dogs come out as dog breeds)."""
    plain2 = make_embedder("effnet-lite2:optimize=none")
    assert isinstance(plain2, EffNetLite2Embedder) and isinstance(plain2, EffNetLiteEmbedder)
    assert plain2.name == "effnet-lite2/imagenet" and plain2.dim == 1280
    assert plain2.image_size == 260 and plain2.size_hint == 292
    assert plain2.preprocess(crops[:1]).shape == (1, 3, 260, 260)
    X = _matrix(plain2.embed_batch(cifar_dogs[:12]))
    fc = load_effnet_lite("lite2")._fc
    top1 = (X @ fc.weight.detach().numpy().T + fc.bias.detach().numpy()).argmax(1)
    assert np.mean([t in DOG_CLASSES for t in top1]) >= 0.5
    fast2 = EffNetLite2Embedder(power=0.5)
    assert fast2.name == "effnet-lite2/imagenet+pow0.5"
    Y = _matrix(fast2.embed_batch(cifar_dogs[:4]))
    a = np.sign(X[:4]) * np.sqrt(np.abs(X[:4]))
    cos = (a * Y).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(Y, axis=1)
    assert cos.min() > 0.999
    with pytest.raises(ValueError, match="variant"):
        EffNetLiteEmbedder(variant="lite9").embed_batch([Image.new("RGB", (8, 8))])
