"""facenet: InceptionResnetV1 on MTCNN chips. The VGGFace2 weights are not on this machine, so
the tests save a randomly initialised network and load it through the same code path as real
weights, then run end to end on real faces."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
facenet_pytorch = pytest.importorskip("facenet_pytorch")

from oneclass.embed.facenet import (  # noqa: E402
    WEIGHT_FILES,
    FaceNetEmbedder,
    WeightsNotFoundError,
    load_state_dict,
)
from oneclass.embed.registry import make_embedder  # noqa: E402

NO_FACE = "generic/bsds500/100007.jpg"


class NotATensor:
    """Pickled into a weights file: ``weights_only`` loading must refuse it."""


@pytest.fixture(scope="module")
def hopper() -> Image.Image:
    cbook = pytest.importorskip("matplotlib.cbook")
    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
        return im.convert("RGB")


@pytest.fixture(scope="module")
def random_state() -> dict:
    torch.manual_seed(0)
    return facenet_pytorch.InceptionResnetV1(pretrained=None, classify=False).state_dict()


@pytest.fixture(scope="module")
def weights_pt(tmp_path_factory, random_state):
    path = tmp_path_factory.mktemp("facenet") / "random.pt"
    # official files also hold the classifier head: it must be dropped on loading
    torch.save({**random_state, "logits.weight": torch.zeros(3, 512)}, path)
    return path


@pytest.fixture(scope="module")
def embedder(weights_pt) -> FaceNetEmbedder:
    return FaceNetEmbedder(weights=weights_pt, device="cpu")


def test_random_weights_end_to_end(embedder, hopper):
    (res,) = embedder.embed_batch([hopper])
    assert res.n_faces == 1
    assert res.vectors.shape == (1, 512) and res.vectors.dtype == np.float32
    assert abs(np.linalg.norm(res.vectors[0]) - 1) < 1e-4
    x0, y0, x1, y1 = res.boxes[0]
    assert x0 < 265 < x1 and y0 < 230 < y1  # her face
    (again,) = embedder.embed_batch([hopper])
    np.testing.assert_allclose(again.vectors, res.vectors, atol=1e-5)
    assert re.fullmatch(r"facenet/file-[0-9a-f]{12}", embedder.name)


def test_safetensors_file_gives_the_same_vectors(tmp_path, random_state, embedder, hopper):
    from safetensors.torch import save_file

    path = tmp_path / "random.safetensors"
    save_file({k: v.contiguous() for k, v in random_state.items()}, str(path))
    other = FaceNetEmbedder(weights=path, device="cpu")
    np.testing.assert_allclose(
        other.embed_batch([hopper])[0].vectors, embedder.embed_batch([hopper])[0].vectors, atol=1e-5
    )
    assert other.name.startswith("facenet/file-") and other.name != embedder.name


def test_weights_found_in_torch_home(tmp_path, monkeypatch, weights_pt, embedder, hopper):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / WEIGHT_FILES["vggface2"]).symlink_to(weights_pt)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    e = make_embedder("facenet")
    assert isinstance(e, FaceNetEmbedder) and e.name == "facenet/vggface2"
    np.testing.assert_allclose(
        e.embed_batch([hopper])[0].vectors, embedder.embed_batch([hopper])[0].vectors, atol=1e-5
    )


def test_missing_weights_give_a_clear_error(tmp_path, monkeypatch, hopper):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsNotFoundError) as err:
        FaceNetEmbedder().embed_batch([hopper])
    msg = str(err.value)
    assert str(tmp_path / "checkpoints" / WEIGHT_FILES["vggface2"]) in msg
    assert "weights=" in msg and "allow_download=True" in msg
    assert isinstance(err.value, FileNotFoundError)
    with pytest.raises(WeightsNotFoundError, match="nowhere.pt"):
        FaceNetEmbedder(weights=tmp_path / "nowhere.pt").embed_batch([hopper])
    with pytest.raises(ValueError, match="unknown FaceNet weights 'imagenet'"):
        FaceNetEmbedder(pretrained="imagenet").embed_batch([hopper])


def test_unsafe_or_wrong_files_are_refused(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"conv": NotATensor()}, evil)
    with pytest.raises(ValueError, match="evil.pt"):
        load_state_dict(evil)
    tensor_only = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor_only)
    with pytest.raises(ValueError, match="not a state dict"):
        load_state_dict(tensor_only)
    other_net = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other_net)
    with pytest.raises(ValueError, match="not InceptionResnetV1 weights"):
        FaceNetEmbedder(weights=other_net).embed_batch([Image.new("RGB", (64, 64))])


def test_no_face_and_two_faces(embedder, data_root):
    with Image.open(data_root / NO_FACE) as im:
        (empty,) = embedder.embed_batch([im.convert("RGB")])
    assert empty.vectors.shape == (0, 512) and empty.boxes.shape == (0, 4)
    pair = Image.new("RGB", (512, 256))
    with (
        Image.open(data_root / "niccage/crops/102667226.jpg") as a,
        Image.open(data_root / "faces/trump/112270915.jpg") as b,
    ):
        pair.paste(a.convert("RGB"), (0, 0))
        pair.paste(b.convert("RGB"), (256, 0))
    (res,) = embedder.embed_batch([pair])
    assert res.n_faces == 2 and res.vectors.shape == (2, 512)
    assert sorted((res.boxes[:, 0] + res.boxes[:, 2]) / 2 < 256) == [False, True]


def test_hog_detector_option(weights_pt, hopper):
    e = FaceNetEmbedder(weights=weights_pt, detector="hog", margin=20, device="cpu")
    assert e.name.endswith("[hog,margin=20]")
    (res,) = e.embed_batch([hopper])
    assert res.n_faces == 1 and abs(np.linalg.norm(res.vectors[0]) - 1) < 1e-4
