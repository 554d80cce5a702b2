"""Cross-validated recipe study for ``effnet-lite0-patches`` on KolektorSDD (normal vs defective).

Why cross-validation: a single split holds 8-12 defective images, where one rank swap moves the
AUC by 0.004-0.01, too few to choose taps, input size or the image score. Here every defective
image is scored once per seed:

* groups: blocks of 8 consecutive file numbers (one physical commutator each), the
  near-duplicates 235 / 252 together, as in ``bench_patches.py``;
* the groups are shuffled per seed and dealt into 5 folds; each fold is scored by a bank built
  from the *normal* images of the other four folds;
* the bank is a greedy k-center coreset (``--coreset``, PatchCore's subsampling, the package's
  :func:`oneclass.detect.coreset.greedy_coreset`) of those patches, searched exactly (cosine,
  k = 1) in torch float32, so a study of many recipes fits on two CPU cores;
* every image's patches are embedded once per input size, with all candidate taps at once
  (the registry embedder, :func:`oneclass.embed.registry.make_embedder`); a tap set is a slice
  of those channels;
* image scores: ``max`` (the single least in-class patch, PatchCore), ``top10`` (mean of the 10
  least in-class) and ``tail`` (the package's rule for kind ``"patch"``,
  :meth:`oneclass.embed.aggregate.Aggregation.reduce`: the mean of the least in-class 1 %).

Reported per recipe and seed: the AUC of all out-of-fold scores pooled, and the mean per-fold
AUC. Writes JSON lines (``--jsonl``) and prints them. Run from the repository root::

    ONECLASS_THREADS=2 python benchmarks/bench_patches_cv.py --sizes 224 --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from oneclass.detect.coreset import greedy_coreset
from oneclass.embed.aggregate import aggregation_for
from oneclass.embed.base import default_threads
from oneclass.embed.registry import make_embedder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_patches import kolektor_group, kolektor_rows  # noqa: E402  (the same parts)

#: candidate taps, finest first, and their channels in EfficientNet-Lite0
TAPS = {"b4": 40, "b7": 80, "b10": 112, "b13": 192, "b14": 192}
#: folds per seed (cut by part)
FOLDS = 5
#: tap sets studied by default (``+``-joined)
RECIPES = ["b4+b7+b10", "b4+b10", "b7+b10", "b4+b7+b10+b13", "b4+b7+b10+b14"]


def kolektor_images() -> tuple[list[str], np.ndarray, np.ndarray]:
    """Returns ``(paths, labels (1 = normal), part per image)``."""
    root, rows = kolektor_rows()
    return (
        [str(root / r["file"]) for r in rows],
        np.array([int(r["class"] == "normal") for r in rows]),
        np.array([kolektor_group(r["file"]) for r in rows]),
    )


def rgb_batches(paths: list[str], size: int = 8) -> Iterator[list]:
    """Yields the images of ``paths`` as RGB PIL images, ``size`` at a time, in order."""
    from PIL import Image

    for i in range(0, len(paths), size):
        images = []
        for p in paths[i : i + size]:
            with Image.open(p) as im:
                images.append(im.convert("RGB"))
        yield images


def part_folds(groups: np.ndarray, seed: int) -> np.ndarray:
    """Returns each image's fold: its part's position in a seeded shuffle of the parts, modulo
    :data:`FOLDS` (so a part never spans two folds)."""
    order = np.random.default_rng(seed).permutation(np.unique(groups))
    fold_of = {g: i % FOLDS for i, g in enumerate(order)}
    return np.array([fold_of[g] for g in groups])


def embed_all(paths: list[str], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``(patch rows of every image, float16, all taps; patches per image)``."""

    emb = make_embedder(f"effnet-lite0-patches:taps={'+'.join(TAPS)},size={size}")
    out = []
    for images in rgb_batches(paths):
        out += [e.vectors.astype(np.float16) for e in emb.embed_batch(images)]
    return np.concatenate(out), np.array([len(v) for v in out])


def tap_features(E: np.ndarray, taps: list[str]):
    """Returns the unit-normalised float32 torch rows of the chosen taps' channels."""
    import torch

    offsets = np.cumsum([0, *TAPS.values()])
    where = {t: slice(offsets[i], offsets[i + 1]) for i, t in enumerate(TAPS)}
    x = torch.from_numpy(np.concatenate([E[:, where[t]] for t in taps], 1).astype(np.float32))
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-6)


def image_scores(patch_scores: np.ndarray) -> dict[str, float]:
    """The three image scores of one image's patch in-class scores."""
    s = np.sort(patch_scores)
    return {
        "max": float(s[0]),
        "top10": float(s[:10].mean()),
        "tail": aggregation_for("patch").reduce(patch_scores)[1],
    }


def cross_validate(
    X, counts: np.ndarray, labels: np.ndarray, groups: np.ndarray, *, seed: int, coreset: float
) -> dict[str, float]:
    """Out-of-fold image scores of one recipe; returns pooled and mean per-fold AUCs."""
    import torch
    from sklearn.metrics import roc_auc_score

    starts = np.r_[0, np.cumsum(counts)]
    rows = [np.arange(starts[i], starts[i + 1]) for i in range(len(counts))]
    fold = part_folds(groups, seed)
    scores = {k: np.zeros(len(counts)) for k in ("max", "top10", "tail")}
    per_fold: dict[str, list[float]] = {k: [] for k in scores}
    for f in range(FOLDS):
        train = np.flatnonzero((fold != f) & (labels == 1))
        test = np.flatnonzero(fold == f)
        bank = X[torch.as_tensor(np.concatenate([rows[i] for i in train]))]
        bank = bank[torch.as_tensor(greedy_coreset(bank.numpy(), coreset, seed=0))]
        for i in test:
            q = X[torch.as_tensor(rows[i])]
            sim = torch.cat(
                [(q[s : s + 8192] @ bank.T).max(1).values for s in range(0, len(q), 8192)]
            )
            for k, v in image_scores(sim.numpy().astype(np.float64) - 1.0).items():
                scores[k][i] = v
        if len(set(labels[test])) == 2:
            for k in scores:
                per_fold[k].append(roc_auc_score(labels[test], scores[k][test]))
    out: dict[str, float] = {}
    for k in scores:
        out[f"pooled_{k}"] = round(float(roc_auc_score(labels, scores[k])), 4)
        out[f"fold_{k}"] = round(float(np.mean(per_fold[k])), 4)
    return out


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="+", type=int, default=[224], help="short sides")
    ap.add_argument("--recipes", nargs="+", default=RECIPES, help="tap sets, e.g. b4+b7+b10")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--coreset", type=float, default=0.1, help="bank fraction kept")
    ap.add_argument("--jsonl", type=Path, default=Path("/tmp/bench_patches_cv.jsonl"))
    args = ap.parse_args(argv)
    torch.set_num_threads(default_threads())
    paths, labels, groups = kolektor_images()
    print(f"{len(paths)} images: {int(labels.sum())} normal, {int((1 - labels).sum())} defective")
    with open(args.jsonl, "a") as log:
        for size in args.sizes:
            t0 = time.perf_counter()
            E, counts = embed_all(paths, size)
            print(f"size {size}: {len(E)} patches embedded in {time.perf_counter() - t0:.0f} s")
            for recipe in args.recipes:
                X = tap_features(E, recipe.split("+"))
                for seed in args.seeds:
                    t0 = time.perf_counter()
                    r = {"size": size, "taps": recipe, "seed": seed, "coreset": args.coreset}
                    r.update(
                        cross_validate(X, counts, labels, groups, seed=seed, coreset=args.coreset)
                    )
                    r["s"] = round(time.perf_counter() - t0)
                    print(json.dumps(r), flush=True)
                    log.write(json.dumps(r) + "\n")
                    log.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
