"""Near-duplicate groups of a data set's images, from a manifest entry: a groups CSV
(``filename,group[,exact_dup_of]`` or named columns) and blocks of consecutive file numbers.
Items linked by either rule share one group (so a group-aware split keeps them together)."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from oneclass.data.errors import ManifestError
from oneclass.data.items import ImageItem

__all__ = ["grouped_items"]

_NUMBER = re.compile(r"(\d+)")


def _read_groups(path: Path, columns: dict[str, str] | None = None) -> dict[str, str]:
    """filename -> group from a groups CSV (default columns ``filename,group,exact_dup_of``); a
    byte-identical copy takes its original's group."""
    cols = {"file": "filename", "group": "group", **(columns or {})}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {cols["file"], cols["group"]} <= set(rows[0]):
        raise ManifestError(
            f"{path}: expected columns {cols['file']},{cols['group']}[,exact_dup_of]"
        )
    groups = {r[cols["file"]]: str(r[cols["group"]]).strip() for r in rows}
    for r in rows:
        original = (r.get("exact_dup_of") or "").strip()
        if original:
            if original not in groups:
                raise ManifestError(f"{path}: {r[cols['file']]} is a copy of unknown {original}")
            groups[r[cols["file"]]] = groups[original]
    return groups


def _block_of(item_id: str, size: int) -> str | None:
    numbers = _NUMBER.findall(Path(item_id).stem)
    return f"block{int(numbers[-1]) // size}" if numbers else None


def _merge_groups(labels: list[list[str]]) -> list[str | None]:
    """One group per item: items that share any label share a group (named by its smallest
    label); an item without labels has none."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for own in labels:
        for other in own[1:]:
            ra, rb = find(own[0]), find(other)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    return [find(own[0]) if own else None for own in labels]


def grouped_items(
    name: str, entry: dict[str, Any], root: Path, items: list[ImageItem]
) -> list[ImageItem]:
    """Set each item's near-duplicate group from a manifest entry's ``groups`` CSV and
    ``group_blocks`` rule (groups are named ``"<name>:<group>"``).

    Returns:
        The items with their groups (unchanged when the entry declares no groups).
    """
    if not entry.get("groups") and not entry.get("group_blocks"):
        return items
    labels: list[list[str]] = [[] for _ in items]
    if entry.get("groups"):
        columns = entry.get("groups_columns")
        if columns is not None and not isinstance(columns, dict):
            raise ManifestError(f"dataset {name!r}: groups_columns must be a mapping")
        groups = _read_groups(root / entry["groups"], columns)
        for own, it in zip(labels, items, strict=True):
            group = groups.get(it.id, groups.get(Path(it.id).name))
            if group is not None:
                own.append(f"g{group}" if entry.get("group_blocks") else group)
    size = entry.get("group_blocks")
    if size:
        if not isinstance(size, int) or size < 1:
            raise ManifestError(f"dataset {name!r}: group_blocks must be a positive integer")
        for own, it in zip(labels, items, strict=True):
            block = _block_of(it.id, size)
            if block is not None:
                own.insert(0, block)
    merged = _merge_groups(labels)
    return [
        ImageItem(it.id, it.uri, it.label, None if g is None else f"{name}:{g}", it.family)
        for it, g in zip(items, merged, strict=True)
    ]
