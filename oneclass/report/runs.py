"""Load run folders (the format of :mod:`oneclass.bench.results`) for the reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oneclass.bench.results import (
    AUDIT_COLUMNS,
    FAILURE_COLUMNS,
    NUMERIC_COLUMNS,
    RESULT_COLUMNS,
    SCORE_COLUMNS,
    RunDir,
)

#: what identifies a configuration (a cell without its seed)
CONFIG_KEYS = ["suite", "setting", "setting_value", "embedder", "detector"]
#: what identifies one result row (a cell x family)
ROW_KEYS = ["suite", "embedder", "detector", "seed", "setting", "setting_value", "target", "family"]


class RunFormatError(ValueError):
    """A run folder that cannot be read as a benchmark run."""


@dataclass
class Run:
    """One run folder, read once: run.json, results, failures, audit; scores on demand."""

    name: str
    path: Path
    info: dict[str, Any]
    results: pd.DataFrame
    failures: pd.DataFrame
    audit: pd.DataFrame
    _scores: dict[str, pd.DataFrame | None] = field(default_factory=dict, repr=False)

    def maps(self, cell: str) -> dict[str, np.ndarray] | None:
        """Returns the per-patch scores a patch embedder's cell kept for its gallery images
        (``{"map<row>": (rows, cols)}``, rows of its scores table), or ``None``."""
        f = self.path / "maps" / f"{cell}.npz"
        if not f.is_file():
            return None
        try:
            with np.load(f, allow_pickle=False) as z:
                return {
                    k: np.asarray(z[k], dtype=np.float32)
                    for k in z.files
                    if k.startswith("map") and z[k].ndim == 2 and z[k].size <= 1 << 16
                }
        except (OSError, ValueError) as exc:
            raise RunFormatError(f"{f}: not a readable maps file ({exc})") from exc

    def scores(self, cell: str) -> pd.DataFrame | None:
        """The per-image scores of ``cell`` (SCORE_COLUMNS), or ``None`` if not written."""
        if cell not in self._scores:
            f = self.path / "scores" / f"{cell}.csv"
            if not f.exists():
                self._scores[cell] = None
            else:
                df = pd.read_csv(f, keep_default_na=False, na_values=[""])
                missing = {"label", "score"} - set(df.columns)
                if missing:
                    raise RunFormatError(f"{f}: missing score column(s) {sorted(missing)}")
                df = df.reindex(columns=SCORE_COLUMNS)
                df["score"] = pd.to_numeric(df["score"], errors="coerce")
                df["label"] = pd.to_numeric(df["label"], errors="coerce")
                df["family"] = df["family"].fillna("").astype(str)
                df["status"] = df["status"].fillna("ok").astype(str)
                for c in ("item_id", "uri"):  # undo the CSV's formula neutralisation
                    df[c] = df[c].fillna("").astype(str).map(_unquote)
                self._scores[cell] = df
        return self._scores[cell]

    @cached_property
    def ok(self) -> pd.DataFrame:
        """Result rows of cells that finished (status ``ok`` or empty) with a finite AUC."""
        r = self.results
        good = r["status"].isin(["ok", ""]) & np.isfinite(r["auc"])
        return r[good]


def _unquote(v: str) -> str:
    """Returns a CSV cell without the ``'`` that :func:`oneclass.outputs.csv_safe_cell` put
    before a leading ``= + - @``."""
    return v[1:] if len(v) > 1 and v[0] == "'" and v[1] in "=+-@\t\r" else v


def _normalise_results(df: pd.DataFrame, where: Path) -> pd.DataFrame:
    df = df.reindex(columns=RESULT_COLUMNS).copy()
    num = NUMERIC_COLUMNS
    for c in num:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    for c in [
        "cell",
        "suite",
        "embedder",
        "detector",
        "setting",
        "setting_value",
        "target",
        "family",
        "split",
        "status",
        "error",
    ]:
        df[c] = df[c].fillna("").astype(str)
    df["status"] = df["status"].replace("", "ok")
    df["family"] = df["family"].replace("", "all")
    df["setting"] = df["setting"].replace("", "main")
    # "5.0" and "5" are the same value once a CSV round-trip has turned ints into floats
    df["setting_value"] = df["setting_value"].map(_clean_value)
    if df["suite"].eq("").any():
        raise RunFormatError(f"{where}: result rows without a suite")
    return df


def _clean_value(v: str) -> str:
    if v.lower() in ("nan", "none"):
        return ""
    try:
        f = float(v)
    except ValueError:
        return v
    return str(int(f)) if f.is_integer() else v


def load_run(path: str | Path, name: str | None = None) -> Run:
    """Read one run folder; raises :class:`RunFormatError` if it is not one."""
    p = Path(path)
    if not p.is_dir():
        raise RunFormatError(f"{p}: not a run folder (no such directory)")
    rd = RunDir(p)
    has_results = (p / "results.csv").exists()
    if not has_results and not (p / "cells").is_dir():
        raise RunFormatError(f"{p}: not a run folder (neither results.csv nor cells/)")
    try:
        info = rd.run_info()
    except ValueError as e:
        raise RunFormatError(f"{p / 'run.json'}: not valid JSON ({e})") from e
    if has_results:
        results = pd.read_csv(p / "results.csv", keep_default_na=False, na_values=[""])
    else:  # a run still going: read the finished cells without writing into the folder
        rows = [r for c in rd.cells() for r in c.get("rows", [])]
        results = pd.DataFrame(rows)
    return Run(
        name=name or p.name,
        path=p,
        info=info if isinstance(info, dict) else {"run.json": info},
        results=_normalise_results(results, p),
        failures=rd.failures().reindex(columns=FAILURE_COLUMNS),
        audit=rd.audit().reindex(columns=AUDIT_COLUMNS),
    )


def load_runs(paths: list[str | Path]) -> list[Run]:
    """Read several run folders; their names are the folder names, made unique if needed."""
    if not paths:
        raise ValueError("write_report needs at least one run folder")
    ps = [Path(p) for p in paths]
    names = [p.name for p in ps]
    if len(set(names)) < len(names):
        names = [f"{p.parent.name}/{p.name}" for p in ps]
    if len(set(names)) < len(names):
        names = [f"{n} #{i + 1}" for i, n in enumerate(names)]
    return [load_run(p, n) for p, n in zip(ps, names, strict=True)]


def config_label(embedder: str, detector: str) -> str:
    """How a configuration is written in tables and legends."""
    return f"{embedder} / {detector}"


def value_sort_key(v: str) -> tuple[int, float, str]:
    """Numbers in numeric order first, then text."""
    try:
        return (0, float(v), "")
    except ValueError:
        return (1, 0.0, v)
