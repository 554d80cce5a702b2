"""What a benchmark run writes, and how to read it back: the contract between harness and reports.

A run folder::

    run.json         config (the suite), versions, seeds, hardware, git revision, start/end, timings
    results.csv      one row per cell x negative family (RESULT_COLUMNS)
    cells/<id>.json  one file per finished cell (its rows, or its error): what makes a run resumable
    scores/<id>.csv  per test image of a cell (SCORE_COLUMNS): ROC curves, histograms, galleries
    failures.csv     images that could not be used (FAILURE_COLUMNS): never silently dropped
    audit.csv        leakage audit: near-duplicate pairs across train and test (AUDIT_COLUMNS)

A *cell* is one (suite, embedder, detector, seed, setting, setting_value). ``setting`` names the
protocol variant: ``"main"``; ``"fewshot"`` (value = number of training positives);
``"label-efficiency"`` (value = number of labelled negatives added); ``"per-target"`` (value = the
class or person that is the positive class, e.g. a CIFAR-10 class or an LFW person); ``"wild"``
(value = the test condition). ``family`` is ``"all"`` for all test negatives together, or one
negative family (``"trump"``, ``"lfw"``, ...). Scores follow the one convention of oneclass:
higher = more in-class; ``label`` 1 = in-class.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

RESULT_COLUMNS = [
    "cell", "suite", "embedder", "detector", "seed", "setting", "setting_value", "family",
    "auc", "auc_lo", "auc_hi", "ap", "tpr_at_fpr1", "tpr_at_fpr5", "fpr_at_tpr95",
    "n_pos", "n_neg", "n_train", "n_train_neg", "fit_s", "score_s", "embed_s",
    "n_failures", "n_no_face", "split", "status", "error",
]
SCORE_COLUMNS = ["item_id", "uri", "label", "family", "score", "n_faces", "status"]
FAILURE_COLUMNS = ["suite", "embedder", "item_id", "uri", "stage", "reason"]
AUDIT_COLUMNS = ["suite", "seed", "train_id", "test_id", "distance"]


def comparable_scores(scores: np.ndarray) -> np.ndarray:
    """Scores as the metrics rank them: a no-face image (``-inf``) sits below every scored image,
    at (lowest finite score - 1); NaN (failed) is left for the caller to drop."""
    scores = np.asarray(scores, dtype=np.float64)
    finite = scores[np.isfinite(scores)]
    low = (finite.min() - 1.0) if finite.size else 0.0
    return np.where(np.isneginf(scores), low, scores)


def cell_id(suite: str, embedder: str, detector: str, seed: int, setting: str,
            setting_value: Any) -> str:
    """A readable, file-safe, unique id of a cell."""
    key = f"{suite}|{embedder}|{detector}|{seed}|{setting}|{setting_value}"
    slug = re.sub(r"[^A-Za-z0-9._=-]+", "_", f"{suite}_{embedder}_{detector}_s{seed}_{setting}"
                  f"_{setting_value}")[:120]
    return f"{slug}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


class RunDir:
    """Read and write one run folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    # -- writing --------------------------------------------------------------------------------
    def create(self) -> RunDir:
        for sub in ("cells", "scores"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)
        return self

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        tmp = self.path / f".{name}.tmp"
        tmp.write_text(json.dumps(data, indent=2, default=str))
        tmp.replace(self.path / name)

    def finish_cell(self, cid: str, rows: list[dict[str, Any]],
                    scores: pd.DataFrame | None) -> None:
        """Record a finished (or failed) cell: its scores first, then its marker file."""
        if scores is not None:
            scores.reindex(columns=SCORE_COLUMNS).to_csv(self.path / "scores" / f"{cid}.csv",
                                                         index=False)
        tmp = self.path / "cells" / f".{cid}.tmp"
        tmp.write_text(json.dumps({"id": cid, "rows": rows}, default=str))
        tmp.replace(self.path / "cells" / f"{cid}.json")

    def append_csv(self, name: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
        if not rows:
            return
        f = self.path / name
        pd.DataFrame(rows).reindex(columns=columns).to_csv(f, mode="a", header=not f.exists(),
                                                           index=False)

    def consolidate(self) -> pd.DataFrame:
        """Rebuild ``results.csv`` from the finished cells (the cells are the source of truth)."""
        rows = [r for c in self.cells() for r in c["rows"]]
        df = pd.DataFrame(rows).reindex(columns=RESULT_COLUMNS)
        df.to_csv(self.path / "results.csv", index=False)
        return df

    # -- reading --------------------------------------------------------------------------------
    def cells(self) -> list[dict[str, Any]]:
        out = []
        for f in sorted((self.path / "cells").glob("*.json")):
            out.append(json.loads(f.read_text()))
        return out

    def done(self) -> set[str]:
        """Cells finished without error (failed cells are tried again on resume)."""
        return {c["id"] for c in self.cells()
                if not any(r.get("status") == "failed" for r in c["rows"])}

    def run_info(self) -> dict[str, Any]:
        f = self.path / "run.json"
        return json.loads(f.read_text()) if f.exists() else {}

    def results(self) -> pd.DataFrame:
        f = self.path / "results.csv"
        if not f.exists():
            return self.consolidate()
        return pd.read_csv(f, keep_default_na=False, na_values=[""])

    def scores(self, cid: str) -> pd.DataFrame:
        return pd.read_csv(self.path / "scores" / f"{cid}.csv")

    def table(self, name: str, columns: list[str]) -> pd.DataFrame:
        f = self.path / name
        return pd.read_csv(f) if f.exists() else pd.DataFrame(columns=columns)

    def failures(self) -> pd.DataFrame:
        return self.table("failures.csv", FAILURE_COLUMNS)

    def audit(self) -> pd.DataFrame:
        return self.table("audit.csv", AUDIT_COLUMNS)
