"""Face geometry and alignment: box conventions, turned (rotated) views of an image, and the
aligned chips the face networks take.

Boxes keep their detector's geometry (an MTCNN box is taller than a dlib box); :func:`dlib_box`
(from MTCNN's 5 landmarks when present) and :func:`mtcnn_box` convert between the two with
factors measured on the shared face sets, so that dlib's landmark model starts from the kind of
box it was trained on.

Tilted faces: a face whose eye line (from MTCNN's landmarks) is tilted by more than
:data:`ROLL_ALIGN` degrees is turned upright in a local crop before dlib's landmark model runs
on it (that model was trained on roughly upright faces), and its landmarks are mapped back, so
that dlib's own alignment (:func:`dlib_chips`) and the FaceNet crops (:func:`facenet_chips`)
come out upright whatever the tilt.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from oneclass.embed.face_detect import Face, dlib_module, shape_predictor

#: degrees: faces tilted more than this are turned upright before landmarking / cropping
ROLL_ALIGN = 12.0
#: px, the longest side of the local crop a tilted face is landmarked in
ALIGN_CROP = 512

# dlib box vs MTCNN box of the same face (medians over 310 Cage, Trump and Glint crops where
# both find one face): same centre x; the dlib box centre is lower by 0.06 of the MTCNN height;
# the dlib box side is 0.98 of the MTCNN width and 0.725 of its height (median IoU 0.77).
_DY, _SW, _SH = 0.06, 0.98, 0.725
# From MTCNN's landmarks, better (median IoU 0.83, 10th percentile 0.66 instead of 0.53): with
# s = (eye distance + eye-to-mouth distance) / 2, the dlib box is a square of side 2.07 s centred
# at the midpoint of eyes and mouth, moved by (0.025, -0.032) s.
_LM_SIDE, _LM_DX, _LM_DY = 2.07, 0.025, -0.032


# ---- turned views ------------------------------------------------------------------------------
class Turn:
    """A view of an image turned counter-clockwise by ``angle`` degrees about ``center`` (input
    pixels) and scaled by ``scale``, with ``center`` landing at ``out_center``.

    Attributes:
        to_input: ``(2, 3)`` affine map from view coordinates to input coordinates.
        to_view: ``(2, 3)`` affine map from input coordinates to view coordinates.
    """

    def __init__(
        self,
        angle: float,
        center: tuple[float, float],
        out_center: tuple[float, float],
        scale: float = 1.0,
    ):
        t = math.radians(angle)
        c, s = math.cos(t), math.sin(t)
        inv = np.array([[c, -s], [s, c]]) / scale  # view offset -> input offset
        self.to_input = np.hstack([inv, (np.asarray(center) - inv @ out_center)[:, None]])
        fwd = np.array([[c, s], [-s, c]]) * scale
        self.to_view = np.hstack([fwd, (np.asarray(out_center) - fwd @ center)[:, None]])

    @staticmethod
    def _apply(m: np.ndarray, pts: Any) -> np.ndarray:
        p = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        return p @ m[:, :2].T + m[:, 2]

    def input_points(self, pts: Any) -> np.ndarray:
        """Returns ``(n, 2)`` input coordinates of view points."""
        return self._apply(self.to_input, pts)

    def view_points(self, pts: Any) -> np.ndarray:
        """Returns ``(n, 2)`` view coordinates of input points."""
        return self._apply(self.to_view, pts)

    def render(self, arr: np.ndarray, width: int, height: int) -> np.ndarray:
        """Returns the ``(height, width, 3)`` view of ``arr`` (bilinear; outside: mean colour)."""
        fill = tuple(int(v) for v in arr.reshape(-1, 3)[:: max(1, arr.size // 3 // 4096)].mean(0))
        out = Image.fromarray(arr).transform(
            (int(width), int(height)),
            Image.Transform.AFFINE,
            tuple(self.to_input.ravel()),
            resample=Image.Resampling.BILINEAR,
            fillcolor=fill,
        )
        return np.asarray(out)


def turned(arr: np.ndarray, angle: float) -> tuple[np.ndarray, Turn]:
    """Returns the whole image turned counter-clockwise by ``angle`` degrees (the canvas grown to
    hold it) and the :class:`Turn` that maps its coordinates back."""
    h, w = arr.shape[:2]
    t = math.radians(angle)
    cw = int(math.ceil(abs(w * math.cos(t)) + abs(h * math.sin(t)) - 1e-6))
    ch = int(math.ceil(abs(w * math.sin(t)) + abs(h * math.cos(t)) - 1e-6))
    turn = Turn(angle, (w / 2, h / 2), (cw / 2, ch / 2))
    return turn.render(arr, cw, ch), turn


def face_turn(face: Face, side: float, size: int) -> Turn:
    """Returns the :class:`Turn` of an upright ``size`` x ``size`` view centred on the face, in
    which a ``side``-pixel square around the face spans the view."""
    x0, y0, x1, y1 = dlib_box(face)
    centre = ((x0 + x1) / 2, (y0 + y1) / 2)
    return Turn(roll(face), centre, (size / 2, size / 2), size / side)


def roll(face: Face) -> float:
    """Returns the face's in-plane tilt in degrees from its eye line (positive: turned clockwise
    on screen; turning the image counter-clockwise by it makes the face upright); 0 without
    landmarks."""
    if face.landmarks is None:
        return 0.0
    (lx, ly), (rx, ry) = face.landmarks[0], face.landmarks[1]
    return math.degrees(math.atan2(ry - ly, rx - lx))


# ---- boxes -------------------------------------------------------------------------------------
def dlib_box(face: Face) -> tuple[float, float, float, float]:
    """Returns the face's box in dlib's (HOG/CNN) geometry: an MTCNN box is converted (from its
    landmarks when it has them; the square then sits on the tilted face, axis-aligned)."""
    if face.detector != "mtcnn":
        return face.box
    if face.landmarks is not None:
        lm = np.asarray(face.landmarks, dtype=np.float64)
        eyes, mouth = lm[:2].mean(axis=0), lm[3:5].mean(axis=0)
        s = float(np.linalg.norm(lm[1] - lm[0]) + np.linalg.norm(mouth - eyes)) / 2
        t = math.radians(roll(face))
        dx, dy = _LM_DX * s, _LM_DY * s  # measured on upright faces: turn the offset with the face
        off = np.array([dx * math.cos(t) - dy * math.sin(t), dx * math.sin(t) + dy * math.cos(t)])
        cx, cy = (eyes + mouth) / 2 + off
        half = _LM_SIDE * s / 2
        return (float(cx - half), float(cy - half), float(cx + half), float(cy + half))
    x0, y0, x1, y1 = face.box
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + _DY * h
    half = (_SW * w + _SH * h) / 4
    return (float(cx - half), float(cy - half), float(cx + half), float(cy + half))


def mtcnn_box(face: Face) -> tuple[float, float, float, float]:
    """Returns the face's box in MTCNN geometry (what facenet crops): a dlib box is converted."""
    if face.detector == "mtcnn":
        return face.box
    x0, y0, x1, y1 = face.box
    side = ((x1 - x0) + (y1 - y0)) / 2
    w, h = side / _SW, side / _SH
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - _DY * h
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def clipped_boxes(faces: Sequence[Face], width: int, height: int) -> np.ndarray:
    """Returns ``(k, 4)`` float32 boxes clipped to the image."""
    if not faces:
        return np.zeros((0, 4), dtype=np.float32)
    b = np.array([f.box for f in faces], dtype=np.float64)
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, width)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, height)
    return b.astype(np.float32)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Returns the intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# ---- alignment ---------------------------------------------------------------------------------
def _rect(box: Sequence[float]) -> Any:
    x0, y0, x1, y1 = box
    return dlib_module().rectangle(
        int(round(x0)), int(round(y0)), int(round(x1)) - 1, int(round(y1)) - 1
    )


def landmarks5(arr: np.ndarray, faces: Sequence[Face]) -> Any:
    """Returns dlib ``full_object_detections``: the 5-point landmarks of each face (tilted faces
    are landmarked upright in a local crop and mapped back)."""
    dlib = dlib_module()
    sp = shape_predictor()
    shapes = dlib.full_object_detections()
    for face in faces:
        if abs(roll(face)) <= ROLL_ALIGN:
            shapes.append(sp(arr, _rect(dlib_box(face))))
            continue
        x0, y0, x1, y1 = dlib_box(face)
        side = 3.0 * (x1 - x0)
        size = int(min(ALIGN_CROP, max(64, round(side))))
        turn = face_turn(face, side, size)
        view = turn.render(arr, size, size)
        lm = turn.view_points(face.landmarks)
        upright = Face(face.box, face.score, face.detector, tuple(map(tuple, lm.tolist())))
        shape = sp(view, _rect(dlib_box(upright)))
        pts = turn.input_points([(p.x, p.y) for p in shape.parts()])
        points = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in pts])
        shapes.append(dlib.full_object_detection(_rect(dlib_box(face)), points))
    return shapes


def dlib_chips(
    arr: np.ndarray, faces: Sequence[Face], size: int = 150, padding: float = 0.25
) -> list[np.ndarray]:
    """Returns aligned ``(size, size, 3)`` uint8 face chips, rotated upright on the 5 landmarks
    exactly as dlib's face descriptor aligns them (150 px, padding 0.25)."""
    if not faces:
        return []
    return dlib_module().get_face_chips(arr, landmarks5(arr, faces), size=size, padding=padding)


def facenet_chips(image: Image.Image, faces: Sequence[Face], size: int = 160, margin: int = 32):
    """Returns a ``(k, 3, size, size)`` float tensor: each face's MTCNN-geometry box plus
    ``margin`` (pixels of the output chip), resized and standardised as facenet-pytorch does
    (tilted faces are cut out upright)."""
    import torch
    from facenet_pytorch.models.mtcnn import fixed_image_standardization
    from facenet_pytorch.models.utils.detect_face import extract_face

    chips = []
    for f in faces:
        if abs(roll(f)) <= ROLL_ALIGN:
            chip = extract_face(image, mtcnn_box(f), size, margin)
        else:  # the same crop, cut from an upright view of the face
            x0, y0, x1, y1 = mtcnn_box(f)
            w, h = x1 - x0, y1 - y0
            pad_w, pad_h = margin * w / (size - margin), margin * h / (size - margin)
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            t = math.radians(roll(f))
            c, s = math.cos(t), math.sin(t)
            sx, sy = (w + pad_w) / size, (h + pad_h) / size  # input px per chip px
            a, b, d, e = c * sx, -s * sy, s * sx, c * sy  # chip offset -> input offset
            m = (a, b, cx - (a + b) * size / 2, d, e, cy - (d + e) * size / 2)
            view = image.transform(
                (size, size), Image.Transform.AFFINE, m, resample=Image.Resampling.BILINEAR
            )
            chip = torch.from_numpy(np.asarray(view, dtype=np.float32).copy()).permute(2, 0, 1)
        chips.append(fixed_image_standardization(chip))
    return torch.stack(chips) if chips else torch.zeros((0, 3, size, size))
