"""Tiny-image features: the whole image shrunk to ``size x size`` RGB pixels, one vector.

The classic "tiny images" baseline (Torralba, Fergus and Freeman, 2008): no network, no weights,
thousands of images per second. It is the floor a learnt embedder must beat, and the embedder the
scale benchmarks use where the engine, not the network, is measured (memory and throughput of a
collection of 100k images). Vectors are the pixels in ``[0, 1]``, centred per image and scaled to
unit length (brightness and contrast do not count).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from oneclass.embed.base import Embedder, ImageEmbedding


class ThumbnailEmbedder(Embedder):
    """``size x size`` RGB thumbnail as a ``3 * size**2`` vector (centred, unit length).

    Args:
        size: side of the thumbnail in pixels (>= 2).
        batch_size: images per batch.
    """

    kind = "image"
    preprocess_version = "1"

    def __init__(self, size: int = 16, batch_size: int = 256):
        self.size = size
        self.batch_size = batch_size

    @property
    def dim(self) -> int:
        """Returns ``3 * size**2``."""
        return 3 * int(self.size) ** 2

    @property
    def size_hint(self) -> int | None:  # type: ignore[override]
        """Returns the side JPEG draft decoding may shrink to (the thumbnail's)."""
        return int(self.size)

    def embed_batch(self, images: Sequence[Image.Image]) -> list[ImageEmbedding]:
        """Returns one unit-length thumbnail vector per image."""
        size = int(self.size)
        if size < 2:
            raise ValueError(f"size must be >= 2, got {self.size}")
        out = []
        for image in images:
            small = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
            v = np.asarray(small, dtype=np.float32).ravel() / 255.0
            v -= v.mean()
            norm = float(np.linalg.norm(v))
            out.append(ImageEmbedding(vectors=(v / norm if norm > 0 else v)[None, :]))
        return out
