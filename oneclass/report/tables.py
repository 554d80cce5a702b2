"""Numbers of the report: rankings with CIs, curves' tables, run comparison, failures, audit.

Every function returns a pandas DataFrame of numbers; :func:`to_table` turns one into a formatted
:class:`~oneclass.report.blocks.Table` with the best value of each metric column marked.

Aggregation over seeds (stated in the report too): a configuration's ROC-AUC is the mean of its
per-seed AUCs; its 95% CI is the mean of the per-seed bootstrap bounds (``auc_lo``, ``auc_hi``
written by the harness), i.e. the test-set uncertainty of one split, conservative for the mean;
``sd`` is the standard deviation of the AUC over seeds (the split-to-split spread).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from oneclass.bench.results import CELL_COUNTS
from oneclass.metrics import METRIC_KEYS
from oneclass.report.blocks import Table
from oneclass.report.runs import CONFIG_KEYS, ROW_KEYS, Run, value_sort_key

#: numeric columns of a results row averaged over seeds: the metrics, then timings and counts
METRICS = [*METRIC_KEYS, *CELL_COUNTS]
CFG = ["embedder", "detector"]


# -- formatting ---------------------------------------------------------------------------------
def f3(x: float) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.3f}"


def secs(x: float) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    return f"{x:.3f}" if x < 0.1 else f"{x:.2f}" if x < 10 else f"{x:,.0f}"


def num(x: float) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"


def ci(lo: float, hi: float) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "–"
    return f"[{lo:.3f}, {hi:.3f}]"


def auc_ci(auc: float, lo: float, hi: float) -> str:
    c = ci(lo, hi)
    return f3(auc) if c == "–" else f"{f3(auc)} {c}"


@dataclass
class Col:
    """One displayed column: header, how to format a row, and which direction is best (if any)."""

    header: str
    fmt: Callable[[pd.Series], str]
    key: str = ""
    better: str = ""  # "max", "min" or ""
    numeric: bool = True
    mark: Callable[[pd.Series], bool] | None = None  # bold where true (e.g. a warning)


def col(header: str, key: str, fmt: Callable[[float], str] = f3, better: str = "") -> Col:
    """Returns a numeric column showing ``fmt(row[key])``."""

    def show(r: pd.Series) -> str:
        return fmt(r[key])

    return Col(header, show, key, better)


def text(header: str, key: str) -> Col:
    """Returns a text column showing ``row[key]``."""

    def show(r: pd.Series) -> str:
        return str(r[key])

    return Col(header, show, key, "", numeric=False)


def to_table(
    df: pd.DataFrame, cols: list[Col], caption: str = "", note: str = "", kind: str = ""
) -> Table:
    """Format ``df`` row by row; in columns with a direction, the best values are bold."""
    rows = [[c.fmt(r) for c in cols] for _, r in df.iterrows()]
    bold = [[bool(c.mark and c.mark(r)) for c in cols] for _, r in df.iterrows()]
    if len(df) > 1:
        for j, c in enumerate(cols):
            if not c.better:
                continue
            v = pd.to_numeric(df[c.key], errors="coerce").to_numpy(dtype=float)
            if not np.isfinite(v).any():
                continue
            best = np.nanmax(v) if c.better == "max" else np.nanmin(v)
            # equal as displayed: values that round to the same text are all marked
            for i in np.flatnonzero(np.isclose(v, best, rtol=0, atol=5e-4)):
                bold[i][j] = True
    return Table(
        [c.header for c in cols], rows, bold, [c.numeric for c in cols], caption, note, kind
    )


# -- aggregation --------------------------------------------------------------------------------
def over_seeds(df: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of each configuration x family (plus ``auc_sd`` and ``seeds``)."""
    keys = CONFIG_KEYS + ["family"]
    if df.empty:
        return pd.DataFrame(columns=keys + METRICS + ["auc_sd", "seeds"])
    g = df.groupby(keys, sort=False)
    out = g[METRICS].mean()
    out["auc_sd"] = g["auc"].std(ddof=1)
    out["seeds"] = g["seed"].nunique()
    return out.reset_index()


def settings(run: Run, suite: str) -> list[str]:
    """The settings a suite was run with, ``main`` first."""
    s = run.ok.loc[run.ok["suite"] == suite, "setting"].unique().tolist()
    order = ["main", "per-target", "wild", "fewshot", "label-efficiency"]
    return sorted(s, key=lambda x: (order.index(x) if x in order else len(order), x))


def suites(run: Run) -> list[str]:
    return list(dict.fromkeys(run.results["suite"]))


def ranking(run: Run, suite: str, setting: str = "main") -> pd.DataFrame:
    """Configurations of a suite, best ROC-AUC first; ``AUC vs <family>`` columns per family."""
    sub = run.ok[(run.ok["suite"] == suite) & (run.ok["setting"] == setting)]
    agg = over_seeds(sub)
    keys = CONFIG_KEYS
    main = agg[agg["family"] == "all"].drop(columns="family")
    fam = agg[agg["family"] != "all"]
    if fam["family"].nunique() > 1:  # one family alone is the same as all negatives
        wide = fam.pivot_table(index=keys, columns="family", values="auc", sort=False)
        wide.columns = [f"auc:{c}" for c in wide.columns]
        main = main.merge(wide.reset_index(), on=keys, how="left")
    return main.sort_values("auc", ascending=False, kind="stable").reset_index(drop=True)


def ranking_per_target(run: Run, suite: str, setting: str = "per-target") -> pd.DataFrame:
    """Returns, for a setting whose values are targets, each target's seed mean, then the mean
    and the worst over targets."""
    r = ranking(run, suite, setting)
    if r.empty:
        return r
    g = r.groupby(CFG, sort=False)
    fam_cols = [c for c in r.columns if c.startswith("auc:")]
    out = g[
        [
            "auc",
            "auc_lo",
            "auc_hi",
            "ap",
            "tpr_at_fpr1",
            "tpr_at_fpr5",
            "fpr_at_tpr95",
            "fit_s",
            "score_s",
            "n_train_neg",
            *fam_cols,
        ]
    ].mean()
    out["targets"] = g["setting_value"].nunique()
    out["seeds"] = g["seeds"].max()
    out["auc_sd"] = g["auc"].std(ddof=1)  # spread over targets
    worst = r.loc[g["auc"].idxmin()].set_index(CFG)
    out["worst"] = worst["auc"]
    out["worst_target"] = worst["setting_value"]
    out = out.reset_index()
    return out.sort_values("auc", ascending=False, kind="stable").reset_index(drop=True)


def reference(run: Run, suite: str) -> pd.DataFrame:
    """Returns the full-training-set result of each configuration, for curves to compare with:
    the ``main`` ranking, else the mean over targets of ``per-target``."""
    main = ranking(run, suite, "main")
    if main.empty:
        main = ranking_per_target(run, suite)
    return main


def curve_frame(run: Run, suite: str, setting: str) -> pd.DataFrame:
    """Rows of one setting (family ``all``, seed means) with ``x``: the numeric setting value,
    else the training set's count (labelled negatives for label-efficiency, else images)."""
    r = ranking(run, suite, setting)
    if r.empty:
        return r
    r = r.copy()
    count = "n_train_neg" if setting == "label-efficiency" else "n_train"
    r["x"] = pd.to_numeric(r["setting_value"], errors="coerce").fillna(r[count])
    return r


def pivot(run: Run, suite: str, setting: str) -> pd.DataFrame:
    """Mean AUC over seeds: one row per configuration, one column per setting value."""
    r = ranking(run, suite, setting)
    if r.empty:
        return r
    values = sorted(r["setting_value"].unique(), key=value_sort_key)
    wide = r.pivot_table(index=CFG, columns="setting_value", values="auc", sort=False)
    wide = wide.reindex(columns=values)
    wide["mean"] = wide.mean(axis=1)
    return wide.sort_values("mean", ascending=False).reset_index()


def best_config(run: Run, suite: str) -> tuple[str, pd.Series] | None:
    """(setting, row) of the best configuration of a suite: ``main`` if run, else per-target."""
    for setting in settings(run, suite):
        r = (
            ranking_per_target(run, suite)
            if setting == "per-target"
            else ranking(run, suite, setting)
        )
        if setting in ("main", "per-target") and not r.empty:
            return setting, r.iloc[0]
    return None


# -- comparison of runs -------------------------------------------------------------------------
def compare(runs: list[Run]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cells of several runs (family ``all``) matched on suite/embedder/detector/seed/setting/value.

    Returns ``(shared, only)``. ``shared``: configurations whose cells finished in every run,
    averaged over the seeds all runs share: per run ``auc:<i>``, ``lo:<i>``, ``hi:<i>``, and for
    each later run ``delta:<i>`` (its AUC minus run 0's) and ``overlap:<i>`` (the CIs overlap).
    ``only``: cells that did not finish in every run (in suites several runs have), grouped by
    suite/setting/embedder/detector with their values, seeds and each run's status (``ok``,
    ``failed``, ``absent``; with counts where they differ between cells).
    """
    keys = [k for k in ROW_KEYS if k != "family"]
    per = []
    for i, run in enumerate(runs):
        r = run.results.assign(ok=run.results.index.isin(run.ok.index), run=i)
        per.append(r[r["family"] == "all"])
    allr = pd.concat(per, ignore_index=True)
    n = len(runs)
    okc = allr[allr["ok"]].groupby(keys)["run"].nunique()
    shared_keys = okc[okc == n].index
    idx = allr.set_index(keys).index
    in_shared = idx.isin(shared_keys)
    sh = allr[in_shared & allr["ok"]]
    rows = []
    for cfg, g in sh.groupby(CONFIG_KEYS, sort=False):
        row = dict(zip(CONFIG_KEYS, cfg, strict=True))
        row["seeds"] = g["seed"].nunique()
        for i in range(n):
            gi = g[g["run"] == i]
            row[f"auc:{i}"] = gi["auc"].mean()
            row[f"lo:{i}"] = gi["auc_lo"].mean()
            row[f"hi:{i}"] = gi["auc_hi"].mean()
        for i in range(1, n):
            row[f"delta:{i}"] = row[f"auc:{i}"] - row["auc:0"]
            lo, hi = max(row["lo:0"], row[f"lo:{i}"]), min(row["hi:0"], row[f"hi:{i}"])
            ok = np.isfinite(lo) and np.isfinite(hi)
            row[f"overlap:{i}"] = (lo <= hi) if ok else None
        rows.append(row)
    shared = pd.DataFrame(rows)
    if not shared.empty:
        order = shared[[f"delta:{i}" for i in range(1, n)]].abs().max(axis=1) if n > 1 else 0
        shared = shared.assign(_o=order).sort_values(
            ["suite", "setting", "_o"], ascending=[True, True, False]
        )
        shared = shared.drop(columns="_o").reset_index(drop=True)
    # cells not finished in every run, in suites that more than one run has
    multi = allr.groupby("suite")["run"].nunique()
    rest = allr[~in_shared & allr["suite"].isin(multi[multi > 1].index)]
    status = {}
    for key, g in rest.groupby(keys, sort=False):
        for i in range(n):
            gi = g[g["run"] == i]
            status[tuple([*key, i])] = (
                "absent" if gi.empty else "ok" if gi["ok"].any() else str(gi["status"].iloc[0])
            )
    only_rows = []
    per_cfg = ["suite", "setting", "embedder", "detector"]
    cells = rest.drop_duplicates(keys)
    for cfg, g in cells.groupby(per_cfg, sort=False):
        row = dict(zip(per_cfg, cfg, strict=True))
        row["values"] = ", ".join(sorted(set(g["setting_value"]) - {""}, key=value_sort_key))
        row["seeds"] = ", ".join(str(int(x)) for x in sorted(g["seed"].unique()))
        row["cells"] = len(g)
        for i, run in enumerate(runs):
            st = [status[tuple([*k, i])] for k in g[keys].itertuples(index=False, name=None)]
            row[run.name] = ", ".join(
                f"{v} {st.count(v)}" if len(set(st)) > 1 else v for v in dict.fromkeys(st)
            )
        only_rows.append(row)
    return shared, pd.DataFrame(only_rows)


# -- failures, no-face, audit, cell errors ------------------------------------------------------
def failure_counts(run: Run) -> pd.DataFrame:
    f = run.failures
    if f.empty:
        return pd.DataFrame(columns=["suite", "embedder", "stage", "reason", "n"])
    f = f.fillna("").astype(str).assign(reason=lambda d: d["reason"].str.slice(0, 120))
    out = f.groupby(["suite", "embedder", "stage", "reason"]).size().rename("n").reset_index()
    return out.sort_values("n", ascending=False).reset_index(drop=True)


def no_face(run: Run) -> pd.DataFrame:
    """Images without a usable face per suite x embedder (cells' ``n_no_face``, family all)."""
    r = run.results[(run.results["family"] == "all") & run.results["n_no_face"].notna()]
    if r.empty:
        return pd.DataFrame(columns=["suite", "embedder", "cells", "with", "max", "total"])
    g = r.groupby(["suite", "embedder"], sort=False)["n_no_face"]
    out = pd.DataFrame(
        {
            "cells": g.size(),
            "with": g.apply(lambda s: int((s > 0).sum())),
            "max": g.max(),
            "total": g.sum(),
        }
    ).reset_index()
    return out[out["total"] > 0].reset_index(drop=True)


def score_status(scores: pd.DataFrame) -> pd.DataFrame:
    """Counts of each score status by label (``no_face`` and the like)."""
    s = scores.assign(label=scores["label"].map({1: "positive", 0: "negative"}).fillna("?"))
    return s.groupby(["status", "label"]).size().unstack(fill_value=0)


def audit_summary(run: Run) -> pd.DataFrame:
    a = run.audit
    if a.empty:
        return pd.DataFrame(columns=["suite", "seed", "pairs", "test_items", "min_distance"])
    g = a.groupby(["suite", "seed"], sort=False)
    return pd.DataFrame(
        {
            "pairs": g.size(),
            "test_items": g["test_id"].nunique(),
            "min_distance": g["distance"].min(),
        }
    ).reset_index()


def cell_errors(run: Run) -> pd.DataFrame:
    r = run.results[~run.results.index.isin(run.ok.index) & (run.results["family"] == "all")]
    return r[
        ["suite", "embedder", "detector", "seed", "setting", "setting_value", "status", "error"]
    ].reset_index(drop=True)


def protocol_numbers(run: Run, suite: str) -> dict[str, str]:
    """Seeds, split kinds and the sizes of the sets of a suite's main (or first) setting."""
    r = run.ok[(run.ok["suite"] == suite) & (run.ok["family"] == "all")]
    if r.empty:
        return {}
    st = settings(run, suite)
    m = r[r["setting"] == st[0]] if st else r

    def rng(c: str) -> str:
        v = m[c].dropna()
        if v.empty:
            return "–"
        lo, hi = v.min(), v.max()
        return num(lo) if lo == hi else f"{num(lo)}–{num(hi)}"

    splits = sorted(s for s in r["split"].unique() if s)
    return {
        "settings": ", ".join(st),
        "seeds": ", ".join(str(int(s)) for s in sorted(r["seed"].dropna().unique())),
        "split": ", ".join(splits) or "not recorded",
        f"sizes ({st[0]})": f"train {rng('n_train')} (labelled negatives {rng('n_train_neg')}), "
        f"test positives {rng('n_pos')}, test negatives {rng('n_neg')}",
        "configurations": str(r.groupby(CFG).ngroups),
    }
