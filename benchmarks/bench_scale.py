"""Scale benchmarks (issue 9), one function per section; results go to benchmarks/results/scale.md.

Sections:

* ``knn``: kNN search with ``index=exact|ivf|hnsw`` at 100k, 500k and 1M reference rows: fit
  seconds, query milliseconds, recall@k of the neighbours against exact search, ROC-AUC (with a
  bootstrap CI) and its difference from exact, speed-up over exact. Same calls as users:
  ``oneclass.make_detector("knn:index=ivf,calibration_folds=0")``.
* ``coreset``: greedy k-center coreset (``knn:coreset=...``) seconds on patch-bank-sized arrays.

Each section writes its own block of ``scale.md`` (between ``<!-- section:NAME -->`` markers),
leaving the other sections as they are, and its raw rows to ``results/scale_NAME.jsonl``
(appended as they finish; ``--resume`` skips rows already there). Run from the repository root::

    python benchmarks/bench_scale.py --section knn [--sizes 100000 500000 1000000] [--dim 128]
    python benchmarks/bench_scale.py --section coreset
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

import oneclass
from oneclass.bench.runner import cpu_name
from oneclass.metrics import evaluate

RESULTS = Path(__file__).resolve().parent / "results"
SCALE_MD = RESULTS / "scale.md"


# ---- shared -----------------------------------------------------------------------------------


def machine() -> str:
    """Returns one line describing the machine and library versions."""
    import faiss

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu_name()}, {cores} CPU cores (shared with other jobs: load average "
        f"{load:.1f} at the end of the run), Python {platform.python_version()}, "
        f"numpy {np.__version__}, faiss {faiss.__version__}"
    )


def timed(fn: Callable[[], Any], repeats: int) -> tuple[Any, float]:
    """Returns ``(fn's last result, median seconds over repeats)``."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, float(np.median(times))


def write_section(name: str, text: str, path: Path = SCALE_MD) -> None:
    """Replaces (or appends) the block of section ``name`` in ``scale.md``."""
    start, end = f"<!-- section:{name} -->", f"<!-- /section:{name} -->"
    block = f"{start}\n{text.strip()}\n{end}"
    old = path.read_text() if path.is_file() else "# Scale benchmarks (issue 9)\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    new = (
        pattern.sub(lambda _: block, old)
        if pattern.search(old)
        else old.rstrip() + "\n\n" + block + "\n"
    )
    path.write_text(new)


def md_table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    """Returns a Markdown table of ``rows`` with the columns ``cols``."""
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def load_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---- knn -------------------------------------------------------------------------------------


def mixture(n_ref: int, n_query: int, dim: int, seed: int) -> tuple[np.ndarray, ...]:
    """Gaussian mixture with structure: references and in-class queries come from 1000 in-class
    clusters; out-of-class queries from 1000 other clusters, each a perturbed copy of an in-class
    one (so the classes overlap and the AUC is below 1).

    Returns:
        ``(references, queries, y)`` with ``y = 1`` for in-class queries (float32 arrays).
    """
    rng = np.random.default_rng(seed)
    n_clusters = 1000
    centers = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    near = centers + 0.8 * rng.standard_normal((n_clusters, dim)).astype(np.float32)

    def draw(c: np.ndarray, n: int) -> np.ndarray:
        out = np.empty((n, dim), dtype=np.float32)
        step = 100_000
        for s in range(0, n, step):
            m = min(step, n - s)
            out[s : s + m] = c[rng.integers(n_clusters, size=m)]
            out[s : s + m] += rng.standard_normal((m, dim), dtype=np.float32)
        return out

    ref = draw(centers, n_ref)
    queries = np.vstack([draw(centers, n_query), draw(near, n_query)])
    y = np.r_[np.ones(n_query, dtype=np.int64), np.zeros(n_query, dtype=np.int64)]
    return ref, queries, y


def knn_rows(n_ref: int, args: argparse.Namespace, done: set[tuple[int, str]], out: Path) -> None:
    """Fits each of ``args.indexes`` on ``n_ref`` references; appends one JSON row per index.

    Speed-up and AUC delta are against the exact row of the same size (this run's, or one
    already in ``out``); recall@k against :class:`oneclass.detect.index.ExactIndex`.
    """
    from oneclass.detect.index import ExactIndex

    ref, queries, y = mixture(n_ref, args.queries, args.dim, args.seed)
    unit = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    ref_unit = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    truth = ExactIndex(ref_unit, "cosine").candidates(unit, args.k)
    del ref_unit
    exact = [r for r in load_rows(out) if r["n_ref"] == n_ref and r["index"] == "exact"]
    exact_auc, exact_s = (exact[-1]["auc"], exact[-1]["query_s"]) if exact else (None, None)
    for kind in args.indexes:
        if (n_ref, kind) in done:
            continue
        det = oneclass.make_detector(
            f"knn:index={kind},calibration_folds=0", random_state=args.seed
        )
        det.max_calibration_scores = args.calibration_rows  # bounds the exact fit at 1M
        t0 = time.perf_counter()
        det.fit(ref)
        fit_s = time.perf_counter() - t0
        scores, query_s = timed(partial(det.score_samples, queries), args.repeats)
        ids = det.index_.candidates(unit, args.k)
        pairs = zip(truth.tolist(), ids.tolist(), strict=True)
        recall = float(np.mean([len(set(a) & set(b)) / args.k for a, b in pairs]))
        m = evaluate(y, scores, n_boot=args.n_boot, seed=args.seed)
        if kind == "exact":
            exact_auc, exact_s = m["auc"], query_s
        row = {
            "n_ref": n_ref,
            "dim": args.dim,
            "index": kind,
            **det.index_.settings(),
            "fit_s": fit_s,
            "query_s": query_s,
            "query_ms": 1000 * query_s / len(queries),
            "speedup": exact_s / query_s if exact_s else float("nan"),
            "recall": recall,
            "index_recall_": det.index_recall_,
            "auc": m["auc"],
            "auc_lo": m["auc_lo"],
            "auc_hi": m["auc_hi"],
            "auc_delta": m["auc"] - exact_auc if exact_auc is not None else float("nan"),
            "n_query": len(queries),
            "repeats": args.repeats,
            "threads": os.environ.get("ONECLASS_THREADS", "all"),
            "load": os.getloadavg()[0],
        }
        row.pop("kind", None)
        with open(out, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(
            f"{n_ref:>8d} {kind:5s} fit {fit_s:7.1f}s query {row['query_ms']:.3f} ms "
            f"x{row['speedup']:.1f} recall {recall:.3f} AUC {m['auc']:.4f} "
            f"({row['auc_delta']:+.4f})",
            flush=True,
        )
        del det, scores
        gc.collect()


KNN_NOTES = """## kNN search: exact vs FAISS IVF / HNSW

Machine: {machine}.

Data: a synthetic Gaussian mixture in {dim} dimensions (stated, not an embedding): 1000
in-class cluster centres ~ N(0, I), rows = centre + N(0, I) (the clusters overlap); the
references and {nq} in-class queries come from those clusters, {nq} out-of-class queries from
1000 other clusters, each a perturbed copy of an in-class centre (centre + N(0, 0.8^2 I)),
so the classes overlap. Seed {seed}. Detector:
`oneclass.make_detector("knn:index=KIND,calibration_folds=0")` (cosine, k=5, mean of the 5
distances), threshold from {cal} in-sample rows (it plays no part in AUC or speed).

Columns: fit s = `fit` (index build + recall check + calibration scores); query ms = median over
{repeats} runs of `score_samples` on the {nq2} queries, per query; speed-up = exact query time /
this one (same run); recall = recall@{k} of the index's neighbours of the queries against exact
search; index_recall_ = the fitted attribute (recall@{k} on 256 training rows, own row left
out); AUC = ROC-AUC of in-class vs out-of-class queries with a {n_boot}-resample bootstrap 95%
CI (`oneclass.metrics`); delta = AUC - exact AUC. Index settings are the defaults (nlist ~
4 sqrt(n), nprobe = max(8, sqrt(nlist) / 4); HNSW M=32, efSearch = max(64, 2k, n / 2000),
efConstruction 40 unless a row's settings name another `ef_construction`; rows before this
change used nprobe = sqrt(nlist) / 2 and efSearch 64).
The machine is shared with other jobs, so absolute seconds are noisy; the ratios are measured
in one run.

{table}

Goal (issue 9): at 500k references AUC within 0.002 of exact and queries >= 5x faster; at 1M
>= 20x. {verdict}
"""


def knn_verdict(rows: list[dict[str, Any]]) -> str:
    parts = []
    for r in rows:
        if r["index"] == "exact" or r["n_ref"] < 500_000:
            continue
        goal = 5 if r["n_ref"] < 1_000_000 else 20
        ok = abs(r["auc_delta"]) <= 0.002 and r["speedup"] >= goal
        parts.append(
            f"{r['index']} at {r['n_ref']:,}: delta {r['auc_delta']:+.4f}, "
            f"x{r['speedup']:.1f} ({'met' if ok else 'NOT met'})"
        )
    return "; ".join(parts) + "." if parts else "(500k/1M not run yet)"


def knn_section(args: argparse.Namespace) -> str:
    """Runs the kNN section; returns its Markdown."""
    out = RESULTS / "scale_knn.jsonl"
    if not args.resume and not args.report_only:
        out.unlink(missing_ok=True)
    if not args.report_only:
        done = {(r["n_ref"], r["index"]) for r in load_rows(out)}
        for n_ref in args.sizes:
            if all((n_ref, k) in done for k in args.indexes):
                continue
            knn_rows(n_ref, args, done, out)
    order = {"exact": 0, "ivf": 1, "hnsw": 2}
    rows = sorted(load_rows(out), key=lambda r: (r["n_ref"], order.get(r["index"], 9)))
    cols = [
        "n_ref",
        "index",
        "fit s",
        "query ms",
        "speed-up",
        "recall",
        "index_recall_",
        "AUC [95% CI]",
        "delta",
        "settings",
    ]
    table = [
        {
            "n_ref": f"{r['n_ref']:,}",
            "index": r["index"],
            "fit s": f"{r['fit_s']:.1f}",
            "query ms": f"{r['query_ms']:.3f}",
            "speed-up": f"{r['speedup']:.1f}",
            "recall": f"{r['recall']:.3f}",
            "index_recall_": f"{r['index_recall_']:.3f}",
            "AUC [95% CI]": f"{r['auc']:.4f} [{r['auc_lo']:.3f}, {r['auc_hi']:.3f}]",
            "delta": f"{r['auc_delta']:+.4f}",
            "settings": ", ".join(
                f"{k}={r[k]}"
                for k in ("nlist", "nprobe", "hnsw_m", "ef_search", "ef_construction")
                if r.get(k) is not None
            ),
        }
        for r in rows
    ]
    return KNN_NOTES.format(
        machine=machine(),
        dim=args.dim,
        nq=args.queries,
        nq2=2 * args.queries,
        seed=args.seed,
        cal=args.calibration_rows,
        repeats=args.repeats,
        k=args.k,
        n_boot=args.n_boot,
        table=md_table(table, cols),
        verdict=knn_verdict(rows),
    )


# ---- coreset ---------------------------------------------------------------------------------


def coreset_section(args: argparse.Namespace) -> str:
    """Times the greedy coreset on patch-bank-sized arrays; returns its Markdown."""
    from oneclass.detect.coreset import greedy_coreset

    rows = []
    for n in args.coreset_sizes:
        rng = np.random.default_rng(args.seed)
        centers = rng.standard_normal((500, 300)).astype(np.float32)
        X = centers[rng.integers(500, size=n)] + 0.5 * rng.standard_normal(
            (n, 300), dtype=np.float32
        )
        for frac in (0.01, 0.1):
            ids, secs = timed(partial(greedy_coreset, X, frac, seed=args.seed), 1)
            rows.append(
                {
                    "bank": f"{n:,} x 300",
                    "kept": f"{frac:g} ({ids.size:,} rows)",
                    "seconds": f"{secs:.1f}",
                }
            )
            print(rows[-1], flush=True)
    return (
        f"## Greedy k-center coreset (PatchCore, `knn:coreset=...`)\n\nMachine: {machine()}."
        "\n\nSynthetic patch-like bank: 500 Gaussian clusters in 300 dimensions; random "
        "projection to 128 dimensions (seeded), exact greedy selection in batched rounds "
        f"(`oneclass.detect.coreset`). One run each.\n\n"
        f"{md_table(rows, ['bank', 'kept', 'seconds'])}\n"
    )


SECTIONS: dict[str, Callable[[argparse.Namespace], str]] = {
    "knn": knn_section,
    "coreset": coreset_section,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--section", required=True, choices=sorted(SECTIONS))
    ap.add_argument("--sizes", nargs="+", type=int, default=[100_000, 500_000, 1_000_000])
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--indexes", nargs="+", default=["exact", "ivf", "hnsw"])
    ap.add_argument("--queries", type=int, default=1000, help="per class")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--calibration-rows", type=int, default=2000)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--coreset-sizes", nargs="+", type=int, default=[100_000, 200_000])
    ap.add_argument("--resume", action="store_true", help="keep rows already measured")
    ap.add_argument("--report-only", action="store_true", help="rebuild the Markdown only")
    ap.add_argument("--out", type=Path, default=SCALE_MD)
    ap.add_argument("--note", default="", help="a paragraph about the run for the section")
    args = ap.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = SECTIONS[args.section](args) + (f"\n{args.note}\n" if args.note else "")
    write_section(args.section, text, args.out)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
