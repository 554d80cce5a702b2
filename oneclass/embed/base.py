"""The embedder contract: images in, float32 vectors out (per image, or per face).

An embedder has a ``name`` that pins model and weights (it keys the embedding cache), a ``dim``,
and ``embed_batch(images) -> list[ImageEmbedding]``. Whole-image embedders (CLIP, EfficientNet)
return one vector per image; face embedders (``kind = "face"``) return one vector per face found,
with its box, and an empty result for an image with no face: that is an outcome to report,
never an error and never a made-up vector.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from PIL import Image
from tqdm.auto import tqdm


@dataclass
class ImageEmbedding:
    """The vectors of one image: ``(k, dim)`` float32, with ``(k, 4)`` face boxes (x0, y0, x1, y1)
    for face embedders (``k = 0``: no face found)."""

    vectors: np.ndarray
    boxes: np.ndarray | None = None

    @property
    def n_faces(self) -> int:
        return int(self.vectors.shape[0])

    def largest(self) -> int:
        """Index of the largest face (0 for whole-image embeddings)."""
        if self.boxes is None or len(self.boxes) <= 1:
            return 0
        b = np.asarray(self.boxes, dtype=np.float64)
        return int(np.argmax((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])))


def default_threads() -> int:
    """Torch/dlib CPU threads: ``ONECLASS_THREADS`` or the cores this process may use."""
    env = os.environ.get("ONECLASS_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def default_device() -> str:
    """``"cuda"`` when a GPU is present (``ONECLASS_DEVICE`` overrides), else ``"cpu"``."""
    env = os.environ.get("ONECLASS_DEVICE")
    if env:
        return env
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Embedder(ABC):
    """Base class of every embedder."""

    #: ``"image"`` (one vector per image) or ``"face"`` (one vector per face)
    kind: ClassVar[str] = "image"
    #: bump when preprocessing changes, so cached vectors from the old version are not reused
    preprocess_version: ClassVar[str] = "1"
    #: images per batch
    batch_size: int = 32
    #: short side the embedder resizes to, if any: lets :func:`oneclass.embed.cache.embed_items`
    #: decode large JPEGs at reduced scale (Pillow's draft mode)
    size_hint: int | None = None

    @property
    @abstractmethod
    def name(self) -> str:
        """Identifier that pins model and weights, e.g. ``"effnet-lite0/imagenet"``."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """Length of each vector."""

    @abstractmethod
    def embed_batch(self, images: Sequence[Image.Image]) -> list[ImageEmbedding]:
        """Embed a batch of RGB images."""

    def embed(self, images: Iterable[Image.Image], *, progress: bool = True,
              total: int | None = None) -> list[ImageEmbedding]:
        """Embed images in batches, with a progress bar that shows images/s."""
        images = list(images)
        out: list[ImageEmbedding] = []
        start = time.perf_counter()
        with tqdm(total=total or len(images), disable=not progress, unit="img",
                  desc=f"embed {self.name}") as bar:
            for i in range(0, len(images), self.batch_size):
                batch = images[i:i + self.batch_size]
                out.extend(self.embed_batch(batch))
                bar.update(len(batch))
        self.last_rate_ = len(images) / max(time.perf_counter() - start, 1e-9)
        return out

    def embed_array(self, images: Iterable[Image.Image], **kw) -> np.ndarray:
        """One vector per image, ``(n, dim)`` float32; face embedders take the largest face and
        raise ``ValueError`` for an image without one (use :meth:`embed` to handle that)."""
        results = self.embed(images, **kw)
        missing = [i for i, r in enumerate(results) if r.n_faces == 0]
        if missing:
            raise ValueError(f"no face found in image(s) at positions {missing[:10]}")
        if not results:
            return np.empty((0, self.dim), dtype=np.float32)
        return np.stack([r.vectors[r.largest()] for r in results]).astype(np.float32)
