"""Assemble a report (a list of blocks) from one or more runs; the renderers turn it into files."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from oneclass.report import gallery, plots
from oneclass.report import tables as T
from oneclass.report.blocks import Block, Details, Heading, KeyValues, Para
from oneclass.report.problems import RunFacts
from oneclass.report.runs import Run, config_label
from oneclass.report.sections import SuiteSections, slug

__all__ = ["Builder", "build", "slug"]


class Builder(SuiteSections, RunFacts):
    """Builds the blocks of a report; ``gallery_k`` thumbnails per gallery, ``top_k`` curves."""

    def __init__(
        self, runs: list[Run], top_k: int = 5, gallery_k: int = 12, thumb_px: int = gallery.THUMB_PX
    ):
        self.runs = runs
        self.top_k = top_k
        self.gallery_k = gallery_k
        self.thumb_px = thumb_px
        self.blocks: list[Block] = []
        # one colour per detector in every figure of the report
        self.palette = plots.colours(d for r in runs for d in r.results["detector"])

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)

    # -- whole report ---------------------------------------------------------------------------
    def build(self) -> list[Block]:
        suites = list(dict.fromkeys(s for r in self.runs for s in T.suites(r)))
        title = "Benchmark report: " + (", ".join(suites) if suites else "no results")
        self.add(Heading(1, title, "top"))
        names = ", ".join(r.name for r in self.runs)
        self.add(
            Para(
                f"{'Runs' if len(self.runs) > 1 else 'Run'}: {names}. Scores: higher = more "
                "in-class; positives (label 1) are the class, negatives everything else."
            )
        )
        self.summary()
        if len(self.runs) > 1:
            self.comparison()
        for run in self.runs:
            self.run_section(run)
        return self.blocks

    def summary(self) -> None:
        rows = []
        for run in self.runs:
            for suite in T.suites(run):
                best = T.best_config(run, suite)
                if best is None:
                    continue
                setting, r = best
                binary = r.get("n_train_neg", 0) > 0
                rows.append(
                    {
                        "run": run.name,
                        "suite": suite,
                        "setting": setting,
                        "config": config_label(r["embedder"], r["detector"])
                        + (" (binary baseline)" if binary else ""),
                        "auc": r["auc"],
                        "auc_lo": r["auc_lo"],
                        "auc_hi": r["auc_hi"],
                        "ap": r["ap"],
                        "tpr_at_fpr1": r["tpr_at_fpr1"],
                        "fpr_at_tpr95": r["fpr_at_tpr95"],
                    }
                )
        self.add(Heading(2, "Summary", "summary"))
        if not rows:
            self.add(Para("No cell finished: there is nothing to rank.", "warn"))
            return
        df = pd.DataFrame(rows)
        cols = [
            T.text("Suite", "suite"),
            T.text("Best configuration", "config"),
            T.Col("ROC-AUC [95% CI]", lambda r: T.auc_ci(r["auc"], r["auc_lo"], r["auc_hi"])),
            T.col("AP", "ap"),
            T.col("TPR@FPR1%", "tpr_at_fpr1"),
            T.col("FPR@TPR95%", "fpr_at_tpr95"),
            T.text("Setting", "setting"),
        ]
        if len(self.runs) > 1:
            cols.insert(0, T.text("Run", "run"))
        note = (
            "per-target: mean over the targets (classes, people, data sets), each the "
            "positive class in turn"
            if (df["setting"] == "per-target").any()
            else ""
        )
        self.add(T.to_table(df, cols, kind="summary", note=note))

    # -- comparison -----------------------------------------------------------------------------
    def comparison(self) -> None:
        runs = self.runs
        shared, only = T.compare(runs)
        self.add(Heading(2, "Comparison of runs", "comparison"))
        self.add(
            Para(
                f"Baseline: {runs[0].name}. Cells are matched on suite, embedder, detector, "
                "seed, setting and value (all negatives together); each configuration is "
                "averaged over the seeds every run finished. Δ = AUC minus the baseline's; "
                "'overlap' says whether the two 95% CIs overlap (no overlap: a difference "
                "larger than the test-set noise)."
            )
        )
        if shared.empty:
            self.add(Para("The runs share no finished cell.", "warn"))
        else:
            cols = [
                T.text("Suite", "suite"),
                T.text("Setting", "setting"),
                T.text("Value", "setting_value"),
                T.text("Embedder", "embedder"),
                T.text("Detector", "detector"),
                T.col("seeds", "seeds", T.num),
            ]
            for i, run in enumerate(runs):
                cols.append(
                    T.Col(
                        f"AUC {run.name}",
                        lambda r, i=i: T.auc_ci(r[f"auc:{i}"], r[f"lo:{i}"], r[f"hi:{i}"]),  # type: ignore[misc]
                    )
                )
            for i, run in enumerate(runs[1:], 1):
                ov = f"overlap:{i}"
                cols.append(T.Col(f"Δ {run.name}", lambda r, i=i: f"{r[f'delta:{i}']:+.3f}"))  # type: ignore[misc]
                cols.append(
                    T.Col(
                        "overlap" if len(runs) == 2 else f"overlap {run.name}",
                        lambda r, k=ov: {"True": "yes", "False": "no"}.get(str(r[k]), "–"),  # type: ignore[misc]
                        numeric=False,
                        mark=lambda r, k=ov: str(r[k]) == "False",  # type: ignore[misc]
                    )
                )
            self.add(
                T.to_table(
                    shared,
                    cols,
                    caption=f"{len(shared)} shared configurations, largest difference first",
                )
            )
        if not only.empty:
            cols = [
                T.text("Suite", "suite"),
                T.text("Setting", "setting"),
                T.text("Embedder", "embedder"),
                T.text("Detector", "detector"),
                T.text("Values", "values"),
                T.text("Seeds", "seeds"),
                T.col("cells", "cells", T.num),
            ]
            cols += [T.text(r.name, r.name) for r in runs]
            self.add(
                T.to_table(
                    only,
                    cols,
                    caption=f"{int(only['cells'].sum())} cells not "
                    "finished in every run: status in each run",
                )
            )
        elif not shared.empty:
            self.add(Para("Every cell is in every run."))
        common = set.intersection(*(set(T.suites(r)) for r in runs))
        for r in runs:
            own = [
                s
                for s in T.suites(r)
                if s not in common and sum(s in T.suites(o) for o in runs) == 1
            ]
            if own:
                self.add(Para(f"Only in {r.name}: suite {', '.join(own)}.", "note"))

    # -- one run --------------------------------------------------------------------------------
    def run_section(self, run: Run) -> None:
        multi = len(self.runs) > 1
        self.add(Heading(2, f"Run {run.name}" if multi else "Run", slug("run", run.name)))
        self.add(KeyValues(self.header(run)))
        for suite in T.suites(run):
            self.suite_section(run, suite)
        self.problems(run)
        self.add(
            Details(
                "run.json (everything the harness recorded)",
                json.dumps(run.info, indent=2, default=str) if run.info else "(no run.json)",
            )
        )


def build(runs: list[Run], **kw: Any) -> list[Block]:
    """Returns the blocks of a report of ``runs`` (one run, or a comparison of several)."""
    return Builder(runs, **kw).build()
