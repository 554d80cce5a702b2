"""``positives-vs-families`` (niccage, george): one positive class against families of negatives.

Positives are split by near-duplicate group (``split.test_size``); negatives come in families;
the families that binary baselines train on are split the same way (group-aware) and only their
test halves are scored, so every detector of a seed is tested on the same images, and baselines
are also tested on families they never saw. Settings: ``main``, ``fewshot`` (n positives),
``label-efficiency`` (n labelled negatives), ``wild`` (synthetic in-the-wild composites, see
:mod:`oneclass.bench.wild`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

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

BASELINE_KEYS: dict[str, S.Check] = {
    "detectors": S.list_of(S.text),
    "train_families": S.list_of(S.text),
}
LABEL_EFFICIENCY_KEYS: dict[str, S.Check] = {
    "detector": S.text,
    "counts": S.list_of(S.count_or_all),
}
WILD_KEYS: dict[str, S.Check] = {
    "embedders": S.list_of(S.text),
    "per_kind": S.integer(1),
    "face_families": S.list_of(S.text),
    "backgrounds": S.entry,
}
#: the keys of a suite with positives, negative families, baselines and curves
KEYS: dict[str, S.Check] = {
    "positives": S.entry,
    "negatives": S.mapping_of(S.entry),
    "split": S.mapping({"test_size": S.fraction, "block": S.integer(1)}),
    "baselines": S.mapping(BASELINE_KEYS),
    "fewshot": S.list_of(S.integer(1)),
    "label_efficiency": S.mapping(LABEL_EFFICIENCY_KEYS),
}


def positives_vs_families(
    suite: Any,
    items: list,
    role: np.ndarray,
    family: np.ndarray,
    groups: np.ndarray,
    seed: int,
    *,
    shared_split: bool = False,
) -> Iterator[Task]:
    """Yields the tasks of one seed. ``role`` is "positive"/"negative" per item, ``family`` its
    family, ``groups`` its split group (:func:`split_groups`). ``shared_split``: split the groups
    once over all items (a group's images of every family fall on the same side, and families
    that no baseline trains on are tested on their test side only), instead of family by family.
    """
    test_size = float(suite.split.get("test_size", 0.5))
    rng = np.random.default_rng(seed)
    pos = np.flatnonzero(role == "positive")
    train_fams = list(suite.baselines.get("train_families", []))
    is_train = np.zeros(len(items), bool)
    if shared_split:
        is_train[group_halves(np.arange(len(items)), groups, test_size, seed)[0]] = True
        pos_train, pos_test = pos[is_train[pos]], pos[~is_train[pos]]
    else:
        pos_train, pos_test = group_halves(pos, groups, test_size, seed)
    neg_train_parts, neg_test_parts = [], []
    for fam in dict.fromkeys(family[role == "negative"]):
        idx = np.flatnonzero((role == "negative") & (family == fam))
        if shared_split:
            if fam in train_fams:
                neg_train_parts.append(idx[is_train[idx]])
            neg_test_parts.append(idx[~is_train[idx]])
        elif fam in train_fams:
            tr, te = group_halves(idx, groups, test_size, seed)
            neg_train_parts.append(tr)
            neg_test_parts.append(te)
        else:
            neg_test_parts.append(idx)
    neg_train = np.concatenate(neg_train_parts) if neg_train_parts else np.array([], int)
    neg_test = np.concatenate(neg_test_parts)
    test = np.concatenate([pos_test, neg_test])
    label = np.r_[np.ones(pos_test.size, int), np.zeros(neg_test.size, int)]
    fam_test = np.where(label == 1, "positive", family[test])
    split = (
        f"group-aware {1 - test_size:.0%}/{test_size:.0%} of positives by near-duplicate "
        f"group; baseline families {train_fams or 'none'} split the same way"
    )

    def task(setting, value, dets, train, train_y=None):
        return Task(setting, str(value), dets, train, test, label, fam_test, train_y, split)

    yield from split_tasks(task, "main", "all", suite, pos_train, neg_train, rng)


class PositivesVsFamilies(Protocol):
    """One positive class; negatives in families; group-aware split (see the module doc)."""

    name = "positives-vs-families"
    keys = {**KEYS, "wild": S.mapping(WILD_KEYS)}
    views: ClassVar[tuple[View, ...]] = (
        View("main", "ranking"),
        View("wild", "ranking", "In the wild"),
        View(
            "fewshot",
            "curve",
            "AUC against the number of positives",
            "number of training positives",
        ),
        View(
            "label-efficiency",
            "curve",
            "Label efficiency: AUC as labelled negatives are added",
            "labelled negatives added",
        ),
    )
    #: how train/test were split, in words (the split groups come from :meth:`groups`)
    split_words = "near-duplicate group"
    #: split the groups once over all families (see :func:`positives_vs_families`)
    shared_split = False

    def check(self, suite: Any, where: str) -> None:
        self.require(suite, where, "positives", "negatives")

    def groups(self, ctx: Context, items: list, hashes: np.ndarray) -> np.ndarray:
        """Returns the split group of each item (own group, else near-duplicate group)."""
        return split_groups(items, hashes)

    def plan(self, ctx: Context, embeddings: Any) -> list[Work]:
        suite = ctx.suite
        items: list = []
        for fam, entry in [("positive", suite.positives), *suite.negatives.items()]:
            items += ctx.items(entry, fam)
        items = ctx.prefetch(items)
        family = np.array([it.family for it in items], dtype=object)
        role = np.where(family == "positive", "positive", "negative").astype(object)
        ctx.embed(embeddings, items)
        hashes = ctx.hashes(items, embeddings)
        groups = self.groups(ctx, items, hashes)
        work: list[Work] = []
        splits = {}
        wild = bool(suite.wild) and embeddings.spec in suite.wild.get(
            "embedders", [embeddings.spec]
        )
        for seed in ctx.seeds:
            tasks = list(
                positives_vs_families(
                    suite, items, role, family, groups, seed, shared_split=self.shared_split
                )
            )
            for t in tasks:
                t.split = t.split.replace("near-duplicate group", self.split_words)
            splits[seed] = (np.unique(np.concatenate([t.train for t in tasks])), tasks[0].test)
            work += [Work(seed, items, t, embeddings) for t in tasks]
            if wild:
                work.append(self._wild(ctx, embeddings, items, tasks[0], seed))
        ctx.audit(items, splits, hashes)
        return work

    def _wild(self, ctx: Context, embeddings: Any, items: list, main: Task, seed: int) -> Work:
        cfg = ctx.suite.wild
        test = [items[i] for i in main.test]
        pos = [it for it, lab in zip(test, main.test_label, strict=True) if lab == 1]
        faces = [it for it in test if it.family in cfg.get("face_families", ["trump", "glint"])]
        wild = ctx.wild_set(pos, faces, seed)
        ctx.embed(embeddings, wild)
        all_items = items + wild
        idx = np.arange(len(items), len(all_items))
        label = np.array([int(w.family == "positive") for w in wild])
        fam = np.array([w.family for w in wild], dtype=object)
        task = Task(
            "wild",
            "composites",
            ctx.suite.detectors,
            main.train,
            idx,
            label,
            fam,
            None,
            "wild composites built from test-split images only",
        )
        return Work(seed, all_items, task, embeddings)
