"""The blocks of one suite of a run, setting by setting, as its protocol declares them
(:func:`oneclass.bench.protocols.views_for`): ranking tables with ROC curves, histograms and
galleries; per-target tables; curves against the number of positives or labelled negatives. A
setting no protocol declares is shown as a ranking, never dropped."""

from __future__ import annotations

import numpy as np
import pandas as pd

from oneclass.bench.protocols import View, views_for
from oneclass.report import gallery, plots
from oneclass.report import tables as T
from oneclass.report.blocks import Block, Figure, Gallery, Heading, Para
from oneclass.report.runs import Run, config_label, value_sort_key

CI_NOTE = (
    "ROC-AUC is the mean over seeds; its 95% CI is the mean over seeds of each seed's "
    "bootstrap interval (the test-set uncertainty of one split, conservative for the mean); "
    "sd is the spread of the AUC over seeds. Bold: best in its column. Times are seconds "
    "per cell (fit on the training set, score the test set). 'train neg.': labelled "
    "negatives a binary baseline was trained with (0 = one-class)."
)


def slug(*parts: str) -> str:
    """Returns an HTML anchor made of ``parts``."""
    s = "-".join(str(p) for p in parts if p != "").lower()
    return "".join(c if c.isalnum() else "-" for c in s).strip("-")


def suite_protocol(run: Run, suite: str) -> str | None:
    """Returns the protocol a run recorded for ``suite`` (``None``: not recorded)."""
    per = run.info.get("protocols")
    if isinstance(per, dict) and suite in per:
        return str(per[suite])
    proto = run.info.get("protocol")
    return str(proto) if proto else None


class SuiteSections:
    """The per-suite part of :class:`oneclass.report.document.Builder` (a mixin)."""

    runs: list[Run]
    top_k: int
    gallery_k: int
    thumb_px: int
    palette: dict[str, str]

    def add(self, *blocks: Block) -> None:
        raise NotImplementedError

    def suite_section(self, run: Run, suite: str) -> None:
        """Add the blocks of one suite: one section per setting, as its protocol declares."""
        self.add(Heading(3, f"Suite {suite}", slug(run.name, suite)))
        sets = T.settings(run, suite)
        if not sets:
            self.add(Para("No finished cell in this suite.", "warn"))
        for view in views_for(suite_protocol(run, suite), sets):
            self.view_section(run, suite, view)

    def view_section(self, run: Run, suite: str, view: View) -> None:
        """Add the blocks of one setting in the way ``view`` says."""
        if view.kind == "per-target":
            self.per_target(run, suite, view.setting, view.title or "Per target")
        elif view.kind == "curve":
            self.curve_block(
                run,
                suite,
                view.setting,
                view.title or f"Setting {view.setting}",
                view.xlabel or "setting value",
            )
        else:
            if view.setting != "main":
                self.add(
                    Heading(
                        4,
                        view.title or f"Setting {view.setting}",
                        slug(run.name, suite, view.setting),
                    )
                )
            self.ranking_block(run, suite, view.setting)
            self.score_figures(run, suite, view.setting)

    def ranking_block(self, run: Run, suite: str, setting: str) -> None:
        """Add the ranking table of one setting."""
        r = T.ranking(run, suite, setting)
        multi_value = r["setting_value"].nunique() > 1
        r.insert(0, "rank", np.arange(1, len(r) + 1))
        cols = [T.col("#", "rank", T.num)]
        if multi_value:
            cols.append(T.text("Value", "setting_value"))
        cols += ranking_cols(r)
        n_seeds = int(r["seeds"].iloc[0]) if len(r) and r["seeds"].nunique() == 1 else 0
        seeds = f", {n_seeds} seed{'s' if n_seeds > 1 else ''} each" if n_seeds else ""
        self.add(
            T.to_table(
                r,
                cols,
                note=CI_NOTE,
                caption=f"Ranking, {suite} ({setting}): {len(r)} configurations{seeds}",
            )
        )

    def _cell_scores(
        self, run: Run, suite: str, setting: str, emb: str, det: str
    ) -> tuple[pd.DataFrame, int, str] | None:
        ok = run.ok
        m = ok[
            (ok["suite"] == suite)
            & (ok["setting"] == setting)
            & (ok["embedder"] == emb)
            & (ok["detector"] == det)
            & (ok["family"] == "all")
        ].sort_values("seed")
        for _, row in m.iterrows():
            s = run.scores(row["cell"])
            if s is not None:
                return s, int(row["seed"]), str(row["cell"])
        return None

    def score_figures(self, run: Run, suite: str, setting: str) -> None:
        """Add ROC curves and score histograms of the best configurations, and galleries."""
        r = T.ranking(run, suite, setting).head(self.top_k)
        got = []
        for _, row in r.iterrows():
            cs = self._cell_scores(run, suite, setting, row["embedder"], row["detector"])
            if cs is not None:
                got.append((row, *cs))
        if not got:
            self.add(Para("No per-image scores were written: no ROC curves or galleries.", "note"))
            return
        curves = [
            (f"{config_label(x['embedder'], x['detector'])} (seed {seed}, AUC {x['auc']:.3f})", s)
            for x, s, seed, _ in got
        ]
        self.add(
            Figure(
                slug(run.name, suite, setting, "roc"),
                plots.roc(curves),
                f"ROC curves of the {len(got)} best configurations ({suite}); one seed "
                "each. Right: the same curves with the false-positive rate on a log axis "
                "(dashed: 1% and 5%).",
            )
        )
        panels = [(config_label(x["embedder"], x["detector"]), s) for x, s, _, _ in got[:3]]
        self.add(
            Figure(
                slug(run.name, suite, setting, "hist"),
                plots.histograms(panels),
                "Score distributions: positives (filled) against each negative family "
                "(outlines), for the best configurations. Images without a face are not "
                "drawn.",
            )
        )
        best, scores, seed, cell = got[0]
        self.galleries(run, best, scores, seed, cell)

    def galleries(
        self, run: Run, best: pd.Series, scores: pd.DataFrame, seed: int, cell: str = ""
    ) -> None:
        """Add thumbnails of the worst false positives and negatives (with anomaly maps when
        the cell recorded per-patch scores)."""
        cfg = config_label(best["embedder"], best["detector"])
        fp, fn = gallery.worst(scores, self.gallery_k)
        cache = gallery.default_url_cache(run.info)
        maps = run.maps(cell) if cell else None
        no_face = int((scores["status"] == "no_face").sum())
        note = (
            f"{cfg}, seed {seed}. Caption: score, family, image. "
            + (
                f"{no_face} images without a face are not in these galleries (see the no-face "
                "counts)."
                if no_face
                else ""
            )
            + (" Heat: where the patches score least in-class (anomaly map)." if maps else "")
        )
        self.add(
            Gallery(
                f"Worst false positives: highest-scoring negatives ({cfg})",
                gallery.thumbs(fp, cache, self.thumb_px, maps=maps),
                note,
            )
        )
        self.add(
            Gallery(
                f"Worst false negatives: lowest-scoring positives ({cfg})",
                gallery.thumbs(fn, cache, self.thumb_px, maps=maps),
                note,
            )
        )

    def per_target(
        self, run: Run, suite: str, setting: str = "per-target", title: str = "Per target"
    ) -> None:
        """Add the mean and worst over targets, a per-target figure and table."""
        self.add(Heading(4, title, slug(run.name, suite, setting)))
        r = T.ranking_per_target(run, suite, setting)
        cols = ranking_cols(r, sd="sd (targets)")
        cols.insert(2, T.col("targets", "targets", T.num))
        cols.insert(
            5, T.Col("worst (target)", lambda x: f"{T.f3(x['worst'])} ({x['worst_target']})")
        )
        self.add(
            T.to_table(
                r,
                cols,
                caption=f"Mean over targets, {suite}: each target is the positive class in turn",
                note=CI_NOTE + " sd here: over targets.",
            )
        )
        per = T.ranking(run, suite, setting)
        top = [config_label(e, d) for e, d in r[["embedder", "detector"]].head(3).to_numpy()]
        df = per.assign(
            target=per["setting_value"],
            config=[config_label(e, d) for e, d in per[["embedder", "detector"]].to_numpy()],
        )
        n_t = df["target"].nunique()
        self.add(
            Figure(
                slug(run.name, suite, "per-target"),
                plots.per_target(df, top),
                f"Per-target ROC-AUC of the {len(top)} best configurations ({n_t} targets).",
            )
        )
        if n_t <= 12:
            pv = T.pivot(run, suite, setting)
            vals = sorted(per["setting_value"].unique(), key=value_sort_key)
            self.add(
                T.to_table(
                    pv,
                    [
                        T.text("Embedder", "embedder"),
                        T.text("Detector", "detector"),
                        *[T.col(v, v, better="max") for v in vals],
                        T.col("mean", "mean", better="max"),
                    ],
                    caption="ROC-AUC per target",
                )
            )
        else:
            b = df[df["config"] == top[0]].sort_values("auc").head(10)
            self.add(
                T.to_table(
                    b,
                    [
                        T.text("Target", "target"),
                        T.col("ROC-AUC", "auc"),
                        T.Col("95% CI", lambda x: T.ci(x["auc_lo"], x["auc_hi"])),
                        T.col("positives", "n_pos", T.num),
                        T.col("negatives", "n_neg", T.num),
                    ],
                    caption=f"The 10 hardest targets of {top[0]}",
                )
            )

    def curve_block(self, run: Run, suite: str, setting: str, title: str, xlabel: str) -> None:
        """Add AUC against the setting's numeric value (a figure and a table)."""
        self.add(Heading(4, title, slug(run.name, suite, setting)))
        df = T.curve_frame(run, suite, setting)
        flat = None
        caption = f"{title} ({suite}); band: mean bootstrap 95% CI."
        if setting == "label-efficiency":
            main = T.reference(run, suite)
            dets = set(df["detector"])
            flat = main[
                ~main["detector"].isin(dets)
                & main["embedder"].isin(set(df["embedder"]))
                & (main["n_train_neg"].fillna(0) == 0)
            ]
            if not flat.empty:
                caption += " Dashed: one-class detectors (no negatives), main setting."
        logx = setting == "fewshot" and df["x"].max() / max(df["x"].min(), 1) >= 8
        png = plots.curves(df, xlabel, flat, logx, self.palette)
        self.add(Figure(slug(run.name, suite, setting), png, caption))
        pv = T.pivot(run, suite, setting)
        vals = sorted(df["setting_value"].unique(), key=value_sort_key)
        cols = [
            T.text("Embedder", "embedder"),
            T.text("Detector", "detector"),
            *[T.col(v, v, better="max") for v in vals],
        ]
        main = T.reference(run, suite)
        if setting == "fewshot" and not main.empty:  # the full training set, for reference
            pv = pv.merge(
                main[["embedder", "detector", "auc"]].rename(columns={"auc": "_main"}),
                on=["embedder", "detector"],
                how="left",
            )
            cols.append(T.col("all (main)", "_main"))
        self.add(T.to_table(pv, cols, caption=f"ROC-AUC by {xlabel} (mean over seeds)"))

    # -- what went wrong ------------------------------------------------------------------------


def ranking_cols(r: pd.DataFrame, sd: str = "sd") -> list[T.Col]:
    """Returns the columns of a ranking table; ``seeds`` only where configurations differ in it."""
    cols = [
        T.text("Embedder", "embedder"),
        T.text("Detector", "detector"),
        T.col("ROC-AUC", "auc", better="max"),
        T.Col("95% CI", lambda x: T.ci(x["auc_lo"], x["auc_hi"])),
        T.col(sd, "auc_sd"),
    ]
    if r["seeds"].nunique() > 1:
        cols.append(T.col("seeds", "seeds", T.num))
    if (r["n_train_neg"].fillna(0) > 0).any():  # binary baselines beside one-class detectors
        cols.insert(2, T.col("train neg.", "n_train_neg", T.num))
    cols += [
        T.col("AP", "ap", better="max"),
        T.col("TPR@FPR1%", "tpr_at_fpr1", better="max"),
        T.col("TPR@FPR5%", "tpr_at_fpr5", better="max"),
        T.col("FPR@TPR95%", "fpr_at_tpr95", better="min"),
        T.col("fit s", "fit_s", T.secs, "min"),
        T.col("score s", "score_s", T.secs, "min"),
    ]
    for c in r.columns:
        if c.startswith("auc:"):
            cols.append(T.col(f"AUC {c[4:]}", c, better="max"))
    return cols
