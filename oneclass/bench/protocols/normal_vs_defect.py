"""``normal-vs-defect`` (kolektor_sdd): train on normal surfaces, test held-out normal surfaces
against defective ones, split by blocks of consecutive file numbers.

Photos of one physical part carry consecutive numbers (KolektorSDD: about 8 per part), so a
split by single images would test on the part it trained on. Items whose file name is a number
``N`` fall in block ``N // split.block`` (default 8); blocks joined by a near-duplicate group
(the item's own ``group``) stay together. The blocks are split once, over normal and defective
images together: a part is wholly train or wholly test, so the defects tested are those of parts
never seen in training. ``positives`` are the normal images, ``negatives`` the defect kinds;
binary baselines train on the train blocks of ``baselines.train_families``.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import numpy as np

from oneclass.bench.protocols.base import Context
from oneclass.bench.protocols.families import PositivesVsFamilies

DEFAULT_BLOCK = 8


def block_groups(items: list, block: int = DEFAULT_BLOCK) -> np.ndarray:
    """Returns each item's split group: its number's block (per family), merged with the blocks
    its own ``group`` touches; ``id:<id>`` for an item without a number.

    Returns:
        ``(n,)`` object array of group names.
    """
    base = []
    for it in items:
        stem = PurePosixPath(re.split(r"[!\\]", it.id)[-1]).stem
        base.append(f"block:{int(stem) // block}" if stem.isdigit() else f"id:{it.id}")
    parent = {g: g for g in base}

    def find(g: str) -> str:
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    first: dict[str, str] = {}
    for it, g in zip(items, base, strict=True):
        if it.group:
            key = f"{it.family}:{it.group}" if it.group.isdigit() else str(it.group)
            other = first.setdefault(key, g)
            parent[find(g)] = find(other)
    return np.array([find(g) for g in base], dtype=object)


class NormalVsDefect(PositivesVsFamilies):
    """Normal surfaces against defects, split by blocks of numbers (see the module doc)."""

    name = "normal-vs-defect"
    views = tuple(v for v in PositivesVsFamilies.views if v.setting != "wild")
    split_words = "blocks of consecutive numbers"
    shared_split = True

    def groups(self, ctx: Context, items: list, hashes: np.ndarray) -> np.ndarray:
        return block_groups(items, int(ctx.suite.split.get("block", DEFAULT_BLOCK)))
