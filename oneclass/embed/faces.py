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

Search, a cascade (each step runs only on the images where the steps before found nothing):

1. The chosen detector (``"hog"``, default): dlib's frontal HOG detector. Its window is 80 px, so
   it finds faces of at least ``80 / s`` pixels in an image scanned at scale ``s``. With
   ``upsample="auto"`` the image is scanned coarse to fine: first with its shorter side at 128 px
   (fast; enough for face crops and portraits), then at twice that scale, and so on down to faces
   of ``max(min_face_size, 40)`` pixels, stopping at the first scale that finds a face. An integer
   ``upsample`` runs dlib's single, exhaustive pass instead (``upsample`` doublings, like
   ``face_recognition``). ``"cnn"``: dlib's MMOD CNN detector (slow on CPU); ``"mtcnn"``: MTCNN
   from facenet-pytorch (weights ship in the wheel).
2. ``fallback=True``: MTCNN (probability >= 0.9) for ``hog``/``cnn``.
3. ``search="wide"`` (default): :mod:`oneclass.embed.face_search`: small faces down to
   ``min_face_size`` and tilted heads (a rotation sweep), each proposal confirmed by a second
   detector (dlib's CNN or HOG) in an upright crop. ``search="fast"`` stops after step 2.

Large images are searched downscaled so that their longer side is at most ``max_side`` pixels
(:func:`detection_scale`; memory stays bounded whatever the input size); boxes are mapped back
to the input's pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import replace

import numpy as np
from PIL import Image

from oneclass.embed.face_align import (
    ROLL_ALIGN,
    Turn,
    clipped_boxes,
    dlib_box,
    dlib_chips,
    facenet_chips,
    iou,
    landmarks5,
    mtcnn_box,
    roll,
    turned,
)
from oneclass.embed.face_detect import (
    COARSE_SIDE,
    DETECTORS,
    HOG_WINDOW,
    MIN_SIZE_SLACK,
    MTCNN_MIN_PROB,
    Face,
    cnn_detector,
    detect_cnn,
    detect_hog,
    detect_mtcnn,
    dlib_model_file,
    dlib_module,
    hog_detector,
    hog_scales,
    mtcnn,
    shape_predictor,
)
from oneclass.embed.face_search import wide_search

__all__ = [
    "COARSE_SIDE",
    "CHEAP_MIN_FACE",
    "DETECTORS",
    "HOG_WINDOW",
    "MAX_SIDE",
    "MIN_SIZE_SLACK",
    "MTCNN_MIN_PROB",
    "ROLL_ALIGN",
    "SEARCHES",
    "Face",
    "Turn",
    "capped_rgb",
    "check_face_options",
    "clipped_boxes",
    "cnn_detector",
    "detect_cnn",
    "detect_hog",
    "detect_mtcnn",
    "detection_scale",
    "dlib_box",
    "dlib_chips",
    "dlib_model_file",
    "dlib_module",
    "facenet_chips",
    "find_faces",
    "hog_detector",
    "hog_scales",
    "iou",
    "landmarks5",
    "mtcnn",
    "mtcnn_box",
    "roll",
    "scaled_face",
    "shape_predictor",
    "to_rgb_array",
    "turned",
    "wide_search",
]

SEARCHES = ("wide", "fast")
#: px, the longest image side the face search runs on (larger images are searched downscaled)
MAX_SIDE = 2048
#: px, the smallest face the cheap first pass (HOG / CNN) looks for
CHEAP_MIN_FACE = 40.0


# ---- inputs and options ------------------------------------------------------------------------
def to_rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """Returns a C-contiguous ``(H, W, 3)`` uint8 RGB array from a PIL image (any mode) or such
    an array."""
    if isinstance(image, Image.Image):
        arr = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    elif isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"expected an (H, W, 3) uint8 RGB array, got shape {image.shape} "
                f"and dtype {image.dtype}"
            )
        arr = image
    else:
        raise ValueError(
            f"expected a PIL image or an (H, W, 3) uint8 array, got {type(image).__name__}"
        )
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise ValueError(f"image too small to hold a face: {arr.shape[1]}x{arr.shape[0]} pixels")
    return np.ascontiguousarray(arr)


def detection_scale(width: int, height: int, max_side: int = MAX_SIDE) -> float:
    """Returns the factor (<= 1) an image is resized by before the face search, so that its
    longer side is at most ``max_side`` pixels."""
    return min(1.0, max_side / max(width, height))


def capped_rgb(
    image: Image.Image | np.ndarray, max_side: int = MAX_SIDE
) -> tuple[np.ndarray, float]:
    """Returns ``(array, scale)``: the image as an RGB array whose longer side is at most
    ``max_side`` (a large PIL image is shrunk before it becomes an array), and the factor it was
    shrunk by (1.0: unchanged)."""
    if isinstance(image, Image.Image):
        width = image.size[0]
        if detection_scale(*image.size, max_side) < 1.0:
            from oneclass.data.decode import downscale

            image = downscale(image if image.mode == "RGB" else image.convert("RGB"), max_side)
        return to_rgb_array(image), image.size[0] / width
    arr = to_rgb_array(image)
    h, w = arr.shape[:2]
    scale = detection_scale(w, h, max_side)
    if scale >= 1.0:
        return arr, 1.0
    nw, nh = max(2, round(w * scale)), max(2, round(h * scale))
    small = np.asarray(Image.fromarray(arr).resize((nw, nh), Image.Resampling.LANCZOS))
    return np.ascontiguousarray(small), nw / w


def check_face_options(
    detector: str,
    upsample: int | str,
    min_face_size: float,
    max_faces: int | None,
    search: str = "wide",
    max_side: int = MAX_SIDE,
) -> None:
    """Raise ``ValueError`` naming the first bad face-finding option."""
    if detector not in DETECTORS:
        raise ValueError(f"unknown face detector {detector!r}; choose one of {DETECTORS}")
    if upsample != "auto" and not (isinstance(upsample, int) and 0 <= upsample <= 4):
        raise ValueError(f"upsample must be 'auto' or an integer 0-4, got {upsample!r}")
    if not (isinstance(min_face_size, int | float) and min_face_size >= 8):
        raise ValueError(f"min_face_size must be a number of pixels >= 8, got {min_face_size!r}")
    if max_faces is not None and not (isinstance(max_faces, int) and max_faces >= 1):
        raise ValueError(f"max_faces must be None or an integer >= 1, got {max_faces!r}")
    if search not in SEARCHES:
        raise ValueError(f"search must be one of {SEARCHES}, got {search!r}")
    if not (isinstance(max_side, int) and max_side >= 64):
        raise ValueError(f"max_side must be an integer >= 64, got {max_side!r}")


def scaled_face(face: Face, factor: float) -> Face:
    """Returns the face with its box and landmarks multiplied by ``factor``."""
    if factor == 1.0:
        return face
    box = tuple(v * factor for v in face.box)
    lm = (
        None
        if face.landmarks is None
        else tuple((x * factor, y * factor) for x, y in face.landmarks)
    )
    return replace(face, box=(box[0], box[1], box[2], box[3]), landmarks=lm)


# ---- the search --------------------------------------------------------------------------------
def find_faces(
    arrays: Sequence[np.ndarray],
    *,
    detector: str = "hog",
    upsample: int | str = "auto",
    min_face_size: float = 20,
    max_faces: int | None = 10,
    fallback: bool = True,
    search: str = "wide",
    max_side: int = MAX_SIDE,
    device: str = "cpu",
    executor: Executor | None = None,
) -> list[list[Face]]:
    """Returns the faces of each RGB array, largest first (see the module notes for the
    cascade). ``executor`` runs the HOG passes and the wide search in parallel (dlib releases
    the GIL). Boxes are in each array's pixels, also for arrays searched downscaled."""
    check_face_options(detector, upsample, min_face_size, max_faces, search, max_side)
    scaled = [capped_rgb(a, max_side) for a in arrays]
    small = [a for a, _ in scaled]
    cheap_min = max(float(min_face_size), CHEAP_MIN_FACE)

    def run(fn, items):
        return list(executor.map(fn, items)) if executor else [fn(i) for i in items]

    if detector == "mtcnn":
        found = detect_mtcnn(small, device=device, min_face_size=cheap_min, max_faces=max_faces)
    elif detector == "hog":
        found = run(
            lambda a: detect_hog(
                a, upsample=upsample, min_face_size=cheap_min, max_faces=max_faces
            ),
            small,
        )
    else:
        found = [
            detect_cnn(a, upsample=upsample, min_face_size=cheap_min, max_faces=max_faces)
            for a in small
        ]
    missing = [i for i, faces in enumerate(found) if not faces]
    if fallback and missing and detector != "mtcnn":
        again = detect_mtcnn(
            [small[i] for i in missing], device=device, min_face_size=cheap_min, max_faces=max_faces
        )
        for i, faces in zip(missing, again, strict=True):
            found[i] = faces
        missing = [i for i in missing if not found[i]]
    if search == "wide" and missing:

        def wide(i):
            return wide_search(
                small[i], min_face_size=min_face_size, max_faces=max_faces, device=device
            )

        for i, faces in zip(missing, run(wide, missing), strict=True):
            found[i] = faces
    return [
        [scaled_face(f, 1.0 / s) for f in faces]
        for faces, (_, s) in zip(found, scaled, strict=True)
    ]
