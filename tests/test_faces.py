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
    return np.ascontiguousarray(
        np.concatenate([rgb(data_root, CAGE), rgb(data_root, TRUMP)], axis=1)
    )


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
    assert fl.find_faces([arr], fallback=False, search="fast") == [[]]


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


# ---- the wide search: small and tilted faces, no faces in natural photos, big images ----------
def pasted(
    face_img: np.ndarray, scene: np.ndarray, scale: float, angle: float, centre: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """``face_img`` (a face crop) shrunk by ``scale``, turned by ``angle`` degrees and pasted as
    a feathered disc into ``scene`` at ``centre``; returns the photo and where the crop's centre
    went."""
    h, w = face_img.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    alpha = np.clip((0.47 * w - np.hypot(xx - w / 2, yy - h / 2)) / (0.06 * w), 0, 1) * 255
    rgba = Image.fromarray(np.dstack([face_img, alpha.astype(np.uint8)]), "RGBA")
    if scale != 1.0:
        rgba = rgba.resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS)
    turn = fl.Turn(angle, (rgba.size[0] / 2, rgba.size[1] / 2), centre)
    layer = rgba.transform(
        scene.shape[1::-1],
        Image.Transform.AFFINE,
        tuple(turn.to_input.ravel()),
        resample=Image.Resampling.BILINEAR,
        fillcolor=(0, 0, 0, 0),
    )
    out = Image.alpha_composite(Image.fromarray(scene).convert("RGBA"), layer).convert("RGB")
    return np.asarray(out), np.asarray(centre)


def centre_of(face: fl.Face) -> np.ndarray:
    x0, y0, x1, y1 = fl.dlib_box(face)
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2])


def test_turn_maps_points_both_ways():
    turn = fl.Turn(30.0, (50.0, 40.0), (10.0, 20.0), 2.0)
    pts = np.array([[50.0, 40.0], [60.0, 40.0], [0.0, 0.0]])
    view = turn.view_points(pts)
    assert np.allclose(view[0], [10, 20])
    # counter-clockwise on screen (y down): a point to the right of the centre goes up-right
    assert np.allclose(view[1], [10 + 20 * np.cos(np.pi / 6), 20 - 20 * np.sin(np.pi / 6)])
    assert np.allclose(turn.input_points(view), pts)
    arr = np.zeros((40, 60, 3), np.uint8)
    out, t = fl.turned(arr, 90)
    assert out.shape == (60, 40, 3) and np.allclose(t.input_points([[20, 30]]), [[30, 20]])


def test_small_face_in_a_real_scene_is_found(data_root):
    """A Cage face shrunk to about 24 px in a BSDS landscape: below the first passes."""
    crop = rgb(data_root, CAGE)
    ((big,),) = fl.find_faces([crop], search="fast")
    side = fl.dlib_box(big)[2] - fl.dlib_box(big)[0]
    scale = 24 / side
    photo, centre = pasted(crop, rgb(data_root, NO_FACE), scale, 0.0, (300.0, 200.0))
    truth = centre + (centre_of(big) - 128) * scale
    assert fl.find_faces([photo], search="fast") == [[]]  # what the search found before
    (faces,) = fl.find_faces([photo])
    assert len(faces) == 1
    assert np.linalg.norm(centre_of(faces[0]) - truth) < 12
    assert 12 < faces[0].size < 48


def test_no_face_scene_stays_face_free(data_root):
    """The wide search looks harder in a landscape and still finds no face: every proposal it
    gets there is refused by the second detector."""
    arr = rgb(data_root, NO_FACE)
    assert fl.find_faces([arr]) == [[]]
    assert fl.wide_search(arr) == []


def test_large_image_is_searched_downscaled(data_root):
    """A 6000 x 6000 image (a face crop upscaled) is searched at MAX_SIDE pixels; the box comes
    back in the input's pixels."""
    big = Image.open(data_root / CAGE).convert("RGB").resize((6000, 6000), Image.BILINEAR)
    assert fl.detection_scale(6000, 6000) == pytest.approx(fl.MAX_SIDE / 6000)
    arr, scale = fl.capped_rgb(big)
    assert arr.shape == (fl.MAX_SIDE, fl.MAX_SIDE, 3) and scale == pytest.approx(fl.MAX_SIDE / 6000)
    assert fl.capped_rgb(rgb(data_root, CAGE))[1] == 1.0
    (faces,) = fl.find_faces([np.asarray(big)])
    ((small,),) = fl.find_faces([rgb(data_root, CAGE)])
    assert len(faces) == 1
    assert iou(faces[0].box, [v * 6000 / 256 for v in small.box]) > 0.7
