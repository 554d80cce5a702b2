"""The ``oneclass`` command line: fit, score, benchmark, report, datasets."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _cmd_fit(a: argparse.Namespace) -> int:
    from oneclass.pipeline import Pipeline

    pipe = Pipeline(a.embedder, a.detector, cache=a.cache, progress=not a.quiet,
                    target_fpr=a.target_fpr)
    pipe.fit(a.positives, a.negatives or None)
    pipe.save(a.out)
    rep = pipe.fit_report_
    print(f"fitted {a.detector} on {a.embedder}: {json.dumps(_summary(rep))}")
    print(f"threshold {pipe.detector_.threshold_:.6g} ({pipe.detector_.calibration_}); "
          f"saved to {a.out}")
    for item_id, reason in list(rep.get("failures", {}).items())[:20]:
        print(f"  failed: {item_id}: {reason}", file=sys.stderr)
    return 0


def _summary(rep: dict) -> dict:
    return {k: v for k, v in rep.items() if k != "failures"} | {
        "failures": len(rep.get("failures", {}))}


def _cmd_score(a: argparse.Namespace) -> int:
    from oneclass.persist import load
    from oneclass.pipeline import Pipeline

    pipe = load(a.model)
    if not isinstance(pipe, Pipeline):
        raise SystemExit(f"{a.model}: a detector on vectors, not an image pipeline; "
                         "use it from Python with score_samples(X)")
    pipe.cache, pipe.progress = a.cache, not a.quiet
    df = pipe.score(a.sources)
    if a.out:
        df.to_csv(a.out, index=False)
        print(f"{len(df)} images scored -> {a.out}; status: "
              + ", ".join(f"{k}={v}" for k, v in df["status"].str.split(":").str[0]
                          .value_counts().items()))
    else:
        df.to_csv(sys.stdout, index=False)
    return 0


def _cmd_benchmark(a: argparse.Namespace) -> int:
    from oneclass.bench.runner import run_suite

    out = Path(a.out or Path("runs") / Path(a.suite).stem)
    run = run_suite(a.suite, out, cache_dir=a.cache, progress=not a.quiet,
                    embedders=a.embedders, detectors=a.detectors, seeds=a.seeds)
    info = run.run_info().get("cells", {})
    print(f"run folder {out}: {info}")
    if not a.no_report:
        from oneclass.report import write_report

        html = write_report([out], out / "report.html", out / "report.md")
        print(f"report: {html}")
    return 0


def _cmd_report(a: argparse.Namespace) -> int:
    from oneclass.report import write_report

    out = Path(a.out)
    md = Path(a.markdown) if a.markdown else out.with_suffix(".md")
    print(f"report: {write_report([Path(r) for r in a.runs], out, md)} and {md}")
    return 0


def _cmd_datasets(a: argparse.Namespace) -> int:
    from oneclass.data import manifests

    names = a.names or manifests.available_datasets()
    if a.action == "list":
        for name in names:
            m = manifests.load_manifest(name)
            print(f"{name:12s} {m.get('description', '')}")
        print(f"data root: {manifests.data_root()}")
        return 0
    bad = 0
    for name in names:
        if a.action == "verify":
            rep = manifests.verify(name)
            ok = rep.get("ok", False)
            bad += not ok
            print(f"{name:12s} {'ok' if ok else 'PROBLEM'}  {rep.get('message', '')}")
        else:
            print(f"{name:12s} {manifests.fetch(name)}")
    return 1 if bad else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="oneclass", description=__doc__)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", required=True)

    f = sub.add_parser("fit", help="fit embedder + detector on images and save the model")
    f.add_argument("--embedder", required=True, help="e.g. dlib-face, effnet-lite0, clip")
    f.add_argument("--detector", required=True, help="NAME[:k=v,...], e.g. knn:k=5")
    f.add_argument("--positives", nargs="+", required=True, help="folders, zips, lists, files")
    f.add_argument("--negatives", nargs="+", help="negatives (binary baselines need them)")
    f.add_argument("--target-fpr", type=float, help="threshold at this FPR on the negatives")
    f.add_argument("--cache", help="embedding cache file (SQLite)")
    f.add_argument("--out", required=True, help="model folder to write")
    f.set_defaults(func=_cmd_fit)

    s = sub.add_parser("score", help="score images with a saved model")
    s.add_argument("--model", required=True)
    s.add_argument("sources", nargs="+", help="folders, zips, lists of paths/URLs, files")
    s.add_argument("--out", help="CSV to write (default: stdout)")
    s.add_argument("--cache", help="embedding cache file (SQLite)")
    s.set_defaults(func=_cmd_score)

    b = sub.add_parser("benchmark", help="run a benchmark suite (resumable)")
    b.add_argument("suite", help="suite YAML, e.g. benchmarks/niccage.yaml")
    b.add_argument("--out", help="run folder (default runs/<suite>)")
    b.add_argument("--cache", help="cache folder (default $ONECLASS_CACHE or ~/.cache/oneclass)")
    b.add_argument("--embedders", nargs="+", help="only these embedders")
    b.add_argument("--detectors", nargs="+", help="only these detectors")
    b.add_argument("--seeds", nargs="+", type=int, help="only these seeds")
    b.add_argument("--no-report", action="store_true", help="skip writing the report")
    b.set_defaults(func=_cmd_benchmark)

    r = sub.add_parser("report", help="report one run, or compare several")
    r.add_argument("runs", nargs="+", help="run folders")
    r.add_argument("--out", default="report.html")
    r.add_argument("--markdown", help="Markdown file (default: next to --out)")
    r.set_defaults(func=_cmd_report)

    d = sub.add_parser("datasets", help="what the manifests know; verify; fetch")
    d.add_argument("action", choices=["list", "verify", "fetch"])
    d.add_argument("names", nargs="*")
    d.set_defaults(func=_cmd_datasets)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"oneclass {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
