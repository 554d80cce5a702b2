"""Our detectors vs their PyOD counterparts on the 18 ADBench image sets (ResNet-18 embeddings).

Protocol (:func:`oneclass.data.adbench.adbench_split`): fit on a seeded 70% of the in-class rows,
test on the other 30% plus every anomaly; seeds 0, 1, 2 (the seed draws the split and seeds the
models). Both sides run at their default parameters; ours with ``calibration_folds=0`` (in-sample
threshold, as PyOD sets its own), so the timings compare the same work: fit + score.

Writes ``benchmarks/results/detectors_adbench.csv`` (one row per set, seed and model, with the
columns of :func:`oneclass.metrics.evaluate` and the seconds; rows are appended as runs finish and
``--resume`` skips those already there) and ``detectors_adbench.md`` (the tables), and prints the
tables. Run from the repository root::

    OMP_NUM_THREADS=2 python benchmarks/bench_detectors.py [--sets CIFAR10_0 ...] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

import oneclass
from oneclass.bench.runner import cpu_name
from oneclass.data.adbench import CV_SETS, adbench_split, load_adbench
from oneclass.detect.pyod_adapter import pyod_counterpart
from oneclass.metrics import METRIC_KEYS, evaluate

RESULTS = Path(__file__).resolve().parent / "results"
#: (our registry name, PyOD class name)
PAIRS = (
    ("knn", "KNN"),
    ("ocsvm", "OCSVM"),
    ("iforest", "IForest"),
    ("mahalanobis", "MCD"),
    ("deep-svdd", "DeepSVDD"),
)
COLUMNS = (
    "set",
    "seed",
    "side",
    "detector",
    *METRIC_KEYS,
    "fit_s",
    "score_s",
    "seconds",
    "omp_threads",
)


def run_one(side: str, name: str, split, seed: int) -> tuple[np.ndarray, float, float]:
    """Fit on the split's training rows, score its test rows: (in-class scores, fit s, score s)."""
    if side == "ours":
        model = oneclass.make_detector(name, calibration_folds=0, random_state=seed)
        score = model.score_samples
    else:
        model = pyod_counterpart(name, split.X_train.shape[1], seed)

        def score(X):
            return -model.decision_function(X)  # PyOD: higher = more anomalous

    t0 = time.perf_counter()
    model.fit(split.X_train)
    t1 = time.perf_counter()
    scores = np.asarray(score(split.X_test), dtype=np.float64)
    t2 = time.perf_counter()
    return scores, t1 - t0, t2 - t1


def done_runs(csv_path: Path) -> set[tuple[str, int, str, str]]:
    if not csv_path.is_file():
        return set()
    with open(csv_path, newline="") as fh:
        return {(r["set"], int(r["seed"]), r["side"], r["detector"]) for r in csv.DictReader(fh)}


def run(sets, seeds, pairs, csv_path: Path, n_boot: int, resume: bool, root=None) -> None:
    done = done_runs(csv_path) if resume else set()
    if not resume or not csv_path.is_file():
        with open(csv_path, "w", newline="") as fh:
            csv.writer(fh).writerow(COLUMNS)
    for set_name in sets:
        X, y = load_adbench(set_name, root=root)
        for seed in seeds:
            split = adbench_split(X, y, train_fraction=0.7, seed=seed)
            for ours, theirs in pairs:
                for side, name in (("ours", ours), ("pyod", theirs)):
                    if (set_name, seed, side, name) in done:
                        continue
                    scores, fit_s, score_s = run_one(side, name, split, seed)
                    m = evaluate(split.y_test, scores, n_boot=n_boot, seed=seed)
                    row = {
                        "set": set_name,
                        "seed": seed,
                        "side": side,
                        "detector": name,
                        **m,
                        "fit_s": fit_s,
                        "score_s": score_s,
                        "seconds": fit_s + score_s,
                        "omp_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
                    }
                    with open(csv_path, "a", newline="") as fh:
                        csv.DictWriter(fh, COLUMNS).writerow(row)
                    print(
                        f"{set_name:22s} seed {seed} {side:4s} {name:12s} AUC {m['auc']:.4f} "
                        f"{fit_s + score_s:8.2f}s",
                        flush=True,
                    )


# ---- tables ----------------------------------------------------------------------------------


def paired(df: pd.DataFrame, pairs) -> pd.DataFrame:
    """One row per (set, pair): means over the seeds both sides ran, ours vs PyOD."""
    keep = ["set", "seed", "auc", "auc_lo", "auc_hi", "seconds"]
    rows = []
    for ours, theirs in pairs:
        a = df[(df.side == "ours") & (df.detector == ours)][keep]
        b = df[(df.side == "pyod") & (df.detector == theirs)][keep]
        both = a.merge(b, on=["set", "seed"], suffixes=("_ours", "_pyod"))
        if both.empty:
            continue
        agg = both.groupby("set", sort=False).agg(
            seeds=("seed", "count"),
            **{
                f"{stat}_{side}": (f"{col}_{side}", fn)
                for side in ("ours", "pyod")
                for stat, col, fn in (
                    ("auc", "auc", "mean"),
                    ("auc_sd", "auc", "std"),
                    ("auc_lo", "auc_lo", "mean"),
                    ("auc_hi", "auc_hi", "mean"),
                    ("seconds", "seconds", "mean"),
                )
            },
        )
        agg.insert(0, "pair", f"{ours} vs {theirs}")
        rows.append(agg.reset_index())
    out = pd.concat(rows, ignore_index=True)
    out["delta"] = out.auc_ours - out.auc_pyod
    out["time_ratio"] = out.seconds_ours / out.seconds_pyod
    return out


def summary(p: pd.DataFrame) -> pd.DataFrame:
    g = p.groupby("pair", sort=False)
    return pd.DataFrame(
        {
            "sets": g.size(),
            "mean AUC ours": g.auc_ours.mean(),
            "mean AUC PyOD": g.auc_pyod.mean(),
            "ours >= PyOD": g.apply(lambda d: int((d.delta >= 0).sum()), include_groups=False),
            "ours >= PyOD - 0.02": g.apply(
                lambda d: int((d.delta >= -0.02).sum()), include_groups=False
            ),
            "median time ratio": g.time_ratio.median(),
            "sum s ours": g.seconds_ours.sum(),
            "sum s PyOD": g.seconds_pyod.sum(),
        }
    ).reset_index()


def md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def machine(threads: str) -> str:
    cpu = cpu_name()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = []
    for pkg in ("oneclass", "numpy", "scikit-learn", "scipy", "torch", "pyod"):
        try:
            versions.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            continue
    import torch

    gpu = (
        f"GPU {torch.cuda.get_device_name(0)} (used by deep-svdd's device='auto')"
        if torch.cuda.is_available()
        else "no GPU"
    )
    return (
        f"{cpu}, {cores} CPU cores available, {gpu}; OMP_NUM_THREADS={threads} during the "
        f"runs; Python {platform.python_version()}, {', '.join(versions)}"
    )


def report(csv_path: Path, pairs, n_boot: int, note: str = "") -> str:
    df = pd.read_csv(csv_path)
    p = paired(df, pairs)
    s = summary(p)
    seeds = sorted(df.seed.unique().tolist())
    fmt = {
        "mean AUC ours": "{:.4f}",
        "mean AUC PyOD": "{:.4f}",
        "median time ratio": "{:.2g}",
        "sum s ours": "{:.3g}",
        "sum s PyOD": "{:.3g}",
    }
    for col, f in fmt.items():
        s[col] = s[col].map(f.format)

    def with_ci(side: str) -> list[str]:
        cols = zip(p[f"auc_{side}"], p[f"auc_lo_{side}"], p[f"auc_hi_{side}"], strict=True)
        return [f"{a:.4f} [{lo:.3f}, {hi:.3f}]" for a, lo, hi in cols]

    detail = pd.DataFrame(
        {
            "set": p.set,
            "pair": p.pair,
            "seeds": p.seeds,
            "ours AUC [95% CI]": with_ci("ours"),
            "PyOD AUC [95% CI]": with_ci("pyod"),
            "delta": p.delta.map("{:+.4f}".format),
            "ours s": p.seconds_ours.map("{:.3g}".format),
            "PyOD s": p.seconds_pyod.map("{:.3g}".format),
            "time ratio": p.time_ratio.map("{:.2g}".format),
            "seed sd ours/PyOD": [
                f"{a:.3f} / {b:.3f}" for a, b in zip(p.auc_sd_ours, p.auc_sd_pyod, strict=True)
            ],
        }
    )
    threads = ", ".join(sorted(df.omp_threads.astype(str).unique()))
    return NOTES.format(
        machine=machine(threads) + (f". {note}" if note else ""),
        seeds=", ".join(map(str, seeds)),
        n_boot=n_boot,
        summary=md_table(s),
        detail=md_table(detail),
    )


NOTES = """# Detectors on ADBench image embeddings: oneclass vs PyOD

Machine: {machine}.

Data: the 18 arrays of ADBench `CV_by_ResNet18/` (CIFAR-10 classes 0/4/6 and 15 MVTec-AD
categories, 512-d ImageNet ResNet-18 embeddings). Protocol: fit on a seeded 70% of the in-class
(ADBench normal) rows, test on the other 30% plus every anomaly; seeds {seeds} (the seed draws
the split and seeds both models).

Both sides at their default parameters. Ours run with `calibration_folds=0` (threshold from
in-sample scores, as PyOD sets its threshold), so the seconds compare the same work: fit + scoring
the test rows, wall clock, mean over seeds. Pairs: knn (cosine, mean of 5 neighbours) vs PyOD KNN
(euclidean, 5th neighbour); ocsvm vs PyOD OCSVM; iforest vs PyOD IForest; mahalanobis (Ledoit-Wolf
shrinkage) vs PyOD MCD (minimum covariance determinant); deep-svdd vs PyOD DeepSVDD.

AUC: ROC-AUC with in-class as the positive class, mean over seeds. 95% CI: each seed's stratified
percentile bootstrap of its test set ({n_boot} resamples, `oneclass.metrics`), the interval ends
averaged over seeds (its width is the test-set sampling error of one seed's AUC; `seed sd` is the
spread of the AUC over the seeds). delta = ours - PyOD; time ratio = ours seconds / PyOD seconds
(< 1: ours faster); "sum s": the per-set mean seconds summed over the sets.

## Summary

{summary}

## Per set

{detail}
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=list(CV_SETS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument(
        "--pairs",
        nargs="+",
        default=[o for o, _ in PAIRS],
        help="our detectors to run, each with its PyOD counterpart",
    )
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument(
        "--data",
        type=Path,
        default=None,
        help="data root holding adbench/ (default: ONECLASS_DATA / ../shared/data)",
    )
    ap.add_argument("--out", type=Path, default=RESULTS / "detectors_adbench")
    ap.add_argument("--note", default="", help="a sentence about the run for the report")
    ap.add_argument("--resume", action="store_true", help="skip runs already in the CSV")
    ap.add_argument("--report-only", action="store_true", help="rebuild the tables from the CSV")
    args = ap.parse_args(argv)
    unknown = set(args.sets) - set(CV_SETS)
    if unknown:
        ap.error(f"unknown sets {sorted(unknown)}; choose from {', '.join(CV_SETS)}")
    pairs = [p for p in PAIRS if p[0] in args.pairs]
    csv_path, md_path = args.out.with_suffix(".csv"), args.out.with_suffix(".md")
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        warnings.filterwarnings("ignore")
        run(args.sets, args.seeds, pairs, csv_path, args.n_boot, args.resume, args.data)
    text = report(csv_path, pairs, args.n_boot, args.note)
    md_path.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
