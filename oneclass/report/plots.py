"""The report's figures, drawn with matplotlib's Agg canvas (no pyplot, no global backend change).

Each function returns PNG bytes. Inputs are plain DataFrames from :mod:`oneclass.report.tables` or
score tables (SCORE_COLUMNS); scores follow the one convention: higher = more in-class.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterable

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from oneclass.bench.results import comparable_scores
from oneclass.report.runs import value_sort_key

DPI = 110
POS = "#1f6fb2"
NEG = "#d9480f"
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e5e5e5",
    "grid.linewidth": 0.6,
    "axes.edgecolor": "#888888",
}


def _styled(fn: Callable[..., bytes]) -> Callable[..., bytes]:
    """Draw inside the report's rc style, without touching the caller's global settings."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> bytes:
        with matplotlib.rc_context(STYLE):  # type: ignore[arg-type]
            return fn(*args, **kwargs)

    return wrapper


def _figure(w: float, h: float) -> Figure:
    fig = Figure(figsize=(w, h), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _style(ax) -> None:
    ax.set_axisbelow(True)


def colours(names: Iterable[str]) -> dict[str, str]:
    """A stable colour per name (detectors keep their colour across figures)."""
    names = sorted(set(names))
    cmap = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {n: matplotlib.colors.to_hex(cmap(i % cmap.N)) for i, n in enumerate(names)}


def _usable(scores: pd.DataFrame) -> pd.DataFrame:
    """Scored images only (finite scores, labels 0/1)."""
    return scores[np.isfinite(scores["score"]) & scores["label"].isin([0, 1])]


def ranked(scores: pd.DataFrame) -> pd.DataFrame:
    """Images as the metrics rank them: no-face images (score -inf) below every scored image
    (lowest finite score - 1, as the harness evaluates them); failed images (NaN) left out."""
    s = scores[scores["label"].isin([0, 1]) & scores["score"].notna()].copy()
    s["score"] = comparable_scores(s["score"].to_numpy())
    return s


@_styled
def roc(curves: list[tuple[str, pd.DataFrame]], title: str = "") -> bytes:
    """ROC curves of several configurations: linear axes, and FPR on a log axis (low-FPR regime)."""
    fig = _figure(10, 4.2)
    ax1, ax2 = fig.subplots(1, 2)
    fpr_min = 1.0
    for label, sc in curves:
        s = ranked(sc)
        if s["label"].nunique() < 2:
            continue
        fpr, tpr, _ = roc_curve(s["label"].to_numpy(), s["score"].to_numpy())
        fpr_min = min(fpr_min, 1.0 / max(1, int((s["label"] == 0).sum())))
        line = ax1.plot(fpr, tpr, lw=1.6, label=label)[0]
        ax2.plot(np.maximum(fpr, fpr_min / 2), tpr, lw=1.6, color=line.get_color())
    ax1.plot([0, 1], [0, 1], ls=":", color="#999999", lw=1)
    ax1.set(
        xlabel="false positive rate",
        ylabel="true positive rate",
        xlim=(0, 1),
        ylim=(0, 1.01),
        title="ROC",
    )
    ax2.set_xscale("log")
    ax2.set(
        xlabel="false positive rate (log)",
        ylabel="true positive rate",
        ylim=(0, 1.01),
        xlim=(fpr_min / 2, 1),
        title="ROC, low false-positive rates",
    )
    for x in (0.01, 0.05):
        ax2.axvline(x, color="#bbbbbb", lw=0.8, ls="--")
    for ax in (ax1, ax2):
        _style(ax)
    ax1.legend(loc="lower right", frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return _png(fig)


@_styled
def histograms(panels: list[tuple[str, pd.DataFrame]], max_families: int = 6) -> bytes:
    """Score histograms: positives (filled) vs each negative family (outlines), per panel."""
    n = len(panels)
    fig = _figure(min(4.0 * n, 12), 3.2)
    axes = np.atleast_1d(fig.subplots(1, n))
    for ax, (label, sc) in zip(axes, panels, strict=True):
        s = _usable(sc)
        if s.empty:
            continue
        bins = np.histogram_bin_edges(s["score"], bins=40)
        pos = s.loc[s["label"] == 1, "score"]
        ax.hist(
            pos, bins=bins, density=True, color=POS, alpha=0.45, label=f"positives ({len(pos)})"
        )
        neg = s[s["label"] == 0]
        fams = neg["family"].replace("", "negatives").value_counts()
        if len(fams) > max_families:
            keep = set(fams.index[: max_families - 1])
            neg = neg.assign(family=neg["family"].where(neg["family"].isin(keep), "other"))
            fams = neg["family"].value_counts()
        cols = colours(fams.index) if len(fams) > 1 else {fams.index[0]: NEG} if len(fams) else {}
        for fam, k in fams.items():
            v = neg.loc[neg["family"].replace("", "negatives") == fam, "score"]
            ax.hist(
                v,
                bins=bins,
                density=True,
                histtype="step",
                lw=1.5,
                color=cols[fam],
                label=f"{fam} ({k})",
            )
        ax.set(title=label, xlabel="score (higher = more in-class)", ylabel="density")
        _style(ax)
        ax.legend(frameon=False, fontsize=7)
    return _png(fig)


@_styled
def curves(
    df: pd.DataFrame,
    xlabel: str,
    flat: pd.DataFrame | None = None,
    logx: bool = False,
    palette: dict[str, str] | None = None,
) -> bytes:
    """AUC against a numeric setting value, one panel per embedder, one line per detector.

    ``df`` has embedder, detector, x, auc, auc_lo, auc_hi (the band is the mean bootstrap CI).
    ``flat`` (embedder, detector, auc): references drawn as horizontal dashed lines, e.g. one-class
    detectors beside binary ones that are given more and more labelled negatives.
    ``palette``: detector -> colour, to keep a detector's colour across figures.
    """
    df = df[np.isfinite(df["x"])]
    flat = flat if flat is not None else pd.DataFrame(columns=["embedder", "detector", "auc"])
    embs = sorted(set(df["embedder"]) | set(flat["embedder"]))
    col = colours(list(df["detector"]) + list(flat["detector"]))
    col.update(palette or {})
    n = max(1, len(embs))
    ncol = min(n, 3)
    nrow = int(np.ceil(n / ncol))
    fig = _figure(min(4.3 * ncol, 13), 3.3 * nrow)
    axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
    for ax, emb in zip(axes, embs, strict=False):
        d = df[df["embedder"] == emb]
        for det, g in d.groupby("detector", sort=True):
            g = g.sort_values("x")
            ax.plot(g["x"], g["auc"], marker="o", ms=3.5, lw=1.5, color=col[det], label=det)
            if np.isfinite(g["auc_lo"]).all() and np.isfinite(g["auc_hi"]).all():
                ax.fill_between(g["x"], g["auc_lo"], g["auc_hi"], color=col[det], alpha=0.10, lw=0)
        for _, r in flat[flat["embedder"] == emb].iterrows():
            ax.axhline(
                r["auc"],
                color=col[r["detector"]],
                ls="--",
                lw=1.2,
                label=f"{r['detector']} (one-class)",
            )
        if logx and (d["x"] > 0).all() and not d.empty:
            ax.set_xscale("log")
        ax.set(title=emb, xlabel=xlabel, ylabel="ROC-AUC")
        _style(ax)
        ax.legend(frameon=False, fontsize=7, loc="best")
    for ax in axes[len(embs) :]:
        ax.set_visible(False)
    return _png(fig)


@_styled
def per_target(df: pd.DataFrame, configs: list[str], max_labels: int = 40) -> bytes:
    """Per-target AUC (``df``: target, config, auc) of a few configurations.

    Up to 12 targets (e.g. the CIFAR-10 classes): grouped bars. More (e.g. LFW people): a sorted
    dot plot of the ``max_labels`` hardest targets of the first configuration, with each
    configuration's mean as a vertical line.
    """
    targets = sorted(df["target"].unique(), key=value_sort_key)
    col = dict(zip(configs, ["#1f6fb2", "#d9480f", "#2b8a3e", "#7048e8", "#868e96"], strict=False))
    if len(targets) <= 12:
        fig = _figure(10, 3.6)
        ax = fig.subplots()
        w = 0.8 / max(1, len(configs))
        x = np.arange(len(targets))
        for k, c in enumerate(configs):
            v = df[df["config"] == c].set_index("target")["auc"].reindex(targets)
            ax.bar(x + (k - (len(configs) - 1) / 2) * w, v, width=w, color=col.get(c), label=c)
        ax.set_xticks(x, targets, rotation=0 if len(targets) <= 10 else 30)
        lo = np.nanmin(df["auc"]) if len(df) else 0.5
        ax.set(ylabel="ROC-AUC", ylim=(max(0.0, min(0.5, lo - 0.05)), 1.0))
        ax.axhline(0.5, color="#999999", ls=":", lw=1)
        _style(ax)
        fig.legend(loc="outside upper center", ncols=min(4, len(configs)), frameon=False)
        return _png(fig)
    first = df[df["config"] == configs[0]].sort_values("auc")
    shown = first.head(max_labels)
    fig = _figure(9, 1.3 + 0.17 * len(shown))
    ax = fig.subplots()
    y = np.arange(len(shown))
    for c in configs:
        v = df[df["config"] == c].set_index("target")["auc"]
        ax.plot(v.reindex(shown["target"]), y, "o", ms=4, color=col.get(c), label=c)
        ax.axvline(v.mean(), color=col.get(c), lw=1, ls="--")
    ax.set_yticks(y, shown["target"].str.replace("_", " "), fontsize=7)
    ax.invert_yaxis()
    title = (
        f"{len(shown)} lowest of {len(first)} targets"
        if len(first) > len(shown)
        else f"all {len(first)} targets"
    )
    ax.set(xlabel="ROC-AUC (dashed: mean over all targets)", title=title)
    _style(ax)
    fig.legend(loc="outside upper center", ncols=min(4, len(configs)), frameon=False)
    return _png(fig)
