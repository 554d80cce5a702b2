"""The wide face search: what :func:`oneclass.embed.faces.find_faces` runs on an image where the
cheap pass (HOG, then MTCNN) found no face.

1. **Proposals** (MTCNN, probability >= :data:`PROPOSE_PROB`): the image as it is, looking down to
   ``min_face_size`` (small faces: MTCNN's image pyramid starts above scale 1 for them), and the
   image turned by each angle of :data:`SWEEP_ANGLES` (tilted heads), looking down to
   :data:`SWEEP_MIN_FACE` px. Boxes and landmarks are mapped back into the image.
2. **Verification** by a second, different detector: each proposal is cut out upright (turned by
   its eye-line tilt) and scaled so that the face spans :data:`VERIFY_HOG_FACE` px (small faces
   are upsampled here, in this crop only), where dlib's HOG detector must find a face on the
   proposal (score >= :data:`VERIFY_HOG`, IoU >= :data:`VERIFY_IOU`); failing that, dlib's CNN
   (MMOD) detector in a crop where the face spans :data:`VERIFY_CNN_FACE` px (confidence >=
   :data:`VERIFY_CNN`). Natural photos without faces give a few confident MTCNN proposals
   (bark, rocks, animals); few of them pass a second detector.
3. **De-duplication**: a face found at several angles is kept once (IoU >= :data:`DEDUP_IOU` of
   the dlib boxes), the most confident detection wins.

Cost: one MTCNN run per angle plus one small CNN/HOG run per proposal; it runs only on images
where the cheap pass found nothing.
"""

from __future__ import annotations

import math

import numpy as np

from oneclass.embed.face_align import dlib_box, face_turn, iou, roll, turned
from oneclass.embed.face_detect import Face, detect_cnn, detect_hog, detect_mtcnn, keep_faces

#: degrees the image is turned by (counter-clockwise) for tilted heads
SWEEP_ANGLES = (-30.0, 30.0, -55.0, 55.0)
#: px, the smallest face looked for in the turned images
SWEEP_MIN_FACE = 32.0
#: MTCNN probability a proposal needs
PROPOSE_PROB = 0.9
#: px, the face size in the HOG / CNN verification crops (crop side: twice that)
VERIFY_HOG_FACE = 90
VERIFY_CNN_FACE = 56
#: confidence dlib's CNN detector needs in the verification crop
VERIFY_CNN = 0.3
#: dlib HOG detector threshold in the verification crop
VERIFY_HOG = 0.0
#: IoU of the verifying detection with the proposal (in the crop)
VERIFY_IOU = 0.3
#: IoU above which two detections are the same face
DEDUP_IOU = 0.3


def _turned_back(face: Face, turn, angle: float) -> Face:
    """The face found in a turned image, in the image's own coordinates."""
    x0, y0, x1, y1 = face.box
    ((cx, cy),) = turn.input_points([((x0 + x1) / 2, (y0 + y1) / 2)])
    w, h = x1 - x0, y1 - y0
    lm = None
    if face.landmarks is not None:
        lm = tuple((float(x), float(y)) for x, y in turn.input_points(face.landmarks))
    box = (float(cx - w / 2), float(cy - h / 2), float(cx + w / 2), float(cy + h / 2))
    return Face(box, face.score, face.detector, lm, angle)


def proposals(
    arr: np.ndarray, *, min_face_size: float, device: str = "cpu", angles=SWEEP_ANGLES
) -> list[Face]:
    """Returns MTCNN's faces in the image as it is (down to ``min_face_size``) and in the image
    turned by each of ``angles`` (down to :data:`SWEEP_MIN_FACE`), in image coordinates."""
    (found,) = detect_mtcnn(
        [arr], min_face_size=min_face_size, device=device, min_prob=PROPOSE_PROB
    )
    views = [turned(arr, a) for a in angles]
    sweep = detect_mtcnn(
        [v for v, _ in views],
        min_face_size=max(min_face_size, SWEEP_MIN_FACE),
        device=device,
        min_prob=PROPOSE_PROB,
    )
    out = list(found)
    for angle, (_, turn), faces in zip(angles, views, sweep, strict=True):
        out += [_turned_back(f, turn, angle) for f in faces]
    return out


def _view(arr: np.ndarray, face: Face, face_px: int) -> tuple[np.ndarray, tuple]:
    """An upright crop of twice the face's side in which the face spans ``face_px`` pixels,
    and where the proposal's box lies in it."""
    x0, y0, x1, y1 = dlib_box(face)
    size = 2 * face_px
    view = face_turn(face, 2 * (x1 - x0), size).render(arr, size, size)
    lo, hi = (size - face_px) / 2, (size + face_px) / 2
    return view, (lo, lo, hi, hi)


def hog_confirms(arr: np.ndarray, face: Face) -> float:
    """Returns dlib's HOG score for the proposal in an upright crop (-inf: not found)."""
    view, want = _view(arr, face, VERIFY_HOG_FACE)
    found = detect_hog(view, upsample=0, min_face_size=8, threshold=VERIFY_HOG)
    return max((f.score for f in found if iou(f.box, want) >= VERIFY_IOU), default=-math.inf)


def cnn_confirms(arr: np.ndarray, face: Face) -> float:
    """Returns dlib's CNN confidence for the proposal in an upright crop (-inf: not found)."""
    view, want = _view(arr, face, VERIFY_CNN_FACE)
    found = detect_cnn(view, upsample=0, min_face_size=8)
    return max((f.score for f in found if iou(f.box, want) >= VERIFY_IOU), default=-math.inf)


def verify(arr: np.ndarray, face: Face) -> bool:
    """Returns whether a second detector confirms a proposal: dlib's HOG detector, else (only
    then: it is slower) dlib's CNN detector, in an upright crop around it."""
    return hog_confirms(arr, face) >= VERIFY_HOG or cnn_confirms(arr, face) >= VERIFY_CNN


def wide_search(
    arr: np.ndarray,
    *,
    min_face_size: float = 20,
    max_faces: int | None = None,
    device: str = "cpu",
) -> list[Face]:
    """Returns the faces the wide search finds in an RGB array (see the module notes), largest
    first."""
    kept: list[tuple[float, Face]] = []
    for face in proposals(arr, min_face_size=min_face_size, device=device):
        if verify(arr, face):
            kept.append((face.score - 0.001 * abs(roll(face)), face))
    kept.sort(key=lambda cf: -cf[0])
    out: list[Face] = []
    for _, face in kept:
        if all(iou(dlib_box(face), dlib_box(o)) < DEDUP_IOU for o in out):
            out.append(face)
    return keep_faces(out, min_face_size, max_faces)
