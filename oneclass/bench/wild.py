"""Synthetic "photos in the wild" for face suites, built from the shared sets.

Aligned face crops make face detection easy; real photos don't. For each seed this builds, from
the *test* split only, composites on natural-photo backgrounds: ``full`` (one face of 140-220 px),
``small`` (one face of 48-80 px in a 640 px frame), ``group`` (the face beside another person's).
Positives use the class's test crops; the ``wild-actors`` negatives use other people's crops in
the same compositions; ``natural`` negatives are the background photos themselves (no face).
Faces are pasted with a feathered elliptical mask so that no square edge gives them away. The
images are written once to a cache folder (deterministic for a seed) and used like any source.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from oneclass.data.decode import decode_image
from oneclass.data.sources import ImageItem

KINDS = ("full", "small", "group")
FRAME = (640, 480)


def _mask(size: int) -> Image.Image:
    m = Image.new("L", (size, size), 0)
    inset = size // 10
    ImageDraw.Draw(m).ellipse((inset, inset // 2, size - inset, size - inset // 2), fill=255)
    return m.filter(ImageFilter.GaussianBlur(max(1, size // 20)))


def _load(item: ImageItem) -> Image.Image:
    return decode_image(item.read_bytes(), item.uri)


def _paste(
    bg: Image.Image,
    face: Image.Image,
    size: int,
    rng: np.random.Generator,
    x_range: tuple[int, int],
) -> None:
    f = face.resize((size, size), Image.Resampling.BICUBIC)
    x = int(rng.integers(x_range[0], max(x_range[0] + 1, x_range[1] - size)))
    y = int(rng.integers(0, max(1, bg.height - size)))
    bg.paste(f, (x, y), _mask(size))


def compose(
    kind: str,
    face: Image.Image,
    other: Image.Image | None,
    background: Image.Image,
    rng: np.random.Generator,
) -> Image.Image:
    """One composite of ``kind`` on ``background`` (resized to a 640x480 frame)."""
    bg = background.convert("RGB").resize(FRAME, Image.Resampling.BICUBIC)
    w = bg.width
    if kind == "full":
        _paste(bg, face, int(rng.integers(140, 221)), rng, (0, w))
    elif kind == "small":
        _paste(bg, face, int(rng.integers(48, 81)), rng, (0, w))
    elif kind == "group":
        size = int(rng.integers(110, 161))
        left_first = bool(rng.integers(0, 2))
        halves = [(0, w // 2), (w // 2, w)] if left_first else [(w // 2, w), (0, w // 2)]
        _paste(bg, face, size, rng, halves[0])
        _paste(bg, other if other is not None else face, size, rng, halves[1])
    else:
        raise ValueError(f"unknown composite kind {kind!r}; known: {KINDS}")
    return bg


def build_wild_set(
    positives: list[ImageItem],
    others: list[ImageItem],
    backgrounds: list[ImageItem],
    out_dir: str | Path,
    seed: int,
    per_kind: int = 40,
) -> list[ImageItem]:
    """Composite positives (label "positive"), ``wild-actors`` and ``natural`` negatives."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if not positives or not others or not backgrounds:
        raise ValueError("wild set needs positives, other faces and background photos")
    items: list[ImageItem] = []

    def pick(seq):
        return seq[int(rng.integers(0, len(seq)))]

    for family, faces in (("positive", positives), ("wild-actors", others)):
        for kind in KINDS:
            for k in range(per_kind):
                face, other, bg = pick(faces), pick(others), pick(backgrounds)
                key = hashlib.sha1(
                    f"{seed}|{family}|{kind}|{k}|{face.uri}|{other.uri}|{bg.uri}".encode()
                ).hexdigest()[:16]
                path = out_dir / f"{family}-{kind}-{key}.jpg"
                sub = np.random.default_rng(int(key, 16) % 2**32)
                if not path.exists():
                    img = compose(kind, _load(face), _load(other), _load(bg), sub)
                    buf = io.BytesIO()
                    img.save(buf, "JPEG", quality=90)
                    tmp = path.with_suffix(".tmp")
                    tmp.write_bytes(buf.getvalue())
                    tmp.replace(path)
                items.append(
                    ImageItem(
                        id=f"wild/{path.name}",
                        uri=str(path),
                        label=kind,
                        group=face.id,
                        family=family,
                    )
                )
    for bg in backgrounds:
        items.append(
            ImageItem(
                id=f"natural/{bg.id}", uri=bg.uri, label="natural", group=bg.id, family="natural"
            )
        )
    return items
