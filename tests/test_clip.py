"""CLIP embedder: tiny random CLIP folders (both backends) loaded the way users load real ones."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from oneclass import make_embedder
from oneclass.embed.clip import OPEN_CLIP_CONFIG, ClipEmbedder, WeightsNotFoundError
from oneclass.embed.clip_random import TINY_OPEN_CLIP, save_random_clip

PROMPTS = ["a photo of Nicolas Cage", "a photo of a cat", "a landscape"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip")
    return {b: save_random_clip(root / b, backend=b) for b in ("open_clip", "transformers")}


@pytest.fixture(scope="module")
def images(data_root):
    files = sorted((data_root / "niccage" / "crops").glob("*.jpg"))[:3]
    bsds = sorted((data_root / "generic" / "bsds500").glob("*.jpg"))[:2]  # 481 x 321 photos
    return [Image.open(f).convert("RGB") for f in files + bsds]


@pytest.mark.parametrize("backend", ["open_clip", "transformers"])
def test_image_and_text_vectors(folders, images, backend):
    emb = ClipEmbedder(backend=backend, model_path=str(folders[backend]), batch_size=4)
    results = emb.embed(images, progress=False)
    assert emb.dim == 32 and emb.name.startswith(f"clip/{backend}/local/")
    X = np.stack([r.vectors[0] for r in results])
    assert X.shape == (5, 32) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    assert np.linalg.matrix_rank(X) == 5
    T = emb.embed_text(PROMPTS)
    assert T.shape == (3, 32) and T.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(T, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(T[0], T[1])
    np.testing.assert_allclose(emb.embed_text(PROMPTS[0]), T[:1], atol=1e-6)  # batch-invariant
    assert emb.size_hint == 64


def test_open_clip_vectors_equal_the_library_pipeline(folders, images):
    import open_clip
    import torch

    folder = folders["open_clip"]
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{folder}")
    with torch.inference_mode():
        img = model.encode_image(torch.stack([preprocess(im) for im in images]))
        txt = model.encode_text(tokenizer(PROMPTS))
    emb = ClipEmbedder(model_path=str(folder))
    ours = emb.embed_array(images, progress=False)
    np.testing.assert_allclose(ours, torch.nn.functional.normalize(img, dim=-1).numpy(), atol=1e-5)
    np.testing.assert_allclose(
        emb.embed_text(PROMPTS), torch.nn.functional.normalize(txt, dim=-1).numpy(), atol=1e-5
    )


def test_checkpoint_file_for_a_named_architecture(folders, images, tmp_path):
    import open_clip

    (tmp_path / "OneclassTinyCLIP.json").write_text(json.dumps(TINY_OPEN_CLIP))
    open_clip.add_model_config(tmp_path / "OneclassTinyCLIP.json")
    ckpt = folders["open_clip"] / "open_clip_model.safetensors"
    by_file = ClipEmbedder(model="OneclassTinyCLIP", pretrained=str(ckpt))
    by_folder = ClipEmbedder(model_path=str(folders["open_clip"]))
    assert by_file.name.startswith("clip/open_clip/OneclassTinyCLIP/sha256:")
    # the folder's preprocess config says 64 px, as does the architecture: same vectors
    np.testing.assert_allclose(
        by_file.embed_array(images, progress=False),
        by_folder.embed_array(images, progress=False),
        atol=1e-5,
    )


def test_name_pins_the_weights(folders, tmp_path):
    other = save_random_clip(tmp_path / "other", seed=1)
    a = ClipEmbedder(model_path=str(folders["open_clip"])).name
    assert a == ClipEmbedder(model_path=str(folders["open_clip"])).name
    assert a != ClipEmbedder(model_path=str(other)).name


def test_missing_weights_name_where_it_looked(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="allow_download") as err:
        _ = ClipEmbedder(model="ViT-B-32", pretrained="openai", cache_dir=str(tmp_path)).dim
    assert str(tmp_path) in str(err.value)
    with pytest.raises(WeightsNotFoundError, match="allow_download"):
        _ = ClipEmbedder(
            backend="transformers", model="openai/clip-vit-base-patch32", cache_dir=str(tmp_path)
        ).dim
    with pytest.raises(WeightsNotFoundError, match="tags"):
        _ = ClipEmbedder(pretrained="no-such-tag").name
    with pytest.raises(WeightsNotFoundError, match=OPEN_CLIP_CONFIG):
        _ = ClipEmbedder(model_path=str(tmp_path)).name


def test_wrong_folder_kind_and_bad_input(folders):
    with pytest.raises(WeightsNotFoundError, match="backend='transformers'"):
        _ = ClipEmbedder(model_path=str(folders["transformers"])).name
    with pytest.raises(WeightsNotFoundError, match="backend='open_clip'"):
        _ = ClipEmbedder(backend="transformers", model_path=str(folders["open_clip"])).name
    with pytest.raises(ValueError, match="unknown open_clip model"):
        _ = ClipEmbedder(model="ViT-Nope").name
    with pytest.raises(ValueError, match="backend"):
        _ = ClipEmbedder(backend="onnx").name
    emb = ClipEmbedder(model_path=str(folders["open_clip"]))
    with pytest.raises(ValueError, match="non-empty"):
        emb.embed_text(["ok", ""])
    with pytest.raises(ValueError, match="no prompts"):
        emb.embed_text([])


def test_registry_spec(folders):
    emb = make_embedder(f"clip:model_path={folders['transformers']},backend=transformers")
    assert isinstance(emb, ClipEmbedder) and emb.dim == 32


def test_a_tag_found_in_the_download_cache_is_used_offline(tmp_path):
    """``pretrained="openai"`` resolves to open_clip's cached download, with the tag's own
    preprocessing and QuickGELU, without loading or fetching anything."""
    (tmp_path / "ViT-B-32.pt").write_bytes(b"stand-in for the cached checkpoint")
    emb = ClipEmbedder(model="ViT-B-32", pretrained="openai", cache_dir=str(tmp_path))
    src = emb._resolve()
    assert src.checkpoint == str(tmp_path / "ViT-B-32.pt")
    assert src.kwargs["force_quick_gelu"] is True
    assert src.kwargs["force_preprocess_cfg"]["interpolation"] == "bicubic"
    assert emb.name == "clip/open_clip/ViT-B-32/openai"
