"""What a protocol is: how a suite's images become train/test tasks, seed by seed, and what the
report shows for the settings it produces.

A protocol module defines one :class:`Protocol` subclass and is named once in the registry
(:mod:`oneclass.bench.protocols`). The runner never looks at a protocol's name: it asks the
protocol for its :class:`Work` and runs each task with each detector as one cell.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar
from typing import Protocol as TypingProtocol

import numpy as np

from oneclass.bench.schema import Check, SuiteError
from oneclass.data.splits import group_split


@dataclass
class Task:
    """One training set and one test set; the runner crosses it with detectors."""

    setting: str
    value: str
    detectors: list[str]
    train: np.ndarray  # item indices
    test: np.ndarray  # item indices
    test_label: np.ndarray  # 1 = in-class
    test_family: np.ndarray  # negative family, or "positive"
    train_y: np.ndarray | None = None  # for binary baselines
    split: str = ""  # how train/test were split, for the results table
    extra: dict = field(default_factory=dict)
    target: str = ""  # the positive class, where a suite has several (one-vs-rest)

    @property
    def binary(self) -> bool:
        """Whether the task trains with labelled negatives."""
        return self.train_y is not None


@dataclass(frozen=True)
class View:
    """How the report shows one setting: ``kind`` ``"ranking"`` (a ranking table, ROC curves
    and galleries), ``"per-target"`` (the mean and worst over targets) or ``"curve"`` (AUC
    against the numeric setting value, ``xlabel``)."""

    setting: str
    kind: str
    title: str = ""
    xlabel: str = ""


@dataclass
class Work:
    """One task of one seed over ``items``, with the embeddings its cells score."""

    seed: int
    items: list
    task: Task
    embeddings: Any


class Context(TypingProtocol):
    """The services a protocol plans with (implemented by :mod:`oneclass.bench.context`)."""

    suite: Any
    seeds: list[int]
    progress: bool

    def items(self, entry: dict[str, Any], family: str | None = None) -> list: ...

    def prefetch(self, items: list) -> list: ...

    def embed(self, embeddings: Any, items: list) -> None: ...

    def hashes(self, items: list, embeddings: Any) -> np.ndarray: ...

    def audit(
        self, items: list, splits: dict[int, tuple[np.ndarray, np.ndarray]], hashes: np.ndarray
    ) -> None: ...

    def wild_set(self, positives: list, faces: list, seed: int) -> list: ...

    def array_embeddings(self) -> Any: ...


class Protocol(ABC):
    """Base class of every protocol."""

    #: the name a suite's ``protocol:`` key gives
    name: ClassVar[str]
    #: the suite keys this protocol reads, with their checks (:mod:`oneclass.bench.schema`)
    keys: ClassVar[dict[str, Check]] = {}
    #: what the report shows, setting by setting, in this order
    views: ClassVar[tuple[View, ...]] = ()
    #: ``False``: the protocol brings its own vectors (the suite's embedders are not used)
    uses_embedder: ClassVar[bool] = True

    def check(self, suite: Any, where: str) -> None:
        """Raise :class:`SuiteError` if ``suite`` lacks what this protocol needs."""
        return None

    @abstractmethod
    def plan(self, ctx: Context, embeddings: Any) -> list[Work]:
        """Returns every task of every seed of ``ctx.seeds`` (embedding what it needs)."""

    @staticmethod
    def require(suite: Any, where: str, *keys: str) -> None:
        """Raise :class:`SuiteError` naming the first of ``keys`` that ``suite`` lacks."""
        for key in keys:
            if not suite.get(key):
                raise SuiteError(f"{where}: protocol {suite.protocol} needs {key!r}")


def split_groups(items: list, hashes: np.ndarray | None = None) -> np.ndarray:
    """Split groups: an item's own ``group`` (e.g. the Cage crops' event groups), else its
    near-duplicate group from perceptual ``hashes`` (rows of zeros: unreadable, own group).

    Returns:
        ``(n,)`` object array of group names.
    """
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
    """Returns ``n`` of ``idx`` without replacement (all when ``n`` is None or too large),
    sorted."""
    if n is None or n >= idx.size:
        return idx
    return np.sort(rng.choice(idx, size=n, replace=False))


def group_halves(
    idx: np.ndarray, groups: np.ndarray, test_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``(train, test)`` of ``idx``, split so that no group straddles the two."""
    tr, te = group_split(idx.size, groups[idx], test_size=test_size, seed=seed)
    return idx[np.asarray(tr, dtype=int)], idx[np.asarray(te, dtype=int)]


def split_tasks(
    task: Callable[..., Task],
    setting: str,
    value: Any,
    suite: Any,
    pos_train: np.ndarray,
    neg_train: np.ndarray,
    rng: np.random.Generator,
) -> Iterator[Task]:
    """Yields the tasks of one train/test split: the one-class row, the binary baselines (with
    the training negatives), few-shot subsets of the positives and label-efficiency subsets of
    the negatives, in that order (the order the seeded ``rng`` is drawn in).

    Args:
        task: builds a :class:`Task` from ``(setting, value, detectors, train, train_y=None)``.
        setting: the main row's setting (e.g. ``"main"``); ``value`` its value.
        suite: the suite (``detectors``, ``baselines``, ``fewshot``, ``label_efficiency``).
        pos_train: training positives; ``neg_train``: training negatives (item indices).
        rng: draws the few-shot and label-efficiency subsets.
    """
    yield task(setting, value, suite.detectors, pos_train)
    baselines = list(suite.baselines.get("detectors", []))
    if baselines and neg_train.size:
        y = np.r_[np.ones(pos_train.size, int), np.zeros(neg_train.size, int)]
        yield task(setting, value, baselines, np.r_[pos_train, neg_train], y)
    for n in suite.fewshot:
        if n < pos_train.size:
            yield task("fewshot", n, suite.detectors, sample(pos_train, n, rng))
    eff = suite.label_efficiency or {}
    for n in eff.get("counts", []) if neg_train.size else []:
        chosen = sample(neg_train, None if n == "all" else int(n), rng)
        y = np.r_[np.ones(pos_train.size, int), np.zeros(chosen.size, int)]
        yield task(
            "label-efficiency",
            n if n != "all" else chosen.size,
            [eff.get("detector", "logistic")],
            np.r_[pos_train, chosen],
            y,
        )
