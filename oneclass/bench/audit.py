"""The leakage audit: near-duplicate pairs across each seed's train and test images."""

from __future__ import annotations

from typing import Any

import numpy as np


def item_hashes(items: list, readable: np.ndarray, *, progress: bool = False) -> np.ndarray:
    """Returns packed perceptual hashes of the readable items (rows of zeros for the others)."""
    from oneclass.data.splits import perceptual_hashes

    good = perceptual_hashes(
        [it for it, ok in zip(items, readable, strict=True) if ok], progress=progress
    )
    out = np.zeros((len(items), good.shape[1] if good.ndim == 2 else 32), dtype=np.uint8)
    out[readable] = good
    return out


def audit_rows(
    suite: str, items: list, splits: dict[int, tuple[np.ndarray, np.ndarray]], hashes: np.ndarray
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Returns the near-duplicate pairs (AUDIT_COLUMNS rows) across each seed's ``(train,
    test)`` item indices, and their count per seed."""
    from oneclass.data.splits import near_duplicate_pairs

    readable = np.asarray(hashes.any(axis=1), dtype=bool)
    rows: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for seed, (train, test) in splits.items():
        train, test = train[readable[train]], test[readable[test]]
        i, j, d = near_duplicate_pairs(hashes[train], hashes[test])
        counts[str(seed)] = len(i)
        rows += [
            {
                "suite": suite,
                "seed": seed,
                "train_id": items[train[a]].id,
                "test_id": items[test[b]].id,
                "distance": int(c),
            }
            for a, b, c in zip(i, j, d, strict=True)
        ]
    return rows, counts
