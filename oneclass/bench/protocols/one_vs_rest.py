"""``one-vs-rest`` (lfw-identity, cifar10-oneclass, the generic sets): every label with enough
images is the positive class in turn (its ``target``); train on its train part, test on the test
parts of all labels.

The train/test split (``data.split``): ``halves`` (the first half of each label's images by name
train), ``subset`` (the data set's own train/test folders) or ``groups`` (group-aware,
``data.test_size`` of each label's near-duplicate groups test, seeded). Optional, per target:
``baselines`` (binary detectors trained with the other labels' train parts as negatives),
``fewshot`` (n training positives) and ``label_efficiency`` (n labelled negatives added).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from oneclass.bench import schema as S
from oneclass.bench.protocols.base import (
    Context,
    Protocol,
    Task,
    View,
    Work,
    group_halves,
    split_groups,
    split_tasks,
)
from oneclass.bench.protocols.families import BASELINE_KEYS, LABEL_EFFICIENCY_KEYS

DATA_KEYS: dict[str, S.Check] = {
    **S.ENTRY_KEYS,
    "min_images": S.integer(1),
    "split": S.choice("halves", "subset", "groups"),
    "test_size": S.fraction,
    "test_only_targets": S.boolean,
}


def _subset(item: Any) -> str | None:
    parts = re.split(r"[/!\\]", item.id)
    return next((p for p in parts if p in ("train", "test")), None)


def train_mask(
    suite: Any, items: list, seed: int, groups: np.ndarray | None = None
) -> tuple[np.ndarray, str]:
    """Returns which items train (the rest test) and the split in words."""
    cfg = suite.data or {}
    labels = np.array([it.label for it in items], dtype=object)
    how = cfg.get("split", "halves")
    if how == "subset":
        # the data set's own train/test folders, e.g. cifar10_jpg/{train,test}/<class>/
        subset = np.array([_subset(it) for it in items], dtype=object)
        return subset == "train", "the data set's own train/test subsets"
    is_train = np.zeros(len(items), bool)
    if how == "groups":
        if groups is None:
            raise ValueError("split: groups needs the items' split groups")
        test_size = float(cfg.get("test_size", 0.5))
        for lab in dict.fromkeys(labels):
            tr, _ = group_halves(np.flatnonzero(labels == lab), groups, test_size, seed)
            is_train[tr] = True
        return is_train, (
            f"group-aware {1 - test_size:.0%}/{test_size:.0%} of each label by near-duplicate group"
        )
    # first half of each label's images (by id) for training, second half for testing
    order = np.argsort([it.id for it in items], kind="stable")
    for lab in dict.fromkeys(labels):
        idx = [i for i in order if labels[i] == lab]
        is_train[idx[: len(idx) // 2]] = True
    return is_train, "first half of each label's images (sorted by name) train, second half test"


def one_vs_rest(
    suite: Any, items: list, seed: int, groups: np.ndarray | None = None
) -> Iterator[Task]:
    """Yields each target's tasks of one seed (see the module docstring)."""
    cfg = suite.data or {}
    min_images = int(cfg.get("min_images", 2))
    labels = np.array([it.label for it in items], dtype=object)
    is_train, split = train_mask(suite, items, seed, groups)
    counts = {lab: int((labels == lab).sum()) for lab in dict.fromkeys(labels)}
    targets = [lab for lab, c in counts.items() if c >= min_images]
    eligible = (
        np.isin(labels, targets) if cfg.get("test_only_targets", True) else np.ones_like(is_train)
    )
    test = np.flatnonzero(~is_train & eligible)
    rng = np.random.default_rng(seed)
    for lab in targets:
        train = np.flatnonzero(is_train & (labels == lab))
        label = (labels[test] == lab).astype(int)
        fam = np.where(label == 1, "positive", "other")
        neg_train = np.flatnonzero(is_train & eligible & (labels != lab))

        def task(
            setting: str,
            value: Any,
            dets: list[str],
            tr: np.ndarray,
            y: np.ndarray | None = None,
            lab: str = lab,
            label: np.ndarray = label,
            fam: np.ndarray = fam,
        ) -> Task:
            return Task(setting, str(value), dets, tr, test, label, fam, y, split, target=lab)

        yield from split_tasks(task, "per-target", lab, suite, train, neg_train, rng)


class OneVsRest(Protocol):
    """Each label in turn against all the others (see the module docstring)."""

    name = "one-vs-rest"
    keys = {
        "data": S.mapping(DATA_KEYS),
        "baselines": S.mapping(BASELINE_KEYS),
        "fewshot": S.list_of(S.integer(1)),
        "label_efficiency": S.mapping(LABEL_EFFICIENCY_KEYS),
    }
    views = (
        View("per-target", "per-target", "Per target"),
        View(
            "fewshot",
            "curve",
            "AUC against the number of positives (mean over targets)",
            "number of training positives",
        ),
        View(
            "label-efficiency",
            "curve",
            "Label efficiency: AUC as labelled negatives are added (mean over targets)",
            "labelled negatives added",
        ),
    )

    def check(self, suite: Any, where: str) -> None:
        self.require(suite, where, "data")

    def plan(self, ctx: Context, embeddings: Any) -> list[Work]:
        suite = ctx.suite
        items = ctx.prefetch(ctx.items(suite.data))
        ctx.embed(embeddings, items)
        grouped = (suite.data or {}).get("split") == "groups"
        hashes = ctx.hashes(items, embeddings) if grouped else None
        groups = split_groups(items, hashes) if grouped else None
        work: list[Work] = []
        splits = {}
        for seed in ctx.seeds:
            tasks = list(one_vs_rest(suite, items, seed, groups))
            work += [Work(seed, items, t, embeddings) for t in tasks]
            if tasks:
                splits[seed] = (np.unique(np.concatenate([t.train for t in tasks])), tasks[0].test)
        if hashes is not None:
            ctx.audit(items, splits, hashes)
        return work
