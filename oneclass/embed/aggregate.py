"""How an image's vectors become training rows and one image score: declared once, per kind.

This module is the one scoring path. :class:`oneclass.pipeline.Pipeline`, the benchmark harness
and every engine call :func:`training_vectors` and :func:`score_images`; nothing else decides
which vector of an image is trained on or which one decides its score.

============  ====================================  ===========================================
kind          training rows                         image score (higher = more in-class)
============  ====================================  ===========================================
``image``     its one vector                        the score of that vector
``face``      the largest face                      the best face: "is he in this image?"
``patch``     every patch                           its least in-class 1 % of patches (their
                                                    mean): "is any part wrong?"; all patch
                                                    scores form the anomaly map
============  ====================================  ===========================================

Why the mean of the least in-class 1 % of patches (:data:`PATCH_TAIL`) and not the single least
in-class patch (PatchCore's maximum): one stray patch of a normal image (an edge, a speck of dust)
decides the maximum, while a defect spans several neighbouring patches. On kolektor_sdd,
cross-validated over two seeds of five group folds (``benchmarks/results/patches.md``), the 1 %
tail raised the image AUC by 0.015-0.03 for every tap set tried.

An image with no vector (a face embedder that found no face) is not trained on and takes
``empty_score`` with status ``"no_face"``; a failed image (``None``) is never scored (``nan``,
status ``"failed"``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from oneclass.embed.base import ImageEmbedding

Kind = Literal["image", "face", "patch"]

#: the status of an image whose embedder found nothing to embed (a face embedder: no face)
NO_VECTOR_STATUS = "no_face"
#: fraction of an image's patches whose mean is its score (the least in-class ones)
PATCH_TAIL = 0.01
#: most vectors scored in one call of the detector (bounds memory for patch embeddings)
MAX_ROWS_PER_CALL = 65_536


@dataclass(frozen=True)
class Aggregation:
    """What one embedder kind trains on and how its image score is taken.

    ``score``: ``"only"`` (the one vector), ``"max"`` / ``"min"`` (the most / least in-class
    vector); with ``tail`` > 0, the mean of that fraction of the most / least in-class vectors
    (at least one).
    """

    kind: str
    train: Literal["only", "largest", "all"]
    score: Literal["only", "max", "min"]
    tail: float = 0.0

    def reduce(self, vector_scores: np.ndarray) -> tuple[int, float]:
        """Returns ``(decisive vector index, image score)`` of one image's vector scores."""
        s = np.asarray(vector_scores, dtype=np.float64).ravel()
        if self.score == "only":
            return 0, float(s[0])
        j = int(np.argmax(s) if self.score == "max" else np.argmin(s))
        n = max(1, math.ceil(self.tail * s.size))
        if n == 1:
            return j, float(s[j])
        part = (
            np.partition(s, s.size - n)[s.size - n :]
            if self.score == "max"
            else np.partition(s, n - 1)[:n]
        )
        return j, float(part.mean())


AGGREGATIONS: dict[str, Aggregation] = {
    "image": Aggregation("image", train="only", score="only"),
    "face": Aggregation("face", train="largest", score="max"),
    "patch": Aggregation("patch", train="all", score="min", tail=PATCH_TAIL),
}


def aggregation_for(kind: str) -> Aggregation:
    """Returns the :class:`Aggregation` of an embedder kind; ``ValueError`` for an unknown kind."""
    try:
        return AGGREGATIONS[kind]
    except KeyError:
        raise ValueError(
            f"unknown embedder kind {kind!r}; known: {', '.join(sorted(AGGREGATIONS))}"
        ) from None


@dataclass
class TrainingSet:
    """Training rows taken from a list of image embeddings.

    Attributes:
        X: ``(n_rows, dim)`` float64 training matrix.
        image_index: ``(n_rows,)`` position in the input list of the image each row came from.
        counts: ``images``, ``used`` (images that gave rows), ``no_face`` and ``failed`` counts.
    """

    X: np.ndarray
    image_index: np.ndarray
    counts: dict[str, int]


def training_vectors(
    embeddings: Sequence[ImageEmbedding | None], kind: str, *, what: str = "images"
) -> TrainingSet:
    """Turn per-image embeddings into the rows a detector is fitted on.

    Args:
        embeddings: one entry per image, ``None`` for an image that failed.
        kind: the embedder's ``kind`` (see the module table).
        what: how to call the images in an error message ("positives", "negatives").

    Returns:
        The :class:`TrainingSet`.

    Raises:
        ValueError: no image gave a usable vector (the counts are in the message).
    """
    rule = aggregation_for(kind)
    rows: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    no_face = failed = 0
    for i, emb in enumerate(embeddings):
        if emb is None:
            failed += 1
            continue
        if emb.vectors.shape[0] == 0:
            no_face += 1
            continue
        if rule.train == "all":
            rows.append(emb.vectors)
            owners.append(np.full(emb.vectors.shape[0], i, dtype=np.int64))
        else:
            j = emb.largest() if rule.train == "largest" else 0
            rows.append(emb.vectors[j : j + 1])
            owners.append(np.array([i], dtype=np.int64))
    counts = {"images": len(embeddings), "used": len(rows), "no_face": no_face, "failed": failed}
    if not rows:
        raise ValueError(f"no usable {what}: {counts}")
    return TrainingSet(
        X=np.vstack(rows).astype(np.float64, copy=False),
        image_index=np.concatenate(owners),
        counts=counts,
    )


@dataclass
class ImageScores:
    """Scores of a list of images.

    Attributes:
        scores: ``(n,)`` float64 image scores; ``nan`` for failed images, ``empty_score`` for
            images without a vector.
        status: ``"ok"``, ``"no_face"`` or ``"failed"`` per image.
        n_vectors: ``(n,)`` vectors (faces, patches) per image.
        decisive: ``(n,)`` index of the vector that decided the score, ``-1`` when none did.
        vector_scores: per image, the score of each of its vectors (``None`` when it has none);
            for a patch embedding these, laid on its ``grid``, are the anomaly map.
    """

    scores: np.ndarray
    status: list[str]
    n_vectors: np.ndarray
    decisive: np.ndarray
    vector_scores: list[np.ndarray | None] = field(default_factory=list)


def score_images(
    embeddings: Sequence[ImageEmbedding | None],
    kind: str,
    score_vectors: Callable[[np.ndarray], np.ndarray],
    *,
    empty_score: float = -math.inf,
) -> ImageScores:
    """Score images by the rule of their embedder kind.

    Args:
        embeddings: one entry per image, ``None`` for an image that failed.
        kind: the embedder's ``kind``.
        score_vectors: in-class scores of a ``(rows, dim)`` matrix (a detector's
            ``score_samples``); called on at most :data:`MAX_ROWS_PER_CALL` rows at a time.
        empty_score: the score of an image with no vector (default ``-inf``: ranked last).

    Returns:
        The :class:`ImageScores`, in input order.
    """
    rule = aggregation_for(kind)
    n = len(embeddings)
    scores = np.full(n, math.nan)
    n_vectors = np.zeros(n, dtype=np.int64)
    decisive = np.full(n, -1, dtype=np.int64)
    status = ["failed" if e is None else "ok" for e in embeddings]
    per_image: list[np.ndarray | None] = [None] * n
    pending: list[int] = []
    pending_rows = 0

    def flush() -> None:
        nonlocal pending_rows
        if not pending:
            return
        flat = np.asarray(
            score_vectors(np.vstack([embeddings[i].vectors for i in pending])),  # type: ignore[union-attr]
            dtype=np.float64,
        ).ravel()
        at = 0
        for i in pending:
            k = int(n_vectors[i])
            s = flat[at : at + k]
            at += k
            per_image[i] = s
            decisive[i], scores[i] = rule.reduce(s)
        pending.clear()
        pending_rows = 0

    for i, emb in enumerate(embeddings):
        if emb is None:
            continue
        k = int(emb.vectors.shape[0])
        n_vectors[i] = k
        if k == 0:
            scores[i], status[i] = empty_score, NO_VECTOR_STATUS
            continue
        if pending and pending_rows + k > MAX_ROWS_PER_CALL:
            flush()
        pending.append(i)
        pending_rows += k
    flush()
    return ImageScores(scores, status, n_vectors, decisive, per_image)


def image_scores_from_rows(
    row_scores: np.ndarray, image_index: np.ndarray, n_images: int, kind: str
) -> np.ndarray:
    """Aggregate per-row scores of a :class:`TrainingSet` into per-image scores, by the kind's rule.

    Used to calibrate a threshold on image scores when training rows are not images (patches):
    the detector's out-of-sample scores of the training rows, taken per image the way
    :func:`score_images` takes them.

    Args:
        row_scores: ``(n_rows,)`` scores of the training rows; ``nan`` for rows not scored.
        image_index: ``(n_rows,)`` the image each row came from (``TrainingSet.image_index``).
        n_images: the number of images.
        kind: the embedder's kind.

    Returns:
        ``(n_images,)`` image scores, ``nan`` for images without a scored row.
    """
    rule = aggregation_for(kind)
    s = np.asarray(row_scores, dtype=np.float64).ravel()
    idx = np.asarray(image_index, dtype=np.int64).ravel()
    if s.shape != idx.shape:
        raise ValueError(f"{s.size} row scores for {idx.size} rows")
    out = np.full(n_images, np.nan)
    ok = ~np.isnan(s)
    s, idx = s[ok], idx[ok]
    order = np.argsort(idx, kind="stable")
    s, idx = s[order], idx[order]
    owners, starts = np.unique(idx, return_index=True)
    for image, part in zip(owners, np.split(s, starts[1:]), strict=True):
        out[image] = rule.reduce(part)[1]
    return out
