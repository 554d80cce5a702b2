"""Face finding and alignment (oneclass.embed.faces) on real images.

Images: Grace Hopper's portrait (shipped in the matplotlib wheel; scikit-image is not installed),
the shared Cage/Trump crops and a BSDS500 landscape without people.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("dlib")
pytest.importorskip("facenet_pytorch")

from oneclass.embed import faces as fl  # noqa: E402

NO_FACE = "generic/bsds500/100007.jpg"  # a landscape: no detector finds a face in it
CAGE = "niccage/crops/102667226.jpg"
TRUMP = "faces/trump/112270915.jpg"


@pytest.fixture(scope="module")
def hopper() -> np.ndarray:
    cbook = pytest.importorskip("matplotlib.cbook")
    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return fl.to_rgb_array(Image.open(path))


def rgb(data_root, rel: str) -> np.ndarray:
    return fl.to_rgb_array(Image.open(data_root / rel))


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


def contains(box, x: float, y: float) -> bool:
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


@pytest.fixture(scope="module")
def pair(data_root) -> np.ndarray:
    """Cage and Trump side by side (512 x 256): two different faces."""
    return np.ascontiguousarray(np.concatenate([rgb(data_root, CAGE), rgb(data_root, TRUMP)],
                                               axis=1))


@pytest.fixture(scope="module")
def hopper_mtcnn(hopper) -> list[fl.Face]:
    (faces,) = fl.detect_mtcnn([hopper])
    return faces


def test_mtcnn_finds_the_face_in_hopper(hopper_mtcnn):
    faces = hopper_mtcnn
    assert len(faces) == 1
    face = faces[0]
    assert face.detector == "mtcnn" and face.score > 0.99
    assert contains(face.box, 265, 230)  # between her eyes and mouth
    assert 120 < face.box[2] - face.box[0] < 260


def test_hog_agrees_with_mtcnn(hopper, hopper_mtcnn):
    mt = hopper_mtcnn
    for upsample in ("auto", 1):
        hog = fl.detect_hog(hopper, upsample=upsample)
        assert len(hog) == 1 and hog[0].detector == "hog"
        assert iou(hog[0].box, fl.dlib_box(mt[0])) > 0.6


def test_mtcnn_landmarks_give_dlib_boxes(hopper, hopper_mtcnn):
    (face,) = hopper_mtcnn
    assert len(face.landmarks) == 5
    assert all(contains(face.box, x, y) for x, y in face.landmarks)
    (left_eye, right_eye, nose, mouth_left, mouth_right) = face.landmarks
    assert left_eye[0] < nose[0] < right_eye[0] and nose[1] < min(mouth_left[1], mouth_right[1])
    (hog,) = fl.detect_hog(hopper, upsample=1)
    from_landmarks = fl.dlib_box(face)
    from_box = fl.dlib_box(fl.Face(face.box, face.score, "mtcnn"))
    assert iou(from_landmarks, hog.box) > 0.75 and iou(from_box, hog.box) > 0.6


def test_cnn_detector(data_root):
    for rel in (CAGE, "faces/trump/484129288.jpg"):  # the second one HOG misses
        arr = rgb(data_root, rel)
        (cnn,) = fl.detect_cnn(arr)
        ((mt,),) = fl.detect_mtcnn([arr])
        assert cnn.detector == "cnn" and iou(cnn.box, fl.dlib_box(mt)) > 0.6


def test_no_face_in_a_landscape(data_root):
    arr = rgb(data_root, NO_FACE)
    assert fl.detect_hog(arr) == []
    assert fl.detect_hog(arr, upsample=1) == []
    assert fl.detect_mtcnn([arr]) == [[]]
    assert fl.find_faces([arr]) == [[]]
    assert fl.clipped_boxes([], *arr.shape[1::-1]).shape == (0, 4)


@pytest.mark.parametrize("detector", ["hog", "mtcnn"])
def test_two_faces_side_by_side(pair, detector):
    (faces,) = fl.find_faces([pair], detector=detector)
    assert len(faces) == 2
    assert faces[0].area >= faces[1].area
    centres = sorted((f.box[0] + f.box[2]) / 2 for f in faces)
    assert centres[0] < 256 < centres[1]
    (one,) = fl.find_faces([pair], detector=detector, max_faces=1)
    assert one == faces[:1]


def test_min_face_size(pair):
    small = np.asarray(Image.fromarray(pair).resize((256, 128), Image.BILINEAR))
    assert fl.find_faces([small], min_face_size=150) == [[]]
    (faces,) = fl.find_faces([small], min_face_size=40)
    assert len(faces) == 2 and all(f.size >= 0.9 * 40 for f in faces)


def test_mtcnn_fallback(data_root):
    arr = rgb(data_root, "faces/trump/484129288.jpg")  # frontal under a cap: HOG misses it
    assert fl.detect_hog(arr) == []
    (faces,) = fl.find_faces([arr], fallback=True)
    assert len(faces) == 1 and faces[0].detector == "mtcnn"
    assert fl.find_faces([arr], fallback=False) == [[]]


def test_hog_scales():
    assert fl.hog_scales(256, 256, 40) == [0.5, 1.0, 2.0]
    assert fl.hog_scales(112, 112, 40) == pytest.approx([128 / 112, 2.0])
    assert fl.hog_scales(256, 256, 160) == [0.5]
    assert fl.hog_scales(1000, 2000, 80) == pytest.approx([0.128, 0.256, 0.512, 1.0])


def test_box_conversions_round_trip():
    mt = fl.Face((100.0, 80.0, 200.0, 215.0), 0.99, "mtcnn")
    hog = fl.Face(fl.dlib_box(mt), 1.0, "hog")
    assert np.allclose(fl.mtcnn_box(hog), mt.box, atol=2.0)
    assert fl.dlib_box(hog) == hog.box and fl.mtcnn_box(mt) == mt.box


def test_chips_are_aligned_upright(hopper):
    rotated = np.asarray(Image.fromarray(hopper).rotate(20, resample=Image.BILINEAR))
    chips = []
    for arr in (hopper, np.ascontiguousarray(rotated)):
        (faces,) = fl.find_faces([arr])
        (chip,) = fl.dlib_chips(arr, faces)
        assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8
        chips.append(chip.astype(np.float32))
    unaligned = np.asarray(Image.fromarray(chips[0].astype(np.uint8)).rotate(20), np.float32)
    err = np.abs(chips[0] - chips[1]).mean()
    assert err < 12 and err < 0.5 * np.abs(chips[0] - unaligned).mean()


def test_threaded_hog_matches_sequential(data_root, pair, hopper):
    arrays = [pair, hopper, rgb(data_root, CAGE), rgb(data_root, TRUMP)] * 3
    with ThreadPoolExecutor(2) as pool:
        assert fl.find_faces(arrays, executor=pool) == fl.find_faces(arrays)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="PIL image"):
        fl.to_rgb_array("face.jpg")
    with pytest.raises(ValueError, match="uint8"):
        fl.to_rgb_array(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="too small"):
        fl.to_rgb_array(Image.new("RGB", (1, 5)))
    gray = fl.to_rgb_array(Image.new("L", (20, 10)))
    assert gray.shape == (10, 20, 3) and gray.dtype == np.uint8
    with pytest.raises(ValueError, match="unknown face detector 'haar'"):
        fl.check_face_options("haar", "auto", 40, 10)
    with pytest.raises(ValueError, match="upsample"):
        fl.check_face_options("hog", "lots", 40, 10)
    with pytest.raises(ValueError, match="min_face_size"):
        fl.check_face_options("hog", 1, 2, 10)
    with pytest.raises(ValueError, match="max_faces"):
        fl.check_face_options("hog", 1, 40, 0)
