"""Out-of-sample image scores of the training images, for thresholds on image scores.

When an embedder's training rows are not images (patches: every patch of an image is a row), a
threshold must come from *image* scores that the detector did not see. Folds cut by rows would
leave each held-out patch's neighbours from the same image in the training folds and make every
image look more in-class than a new one (a threshold then rejects new normal images). Here the
folds are cut by image: each fold's detector is fitted on the rows of the other images and scores
all rows of its held-out images, which take their image score by the kind's rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import clone

from oneclass.embed import aggregate

#: folds when the detector has none (``calibration_folds=0`` means in-sample, kept as asked)
DEFAULT_FOLDS = 5


def image_crossfit_scores(
    det: Any, train: aggregate.TrainingSet, n_images: int, kind: str, *, folds: int, seed: Any
) -> np.ndarray:
    """Score each training image with a detector fitted without any of that image's rows.

    Args:
        det: the fitted detector (cloned per fold; it is not changed).
        train: the training rows and the image each came from.
        n_images: the number of training images.
        kind: the embedder's kind (how rows become an image score).
        folds: image folds (>= 2; fewer when there are fewer images).
        seed: seeds the assignment of images to folds.

    Returns:
        ``(n_images,)`` out-of-sample image scores; ``nan`` for images without rows.
    """
    used = np.unique(train.image_index)
    k = max(2, min(int(folds), used.size))
    fold_of = np.full(n_images, -1, dtype=np.int64)
    order = np.random.default_rng(seed).permutation(used)
    fold_of[order] = np.arange(order.size) % k
    row_scores = np.full(train.X.shape[0], np.nan)
    row_fold = fold_of[train.image_index]
    for f in range(k):
        held = row_fold == f
        if not held.any() or held.all():
            continue
        part = clone(det).set_params(calibration_folds=0)
        part.fit(train.X[~held])
        row_scores[held] = part.score_samples(train.X[held])
    return aggregate.image_scores_from_rows(row_scores, train.image_index, n_images, kind)
