"""Assemble a report (a list of blocks) from one or more runs; the renderers turn it into files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from oneclass.report import gallery, plots
from oneclass.report import tables as T
from oneclass.report.blocks import (
    Block,
    Details,
    Figure,
    Gallery,
    Heading,
    KeyValues,
    Para,
)
from oneclass.report.runs import Run, config_label, value_sort_key

CI_NOTE = ("ROC-AUC is the mean over seeds; its 95% CI is the mean over seeds of each seed's "
           "bootstrap interval (the test-set uncertainty of one split, conservative for the mean); "
           "sd is the spread of the AUC over seeds. Bold: best in its column. Times are seconds "
           "per cell (fit on the training set, score the test set). 'train neg.': labelled "
           "negatives a binary baseline was trained with (0 = one-class).")


def slug(*parts: str) -> str:
    s = "-".join(str(p) for p in parts if p != "").lower()
    return "".join(c if c.isalnum() else "-" for c in s).strip("-")


class Builder:
    """Builds the blocks of a report; ``gallery_k`` thumbnails per gallery, ``top_k`` curves."""

    def __init__(self, runs: list[Run], top_k: int = 5, gallery_k: int = 12,
                 thumb_px: int = gallery.THUMB_PX):
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
        self.add(Para(f"{'Runs' if len(self.runs) > 1 else 'Run'}: {names}. Scores: higher = more "
                      "in-class; positives (label 1) are the class, negatives everything else."))
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
                rows.append({"run": run.name, "suite": suite, "setting": setting,
                             "config": config_label(r["embedder"], r["detector"])
                             + (" (binary baseline)" if binary else ""),
                             "auc": r["auc"], "auc_lo": r["auc_lo"], "auc_hi": r["auc_hi"],
                             "ap": r["ap"], "tpr_at_fpr1": r["tpr_at_fpr1"],
                             "fpr_at_tpr95": r["fpr_at_tpr95"]})
        self.add(Heading(2, "Summary", "summary"))
        if not rows:
            self.add(Para("No cell finished: there is nothing to rank.", "warn"))
            return
        df = pd.DataFrame(rows)
        cols = [T.text("Suite", "suite"), T.text("Best configuration", "config"),
                T.Col("ROC-AUC [95% CI]", lambda r: T.auc_ci(r["auc"], r["auc_lo"], r["auc_hi"])),
                T.col("AP", "ap"), T.col("TPR@FPR1%", "tpr_at_fpr1"),
                T.col("FPR@TPR95%", "fpr_at_tpr95"), T.text("Setting", "setting")]
        if len(self.runs) > 1:
            cols.insert(0, T.text("Run", "run"))
        note = ("per-target: mean over the targets (classes, people, data sets), each the "
                "positive class in turn" if (df["setting"] == "per-target").any() else "")
        self.add(T.to_table(df, cols, kind="summary", note=note))

    # -- comparison -----------------------------------------------------------------------------
    def comparison(self) -> None:
        runs = self.runs
        shared, only = T.compare(runs)
        self.add(Heading(2, "Comparison of runs", "comparison"))
        self.add(Para(f"Baseline: {runs[0].name}. Cells are matched on suite, embedder, detector, "
                      "seed, setting and value (all negatives together); each configuration is "
                      "averaged over the seeds every run finished. Δ = AUC minus the baseline's; "
                      "'overlap' says whether the two 95% CIs overlap (no overlap: a difference "
                      "larger than the test-set noise)."))
        if shared.empty:
            self.add(Para("The runs share no finished cell.", "warn"))
        else:
            cols = [T.text("Suite", "suite"), T.text("Setting", "setting"),
                    T.text("Value", "setting_value"), T.text("Embedder", "embedder"),
                    T.text("Detector", "detector"), T.col("seeds", "seeds", T.num)]
            for i, run in enumerate(runs):
                cols.append(T.Col(f"AUC {run.name}",
                                  lambda r, i=i: T.auc_ci(r[f"auc:{i}"], r[f"lo:{i}"],
                                                          r[f"hi:{i}"])))
            for i, run in enumerate(runs[1:], 1):
                ov = f"overlap:{i}"
                cols.append(T.Col(f"Δ {run.name}", lambda r, i=i: f"{r[f'delta:{i}']:+.3f}"))
                cols.append(T.Col("overlap" if len(runs) == 2 else f"overlap {run.name}",
                                  lambda r, k=ov: {"True": "yes", "False": "no"}.get(str(r[k]),
                                                                                     "–"),
                                  numeric=False, mark=lambda r, k=ov: str(r[k]) == "False"))
            self.add(T.to_table(shared, cols, caption=f"{len(shared)} shared configurations, "
                                "largest difference first"))
        if not only.empty:
            cols = [T.text("Suite", "suite"), T.text("Setting", "setting"),
                    T.text("Embedder", "embedder"), T.text("Detector", "detector"),
                    T.text("Values", "values"), T.text("Seeds", "seeds"),
                    T.col("cells", "cells", T.num)]
            cols += [T.text(r.name, r.name) for r in runs]
            self.add(T.to_table(only, cols, caption=f"{int(only['cells'].sum())} cells not "
                                "finished in every run: status in each run"))
        elif not shared.empty:
            self.add(Para("Every cell is in every run."))
        common = set.intersection(*(set(T.suites(r)) for r in runs))
        for r in runs:
            own = [s for s in T.suites(r) if s not in common and
                   sum(s in T.suites(o) for o in runs) == 1]
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
        self.add(Details("run.json (everything the harness recorded)",
                         json.dumps(run.info, indent=2, default=str) if run.info
                         else "(no run.json)"))

    def header(self, run: Run) -> list[tuple[str, str]]:
        info = run.info
        kv: list[tuple[str, str]] = []
        suites = T.suites(run)
        kv.append(("suite", ", ".join(suites) or str(info.get("suite", "–"))))
        if info.get("protocol"):
            kv.append(("protocol", str(info["protocol"])))
        for suite in suites:
            nums = T.protocol_numbers(run, suite)
            pre = f"{suite}: " if len(suites) > 1 else ""
            kv += [(pre + k, v) for k, v in nums.items()]
        boot = info.get("bootstrap")
        method = info.get("bootstrap_method", "bootstrap")
        kv.append(("CI", f"{method}" + (f", {boot} resamples" if boot else "")
                   + "; over seeds: mean of the per-seed bounds"))
        if info.get("calibration_folds") is not None:
            kv.append(("calibration folds", str(info["calibration_folds"])))
        kv.append(("versions", _flat(info.get("versions"))))
        kv.append(("hardware", _flat(info.get("hardware"))))
        kv.append(("git revision", str(info.get("git_revision", info.get("git", "–")))))
        if info:
            kv.append(("started / finished", f"{info.get('started', '–')} / "
                                             f"{info.get('finished', 'not finished')}"))
        else:
            kv.append(("run.json", "missing (a run still going, or copied without it)"))
        kv.append(("timings", self.timings(run)))
        if isinstance(info.get("cells"), dict):
            kv.append(("cells", _flat(info["cells"])))
        return kv

    def timings(self, run: Run) -> str:
        r = run.results[run.results["family"] == "all"]
        parts = []
        if run.info.get("last_session_seconds") is not None:
            parts.append(f"last session {T.secs(float(run.info['last_session_seconds']))} s")
        if not r.empty:
            parts.append(f"fit {T.secs(r['fit_s'].sum())} s, score {T.secs(r['score_s'].sum())} s "
                         f"over {len(r)} cells")
            emb = r.groupby("embedder")["embed_s"].max().dropna()
            emb = emb[emb > 0]
            if not emb.empty:
                parts.append("embedding " + ", ".join(f"{k} {T.secs(v)} s" for k, v in
                                                      emb.items()))
        return "; ".join(parts) or "–"

    def suite_section(self, run: Run, suite: str) -> None:
        self.add(Heading(3, f"Suite {suite}", slug(run.name, suite)))
        sets = T.settings(run, suite)
        if not sets:
            self.add(Para("No finished cell in this suite.", "warn"))
        if "main" in sets:
            self.ranking_block(run, suite, "main")
            self.score_figures(run, suite, "main")
        if "wild" in sets:
            self.add(Heading(4, "In the wild", slug(run.name, suite, "wild")))
            self.ranking_block(run, suite, "wild")
            self.score_figures(run, suite, "wild")
        if "per-target" in sets:
            self.per_target(run, suite)
        if "fewshot" in sets:
            self.curve_block(run, suite, "fewshot", "number of training positives")
        if "label-efficiency" in sets:
            self.curve_block(run, suite, "label-efficiency", "labelled negatives added")

    def ranking_block(self, run: Run, suite: str, setting: str) -> None:
        r = T.ranking(run, suite, setting)
        multi_value = r["setting_value"].nunique() > 1
        r.insert(0, "rank", np.arange(1, len(r) + 1))
        cols = [T.col("#", "rank", T.num)]
        if multi_value:
            cols.append(T.text("Value", "setting_value"))
        cols += ranking_cols(r)
        n_seeds = int(r["seeds"].iloc[0]) if len(r) and r["seeds"].nunique() == 1 else 0
        seeds = f", {n_seeds} seed{'s' if n_seeds > 1 else ''} each" if n_seeds else ""
        self.add(T.to_table(r, cols, note=CI_NOTE, caption=f"Ranking, {suite} ({setting}): "
                            f"{len(r)} configurations{seeds}"))

    def _cell_scores(self, run: Run, suite: str, setting: str, emb: str,
                     det: str) -> tuple[pd.DataFrame, int] | None:
        ok = run.ok
        m = ok[(ok["suite"] == suite) & (ok["setting"] == setting) & (ok["embedder"] == emb)
               & (ok["detector"] == det) & (ok["family"] == "all")].sort_values("seed")
        for _, row in m.iterrows():
            s = run.scores(row["cell"])
            if s is not None:
                return s, int(row["seed"])
        return None

    def score_figures(self, run: Run, suite: str, setting: str) -> None:
        r = T.ranking(run, suite, setting).head(self.top_k)
        got = []
        for _, row in r.iterrows():
            cs = self._cell_scores(run, suite, setting, row["embedder"], row["detector"])
            if cs is not None:
                got.append((row, *cs))
        if not got:
            self.add(Para("No per-image scores were written: no ROC curves or galleries.",
                          "note"))
            return
        curves = [(f"{config_label(x['embedder'], x['detector'])} (seed {seed}, AUC "
                   f"{x['auc']:.3f})", s) for x, s, seed in got]
        self.add(Figure(slug(run.name, suite, setting, "roc"), plots.roc(curves),
                        f"ROC curves of the {len(got)} best configurations ({suite}); one seed "
                        "each. Right: the same curves with the false-positive rate on a log axis "
                        "(dashed: 1% and 5%)."))
        panels = [(config_label(x["embedder"], x["detector"]), s) for x, s, _ in got[:3]]
        self.add(Figure(slug(run.name, suite, setting, "hist"), plots.histograms(panels),
                        "Score distributions: positives (filled) against each negative family "
                        "(outlines), for the best configurations. Images without a face are not "
                        "drawn."))
        best, scores, seed = got[0]
        self.galleries(run, best, scores, seed)

    def galleries(self, run: Run, best: pd.Series, scores: pd.DataFrame, seed: int) -> None:
        cfg = config_label(best["embedder"], best["detector"])
        fp, fn = gallery.worst(scores, self.gallery_k)
        cache = gallery.default_url_cache(run.info)
        no_face = int((scores["status"] == "no_face").sum())
        note = (f"{cfg}, seed {seed}. Caption: score, family, image. "
                + (f"{no_face} images without a face are not in these galleries (see the no-face "
                   "counts)." if no_face else ""))
        self.add(Gallery(f"Worst false positives: highest-scoring negatives ({cfg})",
                         gallery.thumbs(fp, cache, self.thumb_px), note))
        self.add(Gallery(f"Worst false negatives: lowest-scoring positives ({cfg})",
                         gallery.thumbs(fn, cache, self.thumb_px), note))

    def per_target(self, run: Run, suite: str) -> None:
        self.add(Heading(4, "Per target", slug(run.name, suite, "per-target")))
        r = T.ranking_per_target(run, suite)
        cols = ranking_cols(r, sd="sd (targets)")
        cols.insert(2, T.col("targets", "targets", T.num))
        cols.insert(5, T.Col("worst (target)", lambda x: f"{T.f3(x['worst'])} "
                                                         f"({x['worst_target']})"))
        self.add(T.to_table(r, cols, caption=f"Mean over targets, {suite}: each target is the "
                            "positive class in turn", note=CI_NOTE + " sd here: over targets."))
        per = T.ranking(run, suite, "per-target")
        top = [config_label(e, d) for e, d in r[["embedder", "detector"]].head(3).to_numpy()]
        df = per.assign(target=per["setting_value"],
                        config=[config_label(e, d) for e, d in
                                per[["embedder", "detector"]].to_numpy()])
        n_t = df["target"].nunique()
        self.add(Figure(slug(run.name, suite, "per-target"), plots.per_target(df, top),
                        f"Per-target ROC-AUC of the {len(top)} best configurations "
                        f"({n_t} targets)."))
        if n_t <= 12:
            pv = T.pivot(run, suite, "per-target")
            vals = sorted(per["setting_value"].unique(), key=value_sort_key)
            self.add(T.to_table(pv, [T.text("Embedder", "embedder"), T.text("Detector", "detector"),
                                     *[T.col(v, v, better="max") for v in vals],
                                     T.col("mean", "mean", better="max")],
                                caption="ROC-AUC per target"))
        else:
            b = df[df["config"] == top[0]].sort_values("auc").head(10)
            self.add(T.to_table(b, [T.text("Target", "target"), T.col("ROC-AUC", "auc"),
                                    T.Col("95% CI", lambda x: T.ci(x["auc_lo"], x["auc_hi"])),
                                    T.col("positives", "n_pos", T.num),
                                    T.col("negatives", "n_neg", T.num)],
                                caption=f"The 10 hardest targets of {top[0]}"))

    def curve_block(self, run: Run, suite: str, setting: str, xlabel: str) -> None:
        title = {"fewshot": "AUC against the number of positives",
                 "label-efficiency": "Label efficiency: AUC as labelled negatives are added"}
        self.add(Heading(4, title[setting], slug(run.name, suite, setting)))
        df = T.curve_frame(run, suite, setting)
        flat = None
        caption = f"{title[setting]} ({suite}); band: mean bootstrap 95% CI."
        if setting == "label-efficiency":
            main = T.ranking(run, suite, "main")
            dets = set(df["detector"])
            flat = main[~main["detector"].isin(dets) & main["embedder"].isin(set(df["embedder"]))
                        & (main["n_train_neg"].fillna(0) == 0)]
            if not flat.empty:
                caption += " Dashed: one-class detectors (no negatives), main setting."
        logx = setting == "fewshot" and df["x"].max() / max(df["x"].min(), 1) >= 8
        png = plots.curves(df, xlabel, flat, logx, self.palette)
        self.add(Figure(slug(run.name, suite, setting), png, caption))
        pv = T.pivot(run, suite, setting)
        vals = sorted(df["setting_value"].unique(), key=value_sort_key)
        cols = [T.text("Embedder", "embedder"), T.text("Detector", "detector"),
                *[T.col(v, v, better="max") for v in vals]]
        main = T.ranking(run, suite, "main")
        if setting == "fewshot" and not main.empty:  # the full training set, for reference
            pv = pv.merge(main[["embedder", "detector", "auc"]].rename(columns={"auc": "_main"}),
                          on=["embedder", "detector"], how="left")
            cols.append(T.col("all (main)", "_main"))
        self.add(T.to_table(pv, cols, caption=f"ROC-AUC by {xlabel} (mean over seeds)"))

    # -- what went wrong ------------------------------------------------------------------------
    def problems(self, run: Run) -> None:
        self.add(Heading(3, "Failures, no-face images, leakage audit", slug(run.name, "problems")))
        err = T.cell_errors(run)
        if not err.empty:
            self.add(T.to_table(err, [T.text(c.replace("_", " "), c) for c in err.columns],
                                caption=f"{len(err)} cells failed", kind="warn"))
        nf = T.no_face(run)
        if nf.empty:
            self.add(Para("No-face images: none (no cell reported an image without a face)."))
        else:
            self.add(T.to_table(nf, [T.text("Suite", "suite"), T.text("Embedder", "embedder"),
                                     T.col("cells", "cells", T.num),
                                     T.col("cells with any", "with", T.num),
                                     T.col("most in a cell", "max", T.num),
                                     T.col("total", "total", T.num)],
                                caption="Images without a detected face (train + test, per cell)"))
        fails = run.failures
        if fails.empty:
            self.add(Para("Failures: none (every image could be read and decoded)."))
        else:
            fc = T.failure_counts(run)
            self.add(T.to_table(fc, [T.text(c.capitalize(), c) for c in fc.columns[:-1]]
                                + [T.col("images", "n", T.num)],
                                caption=f"{len(fails)} images that could not be used, by reason"))
            shown = fails.head(200).fillna("")
            self.add(T.to_table(shown, [T.text(c, c) for c in ["stage", "item_id", "uri",
                                                               "reason"]],
                                caption="The failed images" + (f" (first 200 of {len(fails)})"
                                                               if len(fails) > 200 else "")))
        au = T.audit_summary(run)
        if au.empty:
            self.add(Para("Leakage audit: no near-duplicate pair across train and test was "
                          "recorded" + ("" if (run.path / "audit.csv").exists()
                                        else " (no audit.csv in this run)") + "."))
        else:
            self.add(T.to_table(au, [T.text("Suite", "suite"), T.col("seed", "seed", T.num),
                                     T.col("pairs", "pairs", T.num),
                                     T.col("test images", "test_items", T.num),
                                     T.col("closest distance", "min_distance", T.num)],
                                caption="Leakage audit: near-duplicate pairs across train and "
                                        "test", kind="warn"))
            closest = run.audit.sort_values("distance").head(50)
            self.add(T.to_table(closest, [T.text(c, c) for c in closest.columns],
                                caption="Closest pairs"))


def ranking_cols(r: pd.DataFrame, sd: str = "sd") -> list[T.Col]:
    """Columns of a ranking table; ``seeds`` only where configurations differ in it."""
    cols = [T.text("Embedder", "embedder"), T.text("Detector", "detector"),
            T.col("ROC-AUC", "auc", better="max"),
            T.Col("95% CI", lambda x: T.ci(x["auc_lo"], x["auc_hi"])),
            T.col(sd, "auc_sd")]
    if r["seeds"].nunique() > 1:
        cols.append(T.col("seeds", "seeds", T.num))
    if (r["n_train_neg"].fillna(0) > 0).any():  # binary baselines beside one-class detectors
        cols.insert(2, T.col("train neg.", "n_train_neg", T.num))
    cols += [
             T.col("AP", "ap", better="max"), T.col("TPR@FPR1%", "tpr_at_fpr1", better="max"),
             T.col("TPR@FPR5%", "tpr_at_fpr5", better="max"),
             T.col("FPR@TPR95%", "fpr_at_tpr95", better="min"),
             T.col("fit s", "fit_s", T.secs, "min"), T.col("score s", "score_s", T.secs, "min")]
    for c in r.columns:
        if c.startswith("auc:"):
            cols.append(T.col(f"AUC {c[4:]}", c, better="max"))
    return cols


def _flat(d: object) -> str:
    if isinstance(d, dict):
        return ", ".join(f"{k} {_flat(v)}" for k, v in d.items()) or "–"
    if isinstance(d, list | tuple):
        return ", ".join(_flat(v) for v in d)
    return "–" if d is None else str(d)


def build(runs: list[Run], **kw) -> list[Block]:
    """The blocks of a report of ``runs`` (one run, or a comparison of several)."""
    return Builder(runs, **kw).build()

