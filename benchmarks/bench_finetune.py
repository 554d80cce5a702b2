"""Fine-tuned vs frozen EfficientNet-Lite, one-vs-rest, with exactly the calls users make.

For each class of a shared set, its images are split by near-duplicate group (the set's
``manifest.csv`` groups; ``oneclass.data.splits.group_split``, ``--test-size``, ``--seed``), and
likewise every other class: the class's training part is the positives, the other classes'
training parts the negatives (binary rows; at most ``--max-neg``, seeded), and the test set is the
class's test part against the other classes' test parts. Rows (``--methods``):

* ``frozen-knn``: ``oneclass.fit("effnet-lite0:power=0.5", "knn", positives=paths)``
* ``lite2-knn``: the same with ``effnet-lite2:power=0.5``
* ``msc-knn``: ``emb = oneclass.finetune("effnet-lite0", positives=paths)``, then
  ``oneclass.fit(emb, "knn", positives=paths)``
* ``oe-knn``: one-class with outlier exposure: ``finetune("effnet-lite0", positives=p,
  auxiliary=a)``, then ``oneclass.fit(emb, "knn", positives=p)``; ``a``: the binary rows'
  negatives (in-domain "random negatives", unlabelled for the detector), or with
  ``--auxiliary DATASET`` a seeded ``--max-neg`` of that data set's images (out of domain,
  never in the test)
* ``naive-knn`` / ``naive-head``: the positives-only classifier (``mode="naive"``): kNN on its
  features, and its own head's logits (``collapse`` = share of test negatives it calls positive)
* ``frozen-logistic``: ``oneclass.fit("effnet-lite0:power=0.5", "logistic", pos, neg)``
* ``binary-logistic``: ``emb = oneclass.finetune("effnet-lite0", positives=p, negatives=n)``,
  then ``oneclass.fit(emb, "logistic", positives=p, negatives=n)``

``--timing N``: the wall-time goal instead: ``finetune`` on 50 Pikachu + 200 other images
(binary) and on the 50 alone (one-class), N times, with the load average and CPU seconds.

``cifar10``: the one-class protocol on the shared subset (train: the first ``--cifar-train`` train
images of the class; test: a seeded ``--cifar-test`` per class of the test set, all classes).
Each row is appended to ``--jsonl`` as it finishes (a long run can be resumed / read early);
``--report`` writes ``benchmarks/results/finetune.md`` from it. ROC-AUC with a stratified
bootstrap 95% CI (``oneclass.metrics.evaluate``). Run from the repository root::

    ONECLASS_THREADS=2 python benchmarks/bench_finetune.py --sets pokemon_gen1 art_genres
    python benchmarks/bench_finetune.py --report --machine "where the AUC rows ran"

The report appends ``results/finetune_notes.md`` (how the rows were measured, what they say,
explorations); edit findings there, not in ``finetune.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

import oneclass
from oneclass.bench.runner import cpu_name
from oneclass.data.manifests import dataset_items
from oneclass.data.splits import group_split
from oneclass.metrics import evaluate

RESULTS = Path(__file__).resolve().parent / "results"
ONE_CLASS = ("frozen-knn", "lite2-knn", "msc-knn", "oe-knn", "naive-knn", "naive-head")
BINARY = ("frozen-logistic", "binary-logistic")


def split_set(name: str, test_size: float, seed: int, cifar_train: int, cifar_test: int):
    """{class: (train items, test items)}, split by group within each class."""
    items = dataset_items(name)
    by_class: dict[str, list] = defaultdict(list)
    if name == "cifar10":
        rng = np.random.default_rng(seed)
        for it in items:
            by_class[it.label].append(it)
        out = {}
        for c, its in sorted(by_class.items()):
            train = [i for i in its if "/train/" in i.id][:cifar_train]
            test = [i for i in its if "/test/" in i.id]
            out[c] = (train, [test[j] for j in sorted(rng.permutation(len(test))[:cifar_test])])
        return out
    for it in items:
        by_class[it.label].append(it)
    out = {}
    for c, its in sorted(by_class.items()):
        groups = [it.group or it.id for it in its]
        tr, te = group_split(len(its), groups, test_size=test_size, seed=seed)
        out[c] = ([its[i] for i in tr], [its[i] for i in te])
    return out


def run_class(name, cls, split, methods, args) -> list[dict]:
    pos, test_pos = split[cls]
    rest_train = [it for c, (tr, _) in split.items() if c != cls for it in tr]
    test_neg = [it for c, (_, te) in split.items() if c != cls for it in te]
    rng = np.random.default_rng(args.seed)
    neg = [rest_train[i] for i in sorted(rng.permutation(len(rest_train))[: args.max_neg])]
    test = list(test_pos) + list(test_neg)
    y = np.r_[np.ones(len(test_pos)), np.zeros(len(test_neg))]
    rows = []
    cache = args.cache

    def record(method, scores, t_ft, t_fit, t_score, extra=None):
        scores = np.asarray(scores, dtype=float)
        ok = np.isfinite(scores)
        ev = evaluate(y[ok], scores[ok], n_boot=1000, seed=0)
        row = {
            "set": name,
            "class": cls,
            "method": method,
            "seed": args.seed,
            "n_pos": len(pos),
            "n_neg": len(neg) if method in BINARY else 0,
            "n_test_pos": int(y[ok].sum()),
            "n_test_neg": int((1 - y[ok]).sum()),
            "auc": ev["auc"],
            "auc_lo": ev["auc_lo"],
            "auc_hi": ev["auc_hi"],
            "finetune_s": round(t_ft, 1),
            "fit_s": round(t_fit, 1),
            "score_s": round(t_score, 1),
            "n_failed": int((~ok).sum()),
            **(extra or {}),
        }
        print(json.dumps(row), flush=True)
        with open(args.jsonl, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        rows.append(row)

    def fit_score(emb, det, negatives=None, use_cache=True):
        t0 = time.perf_counter()
        kw = {"cache": cache} if use_cache else {}
        model = oneclass.fit(emb, det, positives=pos, negatives=negatives, progress=False, **kw)
        t1 = time.perf_counter()
        df = model.score(test)
        return df["score"].to_numpy(dtype=float), t1 - t0, time.perf_counter() - t1

    def tuned(label, detector, negatives=None, extra=None, **options):
        """Fine-tune, fit ``detector`` on the result, score the test set and record the row.

        Returns:
            The fine-tuned embedder and its fine-tuning seconds.
        """
        t0 = time.perf_counter()
        emb = oneclass.finetune(
            "effnet-lite0", positives=pos, progress=False, random_state=args.seed, **options
        )
        t_ft = time.perf_counter() - t0
        s, tf, ts = fit_score(emb, detector, negatives, use_cache=False)
        report = emb.fit_report_
        info = {"best_epoch": report["best_epoch"], "val": report["history"]["val"]}
        record(label, s, t_ft, tf, ts, {**info, **(extra or {})})
        return emb, t_ft

    for method in methods:
        if method in ("frozen-knn", "lite2-knn"):
            spec = "effnet-lite0:power=0.5" if method == "frozen-knn" else "effnet-lite2:power=0.5"
            s, tf, ts = fit_score(spec, "knn")
            record(method, s, 0.0, tf, ts)
        elif method == "frozen-logistic":
            s, tf, ts = fit_score("effnet-lite0:power=0.5", "logistic", neg)
            record(method, s, 0.0, tf, ts)
        elif method == "msc-knn":
            for label, extra in [("", {})] + [(f"[{o}]", json.loads(o)) for o in args.msc_variant]:
                tuned(method + label, "knn", **extra)
        elif method == "oe-knn":
            aux = args.aux_items if args.auxiliary else neg
            label = f"{method}[{args.auxiliary}]" if args.auxiliary else method
            tuned(label, "knn", extra={"n_aux": len(aux)}, auxiliary=aux)
        elif method == "binary-logistic":
            tuned(method, "logistic", neg, negatives=neg)
        elif method == "naive-knn":
            emb, t_ft = tuned(method, "knn", mode="naive")
            from oneclass.data.sources import load_images

            _, imgs, _ = load_images(test, progress=False)
            t1 = time.perf_counter()
            logits = np.concatenate(
                [emb.head_scores(imgs[i : i + 32]) for i in range(0, len(imgs), 32)]
            )
            collapse = float(np.mean(logits[y == 0] > 0))
            record(
                "naive-head",
                logits,
                t_ft,
                0.0,
                time.perf_counter() - t1,
                {"collapse": round(collapse, 3)},
            )
    return rows


def timing(args) -> None:
    """The wall-time goal: ``finetune`` on 50 positives + 200 negatives (binary) and on the 50
    positives alone (one-class), ``--timing`` times each; load average and CPU seconds too."""
    import resource

    items = dataset_items("pokemon_gen1")
    rng = np.random.default_rng(args.seed)
    pos = [it for it in items if it.label == "Pikachu"][:50]
    rest = [it for it in items if it.label != "Pikachu"]
    neg = [rest[i] for i in sorted(rng.permutation(len(rest))[:200])]
    for rep in range(args.timing):
        for mode, negatives in (("binary", neg), ("msc", None)):
            load0, c0 = os.getloadavg()[0], resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
            emb = oneclass.finetune(
                "effnet-lite0", positives=pos, negatives=negatives, progress=False, random_state=rep
            )
            wall = time.perf_counter() - t0
            c1 = resource.getrusage(resource.RUSAGE_SELF)
            row = {
                "set": "timing",
                "method": f"timing-{mode}",
                "rep": rep,
                "n_pos": len(pos),
                "n_neg": len(negatives or []),
                "wall_s": round(wall, 1),
                "cpu_s": round(c1.ru_utime - c0.ru_utime + c1.ru_stime - c0.ru_stime, 1),
                "trunk_maps_s": emb.fit_report_["seconds_trunk_maps"],
                "epochs_run": len(emb.fit_report_["history"]["loss"]),
                "load_before": round(load0, 1),
                "load_after": round(os.getloadavg()[0], 1),
                "threads": os.environ.get("ONECLASS_THREADS", "default"),
            }
            print(json.dumps(row), flush=True)
            with open(args.jsonl, "a") as fh:
                fh.write(json.dumps(row) + "\n")


def report(jsonl: Path, out: Path, machine: str = "", notes: Path | None = None) -> None:
    """Write the markdown summary of the rows in ``jsonl`` (``machine``: where the AUC rows ran,
    default this machine's CPU; ``notes``: a Markdown file appended to the summary)."""
    rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    timings = [r for r in rows if r["set"] == "timing"]
    rows = [r for r in rows if r["set"] != "timing"]
    by = defaultdict(list)
    for r in rows:
        by[(r["set"], r["method"])].append(r)
    lines = [
        "# Fine-tuned vs frozen EfficientNet-Lite0, one-vs-rest",
        "",
        f"Machine of the AUC rows: {machine or f'{cpu_name()}, {platform.machine()}'}; "
        "produced by "
        "`benchmarks/bench_finetune.py` (its docstring gives the protocol).",
        "",
        "| set | method | classes | mean AUC | worst AUC (class) | mean 95% CI | "
        "finetune s (median) | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (s, m), rs in sorted(by.items()):
        aucs = np.array([r["auc"] for r in rs])
        worst = rs[int(np.argmin(aucs))]
        ci = f"{np.mean([r['auc_lo'] for r in rs]):.3f}-{np.mean([r['auc_hi'] for r in rs]):.3f}"
        ft = np.median([r["finetune_s"] for r in rs])
        note = ""
        if m == "naive-head":
            note = f"calls {np.mean([r['collapse'] for r in rs]):.0%} of negatives positive"
        lines.append(
            f"| {s} | {m} | {len(rs)} | {aucs.mean():.3f} | {worst['auc']:.3f} "
            f"({worst['class']}) | {ci} | {ft:.0f} | {note} |"
        )
    lines += [
        "",
        "## Per class",
        "",
        "| set | class | method | AUC [95% CI] | n train pos/neg | n test pos/neg | "
        "finetune s | fit s | score s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['set']} | {r['class']} | {r['method']} | {r['auc']:.3f} "
            f"[{r['auc_lo']:.3f}, {r['auc_hi']:.3f}] | {r['n_pos']}/{r['n_neg']} | "
            f"{r['n_test_pos']}/{r['n_test_neg']} | {r['finetune_s']} | {r['fit_s']} | "
            f"{r['score_s']} |"
        )
    if timings:
        lines += [
            "",
            "## Wall time of finetune (goal: 50 positives + 200 negatives <= 3 min)",
            "",
            "| call | rep | positives/negatives | wall s | CPU s | trunk maps s | epochs | "
            "load avg before/after | threads |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in timings:
            lines.append(
                f"| {r['method']} | {r['rep']} | {r['n_pos']}/{r['n_neg']} | "
                f"{r['wall_s']} | {r['cpu_s']} | {r['trunk_maps_s']} | "
                f"{r['epochs_run']} | {r['load_before']}/{r['load_after']} | "
                f"{r['threads']} |"
            )
    if notes is not None:
        lines += ["", notes.read_text().rstrip()]
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", nargs="+", default=["pokemon_gen1", "art_genres"])
    ap.add_argument(
        "--methods",
        nargs="+",
        default=["frozen-knn", "msc-knn", "naive-knn"],
        choices=ONE_CLASS[:-1] + BINARY,
    )
    ap.add_argument("--classes", nargs="*", help="only these classes")
    ap.add_argument("--max-classes", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--test-size", type=float, default=0.4)
    ap.add_argument("--max-neg", type=int, default=200)
    ap.add_argument("--cifar-train", type=int, default=1000)
    ap.add_argument("--cifar-test", type=int, default=100)
    ap.add_argument(
        "--msc-variant",
        nargs="*",
        default=[],
        help="extra msc-knn rows, each a JSON of finetune options, e.g. '{\"lr\": 1e-4}'",
    )
    ap.add_argument(
        "--auxiliary",
        help="oe-knn: a data set whose images (at most --max-neg, seeded) are the auxiliary "
        "images instead of the other classes' training images",
    )
    ap.add_argument("--cache", default="/tmp/finetune/cache.sqlite")
    ap.add_argument("--jsonl", type=Path, default=RESULTS / "finetune.jsonl")
    ap.add_argument("--report", action="store_true", help="only write the markdown")
    ap.add_argument("--timing", type=int, default=0, help="time the goal calls N times, only")
    ap.add_argument("--out", type=Path, default=RESULTS / "finetune.md")
    ap.add_argument("--machine", default="", help="where the AUC rows ran (report header)")
    ap.add_argument(
        "--notes",
        type=Path,
        default=RESULTS / "finetune_notes.md",
        help="Markdown appended to the report (the protocol and findings)",
    )
    args = ap.parse_args()
    if args.auxiliary:  # out-of-domain "random negatives" (never in the test), picked once
        every = dataset_items(args.auxiliary)
        pick = np.random.default_rng(args.seed).permutation(len(every))[: args.max_neg]
        args.aux_items = [every[i] for i in sorted(pick)]
    if args.timing:
        timing(args)
    elif not args.report:
        for name in args.sets:
            split = split_set(name, args.test_size, args.seed, args.cifar_train, args.cifar_test)
            classes = [c for c in split if not args.classes or c in args.classes]
            for cls in classes[: args.max_classes]:
                run_class(name, cls, split, args.methods, args)
    report(args.jsonl, args.out, args.machine, args.notes)


if __name__ == "__main__":
    main()
