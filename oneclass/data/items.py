"""What a source lists: :class:`ImageItem` (an address plus label, group and family) and
:class:`Failure` (an item that could not be read, and why), and :func:`unique_ids`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace

from oneclass.data.uri import MAX_FILE_BYTES, read_uri

__all__ = ["Failure", "ImageItem", "unique_ids"]


@dataclass(frozen=True)
class ImageItem:
    """One image's address and metadata.

    ``id`` is unique within its source (relative path, zip member, URL) and plain text (bytes of
    a file name that are not UTF-8 are written ``\\xNN``); ``uri`` is a path, a ``file://`` URI
    (for names that are not UTF-8), ``zip:///abs/archive.zip!member`` or an http(s) URL; ``label``
    e.g. the sub-folder, person or class; ``group`` a near-duplicate/event group for group-aware
    splits; ``family`` the set it comes from (e.g. a negative family: ``"trump"``, ``"lfw"``).
    """

    id: str
    uri: str
    label: str | None = None
    group: str | None = None
    family: str | None = None

    def read_bytes(self, *, max_bytes: int = MAX_FILE_BYTES) -> bytes:
        """Read the raw bytes, bounded (see :mod:`oneclass.data.uri`).

        Returns:
            The bytes (URLs come through the download cache).

        Raises:
            ImageLoadError: naming the address and the reason.
        """
        return read_uri(self.uri, max_bytes=max_bytes)


@dataclass
class Failure:
    """An item that could not be read or decoded, and why."""

    item: ImageItem
    reason: str

    def __str__(self) -> str:
        return f"{self.item.uri}: {self.reason}"


def unique_ids(items: Iterable[ImageItem]) -> list[ImageItem]:
    """Make item ids unique: an id that occurs more than once is replaced by the item's address
    (distinct files have distinct addresses); what still repeats (the same file listed twice)
    gets ``#2``, ``#3``... in order.

    Returns:
        The items, in order, with unique ids (unchanged items are the same objects).
    """
    items = list(items)
    counts = Counter(it.id for it in items)
    if all(n == 1 for n in counts.values()):
        return items
    taken = {it.id for it in items if counts[it.id] == 1}
    out: list[ImageItem] = []
    for it in items:
        if counts[it.id] == 1:
            out.append(it)
            continue
        new, k = it.uri, 2
        while new in taken:
            new, k = f"{it.uri}#{k}", k + 1
        taken.add(new)
        out.append(replace(it, id=new))
    return out
