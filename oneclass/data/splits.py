"""Near-duplicates and group-aware splits: burst shots of one event must not sit on both sides
of a train/test split, or the test measures memory, not generalisation.

Perceptual hashes are packed into bits; Hamming distances are computed block-wise with a
popcount, so ~10k images (50M pairs) take seconds. The default, a 16x16 difference hash with
bilinear resampling and single-linkage groups at distance <= 40 (of 256 bits), reproduces the
shared ``niccage/groups.csv`` exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

__all__ = [
    "DEFAULT_MAX_DISTANCE",
    "group_split",
    "hamming_distances",
    "image_hash",
    "leakage_audit",
    "near_duplicate_groups",
    "near_duplicate_pairs",
    "perceptual_hashes",
]

#: single-linkage threshold for the default 16x16 dhash (256 bits)
DEFAULT_MAX_DISTANCE = 40
_BLOCK = 256


def _dhash(image: Image.Image, hash_size: int) -> np.ndarray:
    """Difference hash: is each pixel brighter than its left neighbour, on a bilinear-shrunk
    ``(hash_size + 1) x hash_size`` grayscale image (as imagehash.dhash, but bilinear)."""
    small = image.convert("L").resize((hash_size + 1, hash_size), Image.Resampling.BILINEAR)
    a = np.asarray(small, dtype=np.int16)
    return (a[:, 1:] > a[:, :-1]).ravel()


def image_hash(image: Image.Image, method: str = "dhash", hash_size: int = 16) -> np.ndarray:
    """The hash bits of one image: ``method`` "dhash" (default), or imagehash's "phash",
    "ahash", "whash" or "dhash_lanczos"."""
    if method == "dhash":
        return _dhash(image, hash_size)
    import imagehash

    funcs: dict[str, Any] = {
        "phash": imagehash.phash,
        "ahash": imagehash.average_hash,
        "whash": imagehash.whash,
        "dhash_lanczos": imagehash.dhash,
    }
    if method not in funcs:
        raise ValueError(f"unknown hash method {method!r}; use dhash, {', '.join(funcs)}")
    return np.asarray(funcs[method](image, hash_size=hash_size).hash, dtype=np.bool_).ravel()


def perceptual_hashes(
    images: Iterable,
    *,
    method: str = "dhash",
    hash_size: int = 16,
    progress: bool = False,
    workers: int = 4,
) -> np.ndarray:
    """Packed hashes ``(n, n_bits / 8)`` uint8 of PIL images, paths or ImageItems.

    Raises :class:`ImageLoadError` for the first image that cannot be read.
    """
    from oneclass.data.errors import ImageLoadError
    from oneclass.data.sources import Failure, iter_images

    images = list(images)
    bits: list = [
        image_hash(im, method, hash_size) if isinstance(im, Image.Image) else None for im in images
    ]
    todo = [k for k, b in enumerate(bits) if b is None]
    decoded = iter_images(
        [images[k] for k in todo], progress=progress, workers=workers, desc="hash"
    )
    for k, (item, result) in zip(todo, decoded, strict=True):
        if isinstance(result, Failure):
            raise ImageLoadError(item.uri, f"cannot hash image {k}: {result.reason}")
        bits[k] = image_hash(result, method, hash_size)
    if not bits:
        return np.zeros((0, (hash_size * hash_size + 7) // 8), dtype=np.uint8)
    return np.packbits(np.stack(bits), axis=1)


def _words(packed: np.ndarray) -> np.ndarray:
    """Packed uint8 hashes as uint64 words (zero-padded) for a fast popcount."""
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    if packed.ndim != 2:
        raise ValueError(f"hashes must be a 2-d array (n, bytes), got shape {packed.shape}")
    pad = (-packed.shape[1]) % 8
    if pad:
        packed = np.pad(packed, ((0, 0), (0, pad)))
    return packed.view(np.uint64)


def _check_hashes(hashes) -> np.ndarray:
    h = np.asarray(hashes)
    if h.dtype == bool:  # unpacked bits
        h = np.packbits(h.reshape(len(h), -1), axis=1)
    if h.dtype != np.uint8:
        raise ValueError(
            f"hashes must be packed uint8 (see perceptual_hashes) or bool bits, got dtype {h.dtype}"
        )
    return h


def hamming_distances(a, b=None) -> np.ndarray:
    """All Hamming distances ``(len(a), len(b))`` between packed hashes (``b`` defaults to a)."""
    wa = _words(_check_hashes(a))
    wb = wa if b is None else _words(_check_hashes(b))
    if wa.shape[1] != wb.shape[1]:
        raise ValueError(f"hash lengths differ: {wa.shape[1] * 64} vs {wb.shape[1] * 64} bits")
    out = np.zeros((len(wa), len(wb)), dtype=np.uint16)
    for k in range(wa.shape[1]):
        out += _popcount(wa[:, k, None] ^ wb[None, :, k])
    return out


_BYTE_COUNTS = np.array([bin(v).count("1") for v in range(256)], dtype=np.uint16)


def _popcount(words: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (numpy >= 2 has it built in)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words).astype(np.uint16)
    as_bytes = words.view(np.uint8).reshape(*words.shape, 8)
    return _BYTE_COUNTS[as_bytes].sum(axis=-1, dtype=np.uint16)


def near_duplicate_pairs(
    a,
    b=None,
    max_distance: int = DEFAULT_MAX_DISTANCE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs ``(i, j, distance)`` with distance <= ``max_distance``, computed block-wise;
    within one set (``b`` None) only ``i < j``."""
    wa = _check_hashes(a)
    wb = wa if b is None else _check_hashes(b)
    rows, cols, dists = [], [], []
    for start in range(0, len(wa), _BLOCK):
        d = hamming_distances(wa[start : start + _BLOCK], wb)
        i, j = np.nonzero(d <= max_distance)
        i = i + start
        if b is None:
            keep = i < j
            i, j = i[keep], j[keep]
        rows.append(i)
        cols.append(j)
        dists.append(d[i - start, j])
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), empty.copy()
    return (
        np.concatenate(rows).astype(np.int64),
        np.concatenate(cols).astype(np.int64),
        np.concatenate(dists).astype(np.int64),
    )


def near_duplicate_groups(hashes, max_distance: int = DEFAULT_MAX_DISTANCE) -> np.ndarray:
    """Group labels (0, 1, ... in order of first appearance): images linked by a chain of
    pairs within ``max_distance`` share a group (single linkage, union-find)."""
    h = _check_hashes(hashes)
    n = len(h)
    parent = np.arange(n)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    i, j, _ = near_duplicate_pairs(h, None, max_distance)
    for a, b in zip(i.tolist(), j.tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(x) for x in range(n)], dtype=np.int64)
    _, first, inverse = np.unique(roots, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inverse]


def group_split(
    n_or_ids: int | Sequence,
    groups: Sequence | None = None,
    test_size: float | int = 0.5,
    seed: int = 0,
):
    """Split so that no group is on both sides, with the test size as close to ``test_size``
    (a fraction, or a count of samples) as whole groups allow.

    Groups are visited in a seeded random order; each goes to test while it fits, then the
    group that best closes any remaining gap. Returns ``(train_idx, test_idx)`` sorted index
    arrays for an int, or ``(train_ids, test_ids)`` lists for a sequence of ids.
    """
    ids = None if isinstance(n_or_ids, int | np.integer) else list(n_or_ids)
    n = len(ids) if ids is not None else int(n_or_ids)  # type: ignore[arg-type]
    labels = np.arange(n) if groups is None else np.asarray(groups, dtype=object)
    if len(labels) != n:
        raise ValueError(f"groups has {len(labels)} entries for {n} samples")
    if isinstance(test_size, float) and 0.0 < test_size < 1.0:
        target = int(round(test_size * n))
    elif isinstance(test_size, int | np.integer) and 0 < test_size < n:
        target = int(test_size)
    else:
        raise ValueError(
            f"test_size must be a fraction in (0, 1) or a count in [1, {n - 1}], got {test_size!r}"
        )
    keys, codes = np.unique(np.asarray([str(g) for g in labels]), return_inverse=True)
    if len(keys) < 2:
        raise ValueError("all samples are in one group: a group split needs at least two")
    sizes = np.bincount(codes)
    order = np.random.default_rng(seed).permutation(len(keys))
    in_test = np.zeros(len(keys), dtype=bool)
    total = 0
    for g in order:
        if total + sizes[g] <= target:
            in_test[g] = True
            total += sizes[g]
    if total < target:  # one more group if it brings the size closer
        rest = np.flatnonzero(~in_test)
        g = rest[np.argmin(np.abs(total + sizes[rest] - target))]
        if abs(total + sizes[g] - target) < target - total and in_test.sum() < len(keys) - 1:
            in_test[g] = True
    if not in_test.any():  # every group is larger than the target: take the smallest one
        in_test[np.argmin(sizes)] = True
    test_mask = in_test[codes]
    train_idx, test_idx = np.flatnonzero(~test_mask), np.flatnonzero(test_mask)
    if ids is None:
        return train_idx, test_idx
    return [ids[i] for i in train_idx], [ids[i] for i in test_idx]


def _hashes_and_ids(x, method: str, hash_size: int) -> tuple[np.ndarray, list]:
    if isinstance(x, np.ndarray) and x.ndim == 2 and x.dtype in (np.uint8, np.bool_):
        return _check_hashes(x), list(range(len(x)))
    items = list(x)
    ids = [
        it.id if hasattr(it, "uri") else str(it) if isinstance(it, str | Path) else k
        for k, it in enumerate(items)
    ]
    return perceptual_hashes(items, method=method, hash_size=hash_size), ids


def leakage_audit(
    train,
    test,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    *,
    method: str = "dhash",
    hash_size: int = 16,
) -> pd.DataFrame:
    """Near-duplicate pairs across two sets, closest first: columns ``train_index``,
    ``test_index``, ``train_id``, ``test_id``, ``distance``. Each set is packed hashes, or
    images / paths / ImageItems to hash. Empty frame: no leak at this distance."""
    h_train, id_train = _hashes_and_ids(train, method, hash_size)
    h_test, id_test = _hashes_and_ids(test, method, hash_size)
    i, j, d = near_duplicate_pairs(h_train, h_test, max_distance)
    frame = pd.DataFrame(
        {
            "train_index": i,
            "test_index": j,
            "train_id": [id_train[k] for k in i],
            "test_id": [id_test[k] for k in j],
            "distance": d,
        }
    )
    return frame.sort_values(["distance", "train_index", "test_index"], ignore_index=True)
