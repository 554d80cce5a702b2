"""``oneclass benchmark``: run (or resume) a benchmark suite, then write its report."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from oneclass.cli.common import progress_enabled

NAME = "benchmark"
HELP = "run a benchmark suite (resumable)"
log = logging.getLogger("oneclass.cli.benchmark")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the options of ``benchmark``."""
    p.add_argument("suite", help="suite YAML, e.g. benchmarks/niccage.yaml")
    p.add_argument("--out", help="run folder (default runs/<suite>)")
    p.add_argument("--cache", help="cache folder (default $ONECLASS_CACHE or ~/.cache/oneclass)")
    p.add_argument("--embedders", nargs="+", help="only these embedders (as written in the suite)")
    p.add_argument("--detectors", nargs="+", help="only these detectors (as written in the suite)")
    p.add_argument("--seeds", nargs="+", type=int, help="only these seeds")
    p.add_argument("--no-report", action="store_true", help="skip writing the report")


def run(a: argparse.Namespace) -> int:
    """Run ``benchmark``; returns 0 when every cell succeeded, 1 when some failed."""
    from oneclass.bench.runner import run_suite

    out = Path(a.out or Path("runs") / Path(a.suite).stem)
    run_dir = run_suite(
        a.suite,
        out,
        cache_dir=a.cache,
        progress=progress_enabled(a),
        embedders=a.embedders,
        detectors=a.detectors,
        seeds=a.seeds,
    )
    info = run_dir.run_info().get("cells", {})
    print(f"run folder {out}: {info}")
    if not a.no_report:
        from oneclass.report import write_report

        html = write_report([out], out / "report.html", out / "report.md")
        print(f"report: {html}")
    failed = int(info.get("failed", 0) or 0)
    if failed:
        log.warning("%d cell(s) failed: see the 'error' column of %s", failed, out / "results.csv")
        return 1
    return 0
