"""Image-score rules and flips for ``effnet-lite0-patches`` on KolektorSDD, cross-validated.

A follow-up of ``bench_patches_cv.py`` (same parts, folds, coreset and exact cosine search), for
the default taps (b4+b7+b10, short side 224). It asks whether anything between the patch scores
and the image score beats the package's rule (the mean of the least in-class 1 % of patches):

* bank variants: the training normals (``base``); plus their horizontal mirrors (``bankH``);
  plus horizontal and vertical mirrors (``bankHV``). The coreset keeps the same number of rows
  in each (10 % of the plain bank), so only what the bank covers changes, not its size;
* test-time flips: the patch-score maps of the image and its mirror(s), mapped back onto one
  grid and averaged (``ttaH``, ``ttaHV``; bank ``base``);
* per patch: distance to the nearest bank row (k = 1) or the mean of the 3 nearest;
* map smoothing: a Gaussian of ``sigma`` patches over the score map before pooling;
* image score: the mean of the least in-class fraction ``tail`` of the patches (0: the single
  least in-class patch, PatchCore's maximum).

Prints one JSON line per variant and rule with the pooled out-of-fold AUC of seeds 0 and 1.
Run from the repository root (about 20 minutes on two cores)::

    ONECLASS_THREADS=2 python benchmarks/bench_patches_rules.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_patches_cv import FOLDS, kolektor_images, part_folds, rgb_batches  # noqa: E402

SEEDS = (0, 1)
TAILS = (0.0, 0.0025, 0.005, 0.01, 0.02, 0.05)
SIGMAS = (0.0, 0.7, 1.0, 1.5, 2.0)
CORESET = 0.1


def embed_views(paths: list[str]) -> dict[str, list]:
    """Returns each image's ``ImageEmbedding`` as is (``"o"``), mirrored left-right (``"h"``)
    and top-bottom (``"v"``), from the registry's default patch embedder."""
    from PIL import ImageOps

    from oneclass.embed.registry import make_embedder

    emb = make_embedder("effnet-lite0-patches")
    views = {"o": lambda im: im, "h": ImageOps.mirror, "v": ImageOps.flip}
    out: dict[str, list] = {k: [] for k in views}
    for images in rgb_batches(paths):
        for key, view in views.items():
            out[key] += emb.embed_batch([view(im) for im in images])
    return out


def unit_rows(embeddings: list):
    """Returns all images' patch vectors stacked as unit float32 torch rows."""
    import torch

    x = torch.from_numpy(np.concatenate([e.vectors for e in embeddings]).astype(np.float32))
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-6)


def nearest(q, bank, k: int = 3) -> np.ndarray:
    """Returns the cosine distances of each row of ``q`` to its ``k`` nearest bank rows."""
    import torch

    parts = [1 - (q[s : s + 4096] @ bank.T).topk(k, dim=1).values for s in range(0, len(q), 4096)]
    return torch.cat(parts).numpy()


def image_score(m: np.ndarray, k: int, sigma: float, tail: float) -> float:
    """Returns the out-of-class score of one ``(rows, cols, 3)`` map of nearest distances: the
    package's tail rule (:class:`oneclass.embed.aggregate.Aggregation`) on distances, so the
    largest ones (``tail`` 0: the single largest)."""
    from scipy.ndimage import gaussian_filter

    from oneclass.embed.aggregate import Aggregation

    a = m[..., 0] if k == 1 else m[..., :k].mean(-1)
    if sigma:
        a = gaussian_filter(a, sigma, mode="nearest")
    return Aggregation("distance", train="all", score="max", tail=tail).reduce(a)[1]


def fold_maps(X: dict, rows: list, grids: list, train: np.ndarray, test: np.ndarray) -> dict:
    """Returns ``variant -> {image: (rows, cols, 3) distance map}`` for one fold."""
    import torch

    from oneclass.detect.coreset import greedy_coreset

    idx = torch.as_tensor(np.concatenate([rows[i] for i in train]))
    banks = {}
    for name, views in (("base", "o"), ("bankH", "oh"), ("bankHV", "ohv")):
        b = torch.cat([X[v][idx] for v in views])  # the fraction keeps the plain bank's size
        banks[name] = b[torch.as_tensor(greedy_coreset(b.numpy(), CORESET / len(views), seed=0))]
    out: dict[str, dict] = {k: {} for k in ("base", "bankH", "bankHV", "ttaH", "ttaHV")}
    for i in test:
        r, c = grids[i]
        ids = torch.as_tensor(rows[i])
        for name, bank in banks.items():
            out[name][i] = nearest(X["o"][ids], bank).reshape(r, c, 3)
        d0 = out["base"][i]
        dh = nearest(X["h"][ids], banks["base"]).reshape(r, c, 3)[:, ::-1]
        dv = nearest(X["v"][ids], banks["base"]).reshape(r, c, 3)[::-1, :]
        out["ttaH"][i] = (d0 + dh) / 2
        out["ttaHV"][i] = (d0 + dh + dv) / 3
    return out


def main() -> int:
    import torch
    from sklearn.metrics import roc_auc_score

    from oneclass.embed.base import default_threads

    torch.set_num_threads(default_threads())
    paths, labels, groups = kolektor_images()
    t0 = time.perf_counter()
    emb = embed_views(paths)
    print(f"{len(paths)} images x 3 views embedded in {time.perf_counter() - t0:.0f} s", flush=True)
    X = {k: unit_rows(v) for k, v in emb.items()}
    grids = [e.grid for e in emb["o"]]
    starts = np.r_[0, np.cumsum([len(e.vectors) for e in emb["o"]])]
    rows = [np.arange(starts[i], starts[i + 1]) for i in range(len(paths))]
    maps: dict[str, dict[int, dict]] = {}
    for seed in SEEDS:
        fold = part_folds(groups, seed)
        for f in range(FOLDS):
            train = np.flatnonzero((fold != f) & (labels == 1))
            for var, m in fold_maps(X, rows, grids, train, np.flatnonzero(fold == f)).items():
                maps.setdefault(var, {}).setdefault(seed, {}).update(m)
            print(f"seed {seed} fold {f} done", flush=True)
    for var, by_seed in maps.items():
        for k in (1, 3):
            for sigma in SIGMAS:
                for tail in TAILS:
                    auc = {
                        f"auc{s}": round(
                            float(
                                roc_auc_score(
                                    labels,
                                    [
                                        -image_score(by_seed[s][i], k, sigma, tail)
                                        for i in range(len(paths))
                                    ],
                                )
                            ),
                            4,
                        )
                        for s in SEEDS
                    }
                    line = {"variant": var, "k": k, "sigma": sigma, "tail": tail, **auc}
                    print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
