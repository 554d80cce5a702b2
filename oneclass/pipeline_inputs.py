"""What a pipeline accepts as images, and how they become embeddings (one row per image).

Accepted, alone or mixed in a list: a source spec (folder, ``a.zip``, ``.csv``/``.txt`` list,
image file, ``dataset:<name>``), an :class:`~oneclass.data.sources.ImageItem`, a source object,
a PIL image, or a numpy array (``(H, W[, C])``; an ``(N, H, W, C)`` array is N images). Files go
through :func:`oneclass.embed.cache.embed_items` (the embedding cache, bad files reported as
failures); images in memory go straight to the embedder.

Every image gets an ``id`` unique within the call: the source's own id (a relative path), its
full URI where two sources give the same id, and ``#2``, ``#3``... for the same file given twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from oneclass.data.items import unique_ids
from oneclass.data.sources import ImageItem, open_source
from oneclass.embed.base import Embedder, ImageEmbedding, to_pil
from oneclass.embed.cache import embed_items

#: what a pipeline's ``fit``/``score`` take (see the module docstring)
ImagesLike = Any

__all__ = ["EmbeddedImages", "ImagesLike", "as_items", "embed_images"]


@dataclass
class EmbeddedImages:
    """Embeddings of a list of images, in input order.

    Attributes:
        ids: unique ids.
        uris: where each image came from (``image[i]`` for an image in memory).
        embeddings: ``None`` for an image that failed.
        failures: position -> reason, for the images that failed.
    """

    ids: list[str]
    uris: list[str]
    embeddings: list[ImageEmbedding | None]
    failures: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)


def _is_in_memory(x: Any) -> bool:
    return isinstance(x, Image.Image | np.ndarray)


def _flatten(images: ImagesLike) -> list[Any]:
    """Returns the inputs as a flat list of ImageItems and in-memory images."""
    if isinstance(images, str | Path | ImageItem | Image.Image):
        images = [images]
    elif isinstance(images, np.ndarray):
        images = list(images) if images.ndim == 4 else [images]
    out: list[Any] = []
    for x in images:
        if isinstance(x, ImageItem) or _is_in_memory(x):
            out.append(x)
        elif isinstance(x, str | Path):
            out.extend(open_source(x))
        elif isinstance(x, Iterable) and not isinstance(x, bytes | dict):
            out.extend(_flatten(list(x)))
        else:
            raise TypeError(f"cannot read images from {type(x).__name__}: {x!r}")
    return out


def as_items(images: ImagesLike) -> list[ImageItem]:
    """Turn paths, source specs and ImageItems (or lists of them) into ImageItems.

    Returns:
        The items, in order.

    Raises:
        TypeError: an image in memory (use :func:`embed_images`) or an unknown input.
    """
    items = _flatten(images)
    bad = [type(x).__name__ for x in items if not isinstance(x, ImageItem)]
    if bad:
        raise TypeError(f"as_items takes files and sources, not {bad[0]}")
    return items


def embed_images(
    embedder: Embedder, images: ImagesLike, *, cache: Any = True, progress: bool = True
) -> EmbeddedImages:
    """Embed every input image; files through the cache, images in memory directly.

    Args:
        embedder: the embedder.
        images: see the module docstring.
        cache: ``True`` (the default cache folder), ``False``/``None``, a folder or a cache.
        progress: show progress bars.

    Returns:
        The :class:`EmbeddedImages`; a file that cannot be read is a failure, never an error.
    """
    entries = _flatten(images)
    n = len(entries)
    ids: list[str] = [""] * n
    uris: list[str] = [""] * n
    embs: list[ImageEmbedding | None] = [None] * n
    failures: dict[int, str] = {}
    item_pos = [k for k, x in enumerate(entries) if isinstance(x, ImageItem)]
    if item_pos:
        items = [entries[k] for k in item_pos]
        out = embed_items(embedder, items, cache=cache or None, progress=progress)
        reasons = {f.item: f.reason for f in out.failures}
        for k, item, emb in zip(item_pos, items, out.embeddings, strict=True):
            ids[k], uris[k], embs[k] = item.id, item.uri, emb
            if emb is None:
                failures[k] = reasons.get(item, "unreadable")
    mem_pos = [k for k, x in enumerate(entries) if not isinstance(x, ImageItem)]
    pils, pil_pos = [], []
    for k in mem_pos:
        ids[k] = uris[k] = f"image[{k}]"
        try:
            pils.append(to_pil(entries[k], where=f"image[{k}]"))
            pil_pos.append(k)
        except (TypeError, ValueError) as exc:
            failures[k] = str(exc)
    if pils:
        for k, emb in zip(pil_pos, embedder.embed(pils, progress=progress), strict=True):
            embs[k] = emb
    unique = unique_ids([ImageItem(id=i, uri=u) for i, u in zip(ids, uris, strict=True)])
    return EmbeddedImages([it.id for it in unique], uris, embs, failures)
