"""dlib-face: dlib's ResNet descriptors (run by torch) on real faces from the shared data."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("dlib")
pytest.importorskip("face_recognition_models")
pytest.importorskip("facenet_pytorch")

from oneclass.embed import faces as fl  # noqa: E402
from oneclass.embed.dlib_face import NORM_RANGE, DlibFaceEmbedder  # noqa: E402
from oneclass.embed.dlib_resnet import load_dlib_resnet, read_dlib_net  # noqa: E402
from oneclass.embed.registry import make_embedder  # noqa: E402

CAGE = [
    "102667226.jpg",
    "109537724.jpg",
    "161741832.jpg",
    "178670478.jpg",
    "533503766.jpg",
    "667870136.jpg",
]  # six different near-duplicate groups (groups.csv)
TRUMP = [
    "112270915.jpg",
    "501380192.jpg",
    "524993072.jpg",
    "614181114.jpg",
    "632909938.jpg",
    "801987348.jpg",
]
GLINT = [
    "Tom_Hanks",
    "Keanu_Reeves",
    "Will_Smith",
    "Hugh_Jackman",
    "Leonardo_DiCaprio",
    "Mark_Ruffalo",
]
NO_FACE = "generic/bsds500/100007.jpg"


def load(path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


@pytest.fixture(scope="module")
def embedder() -> DlibFaceEmbedder:
    return DlibFaceEmbedder()


@pytest.fixture(scope="module")
def cage_dir(data_root):
    return data_root / "niccage" / "crops"


def check_result(res, width: int, height: int) -> None:
    assert res.vectors.dtype == np.float32 and res.vectors.shape == (res.n_faces, 128)
    assert res.boxes.dtype == np.float32 and res.boxes.shape == (res.n_faces, 4)
    norms = np.linalg.norm(res.vectors, axis=1)
    assert np.all((norms > NORM_RANGE[0]) & (norms < NORM_RANGE[1])), norms
    b = res.boxes
    assert np.all((b[:, 0] >= 0) & (b[:, 1] >= 0) & (b[:, 2] <= width) & (b[:, 3] <= height))
    assert np.all((b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1]))


def test_torch_network_reproduces_dlib(cage_dir, data_root):
    """The torch port of dlib's network gives dlib's own descriptors on real aligned chips."""
    rec = fl.dlib_module().face_recognition_model_v1(fl.dlib_model_file("recognition"))
    chips = []
    for path in [cage_dir / CAGE[0], cage_dir / CAGE[1], data_root / "faces/trump" / TRUMP[0]]:
        arr = fl.to_rgb_array(load(path))
        chips += fl.dlib_chips(arr, fl.detect_hog(arr))
    assert len(chips) == 3
    torch = pytest.importorskip("torch")
    with torch.inference_mode():
        ours = load_dlib_resnet()(torch.from_numpy(np.stack(chips)).permute(0, 3, 1, 2).float())
    theirs = np.array([np.asarray(v) for v in rec.compute_face_descriptor(chips)])
    assert np.abs(ours.numpy() - theirs).max() < 1e-4


def test_reader_refuses_other_files(tmp_path):
    not_net = tmp_path / "shape.dat"
    not_net.write_bytes(open(fl.dlib_model_file("landmarks5"), "rb").read()[:4096])
    with pytest.raises(ValueError, match="shape.dat"):
        load_dlib_resnet(not_net)
    layers = read_dlib_net(fl.dlib_model_file("recognition"))
    assert [k for k, _ in layers[:5]] == ["input", "con", "affine", "relu", "max_pool"]
    assert layers[-1][1]["w"].shape == (256, 128)


def test_finds_faces_in_cage_crops(embedder, cage_dir):
    paths = sorted(cage_dir.glob("*.jpg"))[::5][:60]
    results = embedder.embed([load(p) for p in paths], progress=False)
    assert len(results) == 60
    assert sum(r.n_faces > 0 for r in results) >= 57  # >= 95 %
    for r in results:
        check_result(r, 256, 256)
    assert embedder.last_rate_ > 0


@pytest.mark.slow
def test_finds_faces_in_all_cage_crops(embedder, cage_dir):
    paths = sorted(cage_dir.glob("*.jpg"))
    assert len(paths) == 318
    results = embedder.embed([load(p) for p in paths], progress=False)
    assert sum(r.n_faces > 0 for r in results) >= 0.95 * len(paths)  # measured: 318 / 318


def test_same_person_is_closer(embedder, cage_dir, data_root):
    def vectors(paths):
        return embedder.embed_array([load(p) for p in paths], progress=False)

    cage = vectors([cage_dir / f for f in CAGE])
    others = np.concatenate(
        [
            vectors([data_root / "faces/trump" / f for f in TRUMP]),
            vectors([sorted((data_root / "faces/glint" / p).glob("*"))[0] for p in GLINT]),
        ]
    )
    same = np.linalg.norm(cage[:, None] - cage[None], axis=2)[np.triu_indices(len(cage), 1)]
    cross = np.linalg.norm(cage[:, None] - others[None], axis=2)
    # dlib's rule: the same person under 0.6 (measured: Cage-Cage <= 0.59, others >= 0.64)
    assert same.max() < 0.6 < cross.min()


def test_no_face_gives_an_empty_result(embedder, data_root):
    (res,) = embedder.embed_batch([load(data_root / NO_FACE)])
    assert res.n_faces == 0
    assert res.vectors.shape == (0, 128) and res.boxes.shape == (0, 4)
    with pytest.raises(ValueError, match="no face"):
        embedder.embed_array([load(data_root / NO_FACE)], progress=False)


def test_two_faces_two_vectors(embedder, cage_dir, data_root):
    left = load(cage_dir / CAGE[0])
    right = load(data_root / "faces/trump" / TRUMP[0])
    pair = Image.new("RGB", (512, 256))
    pair.paste(left, (0, 0))
    pair.paste(right, (256, 0))
    res_pair, res_left, res_right = embedder.embed_batch([pair, left, right])
    assert res_pair.n_faces == 2
    check_result(res_pair, 512, 256)
    order = np.argsort(res_pair.boxes[:, 0])
    assert res_pair.boxes[order[0], 2] <= 256 <= res_pair.boxes[order[1], 0]
    # each face keeps its identity: close to the same face embedded alone
    d_left = np.linalg.norm(res_pair.vectors[order[0]] - res_left.vectors[0])
    d_right = np.linalg.norm(res_pair.vectors[order[1]] - res_right.vectors[0])
    assert d_left < 0.25 and d_right < 0.25
    assert np.linalg.norm(res_pair.vectors[order[0]] - res_pair.vectors[order[1]]) > 0.6


def test_detectors_agree(embedder, cage_dir):
    """The same face found by HOG, MTCNN (box mapped to dlib's geometry) or the CNN detector
    gives nearly the same vector (same-person distances here are 0.36-0.59)."""
    img = load(cage_dir / CAGE[3])
    (hog,) = embedder.embed_batch([img])
    for detector in ("mtcnn", "cnn"):
        (other,) = DlibFaceEmbedder(detector=detector, threads=1).embed_batch([img])
        assert other.n_faces == 1
        assert np.linalg.norm(other.vectors[0] - hog.vectors[0]) < 0.2


def test_threads_do_not_change_results(cage_dir, data_root):
    """Faces split over 3 pool threads (uneven shares) give what one thread gives."""
    images = [load(cage_dir / f) for f in CAGE[:4]] + [load(data_root / NO_FACE)]
    one = DlibFaceEmbedder(threads=1).embed_batch(images)
    three = DlibFaceEmbedder(threads=3).embed_batch(images)
    for a, b in zip(one, three, strict=True):
        np.testing.assert_allclose(a.vectors, b.vectors, atol=1e-5)
        np.testing.assert_array_equal(a.boxes, b.boxes)


def test_dlib_backend_gives_the_same_vectors(embedder, cage_dir):
    img = load(cage_dir / CAGE[2])
    (ours,) = embedder.embed_batch([img])
    (theirs,) = DlibFaceEmbedder(backend="dlib", threads=1).embed_batch([img])
    np.testing.assert_allclose(ours.vectors, theirs.vectors, atol=1e-4)
    np.testing.assert_array_equal(ours.boxes, theirs.boxes)


def test_name_params_and_registry():
    e = make_embedder("dlib-face:detector=mtcnn,max_faces=3")
    assert isinstance(e, DlibFaceEmbedder) and e.kind == "face" and e.dim == 128
    assert (e.detector, e.max_faces, e.upsample) == ("mtcnn", 3, "auto")
    assert e.name == "dlib-face/resnet_v1+mtcnn[max=3]"
    assert DlibFaceEmbedder().name == "dlib-face/resnet_v1+hog"
    assert (
        DlibFaceEmbedder(upsample=1, num_jitters=5).name == "dlib-face/resnet_v1+hog[up=1,jitter=5]"
    )


def test_bad_options_raise_on_use():
    img = Image.new("RGB", (64, 64))
    for kwargs, message in [
        ({"detector": "haar"}, "haar"),
        ({"backend": "onnx"}, "backend"),
        ({"num_jitters": -1}, "num_jitters"),
        ({"min_face_size": 0}, "min_face_size"),
    ]:
        e = DlibFaceEmbedder(**kwargs)  # __init__ only stores
        with pytest.raises(ValueError, match=message):
            e.embed_batch([img])


def test_search_options_in_the_name():
    assert DlibFaceEmbedder(search="fast").name == "dlib-face/resnet_v1+hog[fast]"
    assert DlibFaceEmbedder(max_side=1024).name == "dlib-face/resnet_v1+hog[side=1024]"
    with pytest.raises(ValueError, match="search"):
        DlibFaceEmbedder(search="deep").embed_batch([Image.new("RGB", (64, 64))])


def test_large_image_gives_boxes_in_input_pixels(embedder, cage_dir):
    """A 6000 x 6000 image is searched and aligned at MAX_SIDE pixels (bounded memory); its box
    is reported in the input's pixels and its vector is that of the same face, small."""
    img = load(cage_dir / CAGE[0])
    big = img.resize((6000, 6000), Image.BILINEAR)
    small, large = embedder.embed_batch([img, big])
    assert small.n_faces == 1 and large.n_faces == 1
    np.testing.assert_allclose(large.boxes[0], small.boxes[0] * 6000 / 256, atol=6000 * 0.03)
    assert np.linalg.norm(large.vectors[0] - small.vectors[0]) < 0.3
