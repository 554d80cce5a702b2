"""Patch embeddings (``effnet-lite0-patches``, PatchCore's recipe) against pooled EfficientNet.

KolektorSDD normal-vs-defective (``$ONECLASS_DATA/kolektor_sdd``):

* groups: blocks of 8 consecutive file numbers (one physical commutator each, see the data's
  SOURCE.md), with the near-duplicate pair 235 / 252 in one group;
* the groups are shuffled with ``--seed`` (default 0): 60 % train, 20 % validation, 20 % test;
* fit on the *normal* images of the train groups only;
* validation (recipe choice): the normal + defective images of the validation groups;
* test: the normal images of the test groups + every defective image outside the validation
  groups ("held-out normal + all defective" that the recipe choice never saw). A strict row
  also reports the test groups alone (normal and defective from the same held-out parts).

Each recipe is fitted and scored with ``oneclass.fit(embedder, detector, positives=...)`` and
``model.score(...)``, the calls users make (image score: the least in-class patch). ROC-AUC with a
95 % stratified bootstrap CI from :mod:`oneclass.metrics`. A one-vs-rest set (``--ovr``, default
``art_genres``; 60/40 split per class, seeded) shows where patches help or hurt. Writes
``benchmarks/results/patches.md`` (``--out``). Run from the repository root::

    ONECLASS_THREADS=2 python benchmarks/bench_patches.py [--sweep] [--ovr art_genres]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

import oneclass
from oneclass.bench.runner import cpu_name
from oneclass.embed.base import default_threads
from oneclass.metrics import evaluate

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
#: the chosen recipe (validation AUC, see the sweep table in the results)
PATCHES = "effnet-lite0-patches"  # the defaults: taps b4+b7+b10, short side 224, pool 3
DETECTOR = "knn"
BASELINES = [("effnet-lite0", "knn"), ("effnet-lite0", "mahalanobis")]
#: candidates of the validation sweep (``--sweep``): embedder spec x detector spec
SWEEP = [
    ("effnet-lite0-patches:taps=x5+x11,resize=full", "knn"),
    ("effnet-lite0-patches:taps=b4+b10,resize=full", "knn"),
    ("effnet-lite0-patches:taps=b4+b10", "knn"),
    ("effnet-lite0-patches:taps=b4+b7+b10", "knn"),
    ("effnet-lite0-patches:taps=b4+b7+b10", "knn:k=1"),
    ("effnet-lite0-patches:taps=b4+b7+b10", "knn:k=1,metric=euclidean"),
]


def data_root() -> Path:
    root = Path(os.environ.get("ONECLASS_DATA", "../shared/data")).expanduser()
    return root if root.is_absolute() else (REPO / root).resolve()


def kolektor_rows() -> tuple[Path, list[dict]]:
    """Returns the kolektor_sdd folder and its manifest rows whose file is present."""
    root = data_root() / "kolektor_sdd"
    with open(root / "manifest.csv", newline="") as f:
        return root, [r for r in csv.DictReader(f) if (root / r["file"]).is_file()]


def kolektor_group(file: str) -> int:
    """Returns the part (block of 8 consecutive numbers) of a kolektor_sdd file; the
    near-duplicates 235 / 252 share one."""
    number = int(Path(file).stem)
    return 235 // 8 if number == 252 else number // 8


def kolektor_split(seed: int) -> dict[str, list[tuple[str, int]]]:
    """``{"train", "val", "test", "test_strict"}`` -> [(path, label)], label 1 = normal."""
    root, rows = kolektor_rows()
    groups = sorted({kolektor_group(r["file"]) for r in rows})
    order = np.random.default_rng(seed).permutation(groups)
    n_train, n_val = round(0.6 * len(groups)), round(0.2 * len(groups))
    role = {
        int(g): "train" if i < n_train else "val" if i < n_train + n_val else "test"
        for i, g in enumerate(order)
    }
    out: dict[str, list[tuple[str, int]]] = {k: [] for k in ("train", "val", "test", "test_strict")}
    for r in rows:
        path, label, where = (
            str(root / r["file"]),
            int(r["class"] == "normal"),
            role[kolektor_group(r["file"])],
        )
        if where == "train" and label == 1:
            out["train"].append((path, 1))
        if where == "val":
            out["val"].append((path, label))
        if where == "test":
            out["test_strict"].append((path, label))
        if (where == "test" and label == 1) or (where != "val" and label == 0):
            out["test"].append((path, label))
    return out


def run_recipe(
    embedder: str, detector: str, train: list[str], sets: dict[str, list[tuple[str, int]]]
) -> dict:
    """Fit on ``train`` and score each named set; returns metrics and timings."""
    t0 = time.perf_counter()
    model = oneclass.fit(embedder, detector, positives=train, progress=False)
    fit_s = time.perf_counter() - t0
    out: dict = {
        "embedder": embedder,
        "detector": detector,
        "fit_s": fit_s,
        "n_train": len(train),
        "name": model.embedder_.name,
    }
    for name, items in sets.items():
        t0 = time.perf_counter()
        df = model.score([p for p, _ in items])
        out[f"{name}_s_per_img"] = (time.perf_counter() - t0) / len(items)
        if not (df["status"] == "ok").all():
            raise RuntimeError(f"{embedder}: some images failed: {df[df.status != 'ok']}")
        out[name] = evaluate(np.array([y for _, y in items]), df["score"].to_numpy(), seed=0)
        out[f"{name}_tpr_threshold"] = float(
            df["in_class"].to_numpy()[np.array([y for _, y in items]) == 1].mean()
        )
    return out


def ovr_sets(name: str, seed: int) -> dict[str, dict[str, list]]:
    """One-vs-rest: per class a 60 % train slice; test = its other 40 % + 40 % of the others."""
    root = data_root() / name
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    rng = np.random.default_rng(seed)
    train, test = {}, {}
    for c in classes:
        files = sorted(str(p) for p in (root / c).iterdir() if p.is_file())
        files = [files[i] for i in rng.permutation(len(files))]
        cut = round(0.6 * len(files))
        train[c], test[c] = files[:cut], files[cut:]
    return {
        c: {"train": train[c], "test": [(p, int(o == c)) for o in classes for p in test[o]]}
        for c in classes
    }


def emit(lines: list[str], out: Path) -> None:
    """Print the newest line and rewrite the results file (partial results survive a stop)."""
    print(lines[-1], flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


def fmt(m: dict) -> str:
    return f"{m['auc']:.3f} [{m['auc_lo']:.3f}, {m['auc_hi']:.3f}]"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sweep", action="store_true", help="validation sweep over SWEEP first")
    ap.add_argument("--ovr", default="art_genres", help="one-vs-rest set ('' = none)")
    ap.add_argument("--out", type=Path, default=RESULTS / "patches.md")
    args = ap.parse_args(argv)

    split = kolektor_split(args.seed)
    train = [p for p, _ in split["train"]]
    lines = [
        "# Patch embeddings (PatchCore recipe) vs pooled EfficientNet-Lite0",
        "",
        f"`python benchmarks/bench_patches.py{' --sweep' if args.sweep else ''}` on "
        f"{cpu_name()}, {default_threads()} torch threads (a machine shared with other jobs: "
        "timings are upper bounds).",
        "",
        "## kolektor_sdd: normal vs defective",
        "",
        f"Groups of 8 consecutive numbers (one part each), shuffled with seed {args.seed}: "
        "60 % train / 20 % validation / 20 % test. Fit on the "
        f"{len(train)} normal images of the train groups. Validation: "
        f"{sum(y for _, y in split['val'])} normal + {sum(1 - y for _, y in split['val'])} "
        f"defective. Test: {sum(y for _, y in split['test'])} held-out normal + "
        f"{sum(1 - y for _, y in split['test'])} defective (every defective image outside the "
        "validation groups); strict: the test groups alone "
        f"({sum(y for _, y in split['test_strict'])} + "
        f"{sum(1 - y for _, y in split['test_strict'])}).",
        "",
    ]
    print("\n".join(lines), flush=True)
    if args.sweep:
        lines += [
            "### Validation sweep (recipe choice)",
            "",
            "| embedder | detector | val AUC [95% CI] | fit s | s / image |",
            "|---|---|---|---|---|",
        ]
        for emb, det in SWEEP:
            r = run_recipe(emb, det, train, {"val": split["val"]})
            lines.append(
                f"| `{r['name']}` | `{det}` | {fmt(r['val'])} | {r['fit_s']:.0f} | "
                f"{r['val_s_per_img']:.2f} |"
            )
            emit(lines, args.out)
        lines.append("")
    lines += [
        "### Test",
        "",
        "| embedder | detector | test AUC [95% CI] | strict test AUC | TPR at the fitted "
        "threshold | fit s | s / image |",
        "|---|---|---|---|---|---|---|",
    ]
    for emb, det in [(PATCHES, DETECTOR), *BASELINES]:
        r = run_recipe(
            emb, det, train, {"test": split["test"], "test_strict": split["test_strict"]}
        )
        lines.append(
            f"| `{r['name']}` | `{det}` | {fmt(r['test'])} | {fmt(r['test_strict'])} | "
            f"{r['test_tpr_threshold']:.2f} | {r['fit_s']:.0f} | "
            f"{r['test_s_per_img']:.2f} |"
        )
        emit(lines, args.out)
    lines.append("")
    if args.ovr:
        sets = ovr_sets(args.ovr, args.seed)
        lines += [
            f"## {args.ovr}: one-vs-rest",
            "",
            f"Per class: fit on a seeded 60 % of its images (seed {args.seed}); test on its "
            "other 40 % against 40 % of every other class. ROC-AUC [95% CI].",
            "",
            f"| class | `{PATCHES}` + `{DETECTOR}` | `effnet-lite0` + `knn` |",
            "|---|---|---|",
        ]
        print("\n".join(lines[-5:]), flush=True)
        aucs: dict[str, list[float]] = {"patch": [], "pooled": []}
        for c, s in sets.items():
            rp = run_recipe(PATCHES, DETECTOR, s["train"], {"test": s["test"]})
            rb = run_recipe("effnet-lite0", "knn", s["train"], {"test": s["test"]})
            aucs["patch"].append(rp["test"]["auc"])
            aucs["pooled"].append(rb["test"]["auc"])
            lines.append(f"| {c} | {fmt(rp['test'])} | {fmt(rb['test'])} |")
            emit(lines, args.out)
        lines.append(
            f"| **mean / worst** | {np.mean(aucs['patch']):.3f} / {min(aucs['patch']):.3f} "
            f"| {np.mean(aucs['pooled']):.3f} / {min(aucs['pooled']):.3f} |"
        )
        lines.append("")
    emit(lines, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
