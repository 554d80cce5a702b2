"""Protocols: how a suite's images become train/test tasks, seed by seed, without leakage.

* ``positives-vs-families`` (niccage, george): positives are split by near-duplicate group
  (``split.test_size``); negatives come in families; the families that binary baselines train on
  are split the same way (group-aware) and only their test halves are scored, so every detector of a
  seed is tested on the same images, and baselines are also tested on families they never saw.
  Settings: ``main``, ``fewshot`` (n positives), ``label-efficiency`` (n labelled negatives),
  ``wild`` (synthetic in-the-wild composites, see :mod:`oneclass.bench.wild`).
* ``one-vs-rest`` (lfw-identity, cifar10-oneclass): every label with enough images is the positive
  class in turn (``per-target``); train on its train part, test on the test parts of all labels.
* ``adbench``: precomputed ADBench embedding arrays, fit on a seeded 70% of the normals.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from oneclass.bench.suite import Suite
from oneclass.data.splits import group_split


@dataclass
class Task:
    """One training set and one test set; the runner crosses it with detectors."""

    setting: str
    value: str
    detectors: list[str]
    train: np.ndarray                      # item indices
    test: np.ndarray                       # item indices
    test_label: np.ndarray                 # 1 = in-class
    test_family: np.ndarray                # negative family, or "positive"
    train_y: np.ndarray | None = None      # for binary baselines
    split: str = ""                        # how train/test were split, for the results table
    extra: dict = field(default_factory=dict)


def split_groups(items, hashes: np.ndarray | None = None) -> np.ndarray:
    """Split groups: an item's own ``group`` (e.g. the Cage crops' event groups), else its
    near-duplicate group from perceptual ``hashes`` (rows of zeros: unreadable, own group)."""
    from oneclass.data.splits import near_duplicate_groups

    out = np.array([it.group or "" for it in items], dtype=object)
    todo = np.flatnonzero(out == "")
    if hashes is not None and todo.size:
        readable = todo[hashes[todo].any(axis=1)]
        dup = near_duplicate_groups(hashes[readable])
        out[readable] = [f"dup:{g}" for g in dup]
    missing = out == ""
    out[missing] = [f"id:{items[i].id}" for i in np.flatnonzero(missing)]
    return out


def sample(idx: np.ndarray, n: int | None, rng: np.random.Generator) -> np.ndarray:
    """``n`` of ``idx`` without replacement (all when ``n`` is None or too large), sorted."""
    if n is None or n >= idx.size:
        return idx
    return np.sort(rng.choice(idx, size=n, replace=False))


def _group_halves(idx: np.ndarray, groups: np.ndarray, test_size: float, seed: int):
    tr, te = group_split(idx.size, groups[idx], test_size=test_size, seed=seed)
    return idx[np.asarray(tr, dtype=int)], idx[np.asarray(te, dtype=int)]


def positives_vs_families(suite: Suite, items: list, role: np.ndarray, family: np.ndarray,
                          groups: np.ndarray, seed: int) -> Iterator[Task]:
    """Tasks of one seed. ``role`` is "positive"/"negative" per item, ``family`` its family,
    ``groups`` its split group (:func:`split_groups`)."""
    test_size = float(suite.split.get("test_size", 0.5))
    rng = np.random.default_rng(seed)
    pos = np.flatnonzero(role == "positive")
    pos_train, pos_test = _group_halves(pos, groups, test_size, seed)
    train_fams = list(suite.baselines.get("train_families", []))
    neg_train_parts, neg_test_parts = [], []
    for fam in dict.fromkeys(family[role == "negative"]):
        idx = np.flatnonzero((role == "negative") & (family == fam))
        if fam in train_fams:
            tr, te = _group_halves(idx, groups, test_size, seed)
            neg_train_parts.append(tr)
            neg_test_parts.append(te)
        else:
            neg_test_parts.append(idx)
    neg_train = np.concatenate(neg_train_parts) if neg_train_parts else np.array([], int)
    neg_test = np.concatenate(neg_test_parts)
    test = np.concatenate([pos_test, neg_test])
    label = np.r_[np.ones(pos_test.size, int), np.zeros(neg_test.size, int)]
    fam_test = np.where(label == 1, "positive", family[test])
    split = (f"group-aware {1 - test_size:.0%}/{test_size:.0%} of positives by near-duplicate "
             f"group; baseline families {train_fams or 'none'} split the same way")

    def task(setting, value, dets, train, train_y=None):
        return Task(setting, str(value), dets, train, test, label, fam_test, train_y, split)

    yield task("main", "all", suite.detectors, pos_train)
    baselines = list(suite.baselines.get("detectors", []))
    if baselines and neg_train.size:
        y = np.r_[np.ones(pos_train.size, int), np.zeros(neg_train.size, int)]
        yield task("main", "all", baselines, np.r_[pos_train, neg_train], y)
    for n in suite.fewshot:
        if n < pos_train.size:
            yield task("fewshot", n, suite.detectors, sample(pos_train, n, rng))
    eff = suite.label_efficiency
    if eff and neg_train.size:
        for n in eff.get("counts", []):
            chosen = sample(neg_train, None if n == "all" else int(n), rng)
            y = np.r_[np.ones(pos_train.size, int), np.zeros(chosen.size, int)]
            yield task("label-efficiency", n if n != "all" else chosen.size,
                       [eff.get("detector", "logistic")], np.r_[pos_train, chosen], y)


def _subset(item) -> str | None:
    parts = re.split(r"[/!\\]", item.id)
    return next((p for p in parts if p in ("train", "test")), None)


def one_vs_rest(suite: Suite, items: list, seed: int) -> Iterator[Task]:
    """Each label with enough images against all others (see the module docstring)."""
    cfg = suite.data or {}
    min_images = int(cfg.get("min_images", 2))
    labels = np.array([it.label for it in items], dtype=object)
    if cfg.get("split", "halves") == "subset":
        # the data set's own train/test folders, e.g. cifar10_jpg/{train,test}/<class>/
        subset = np.array([_subset(it) for it in items], dtype=object)
        is_train, split = subset == "train", "the data set's own train/test subsets"
    else:
        # first half of each label's images (by id) for training, second half for testing
        is_train = np.zeros(len(items), bool)
        order = np.argsort([it.id for it in items], kind="stable")
        for lab in dict.fromkeys(labels):
            idx = [i for i in order if labels[i] == lab]
            is_train[idx[: len(idx) // 2]] = True
        split = "first half of each label's images (sorted by name) train, second half test"
    counts = {lab: int((labels == lab).sum()) for lab in dict.fromkeys(labels)}
    targets = [lab for lab, c in counts.items() if c >= min_images]
    eligible = np.isin(labels, targets) if cfg.get("test_only_targets", True) else np.ones_like(
        is_train)
    test = np.flatnonzero(~is_train & eligible)
    for lab in targets:
        train = np.flatnonzero(is_train & (labels == lab))
        label = (labels[test] == lab).astype(int)
        fam = np.where(label == 1, "positive", "other")
        yield Task("per-target", lab, suite.detectors, train, test, label, fam, None, split)
