"""What a benchmark run writes, and how to read it back: the contract between harness and reports.

A run folder::

    run.json         config (the suite), versions, seeds, hardware, git revision, start/end,
                     timings, and the protocol settings (with fingerprints) a resume must share
    results.csv      one row per cell x negative family (RESULT_COLUMNS)
    cells/<id>.json  one file per finished cell (its rows, or its error, and the fingerprint of the
                     protocol settings it ran under): what makes a run resumable
    scores/<id>.csv  per test image of a cell (SCORE_COLUMNS): ROC curves, histograms, galleries
    maps/<id>.npz    patch embedders: per-patch scores of the images a gallery may show
    failures.csv     images that could not be used (FAILURE_COLUMNS): never silently dropped
    audit.csv        leakage audit: near-duplicate pairs across train and test (AUDIT_COLUMNS)

Every file is written to a temporary name and renamed (:mod:`oneclass.outputs`), and CSV cells
that a spreadsheet would run as a formula (``= + - @``) are neutralised. A cell file that cannot be
read (a crash mid-write on a file system without atomic rename, an edit) is named and its cell is
run again; it never stops a resume.

A *cell* is one (suite, embedder, detector, seed, setting, setting_value). ``setting`` names the
protocol variant: ``"main"``; ``"fewshot"`` (value = number of training positives);
``"label-efficiency"`` (value = number of labelled negatives added); ``"per-target"`` (value = the
class or person that is the positive class, e.g. a CIFAR-10 class or an LFW person); ``"wild"``
(value = the test condition). ``target`` is the positive class where a suite has several (every
setting of a one-vs-rest suite), else empty. ``family`` is ``"all"`` for all test negatives
together, or one negative family (``"trump"``, ``"lfw"``, ...). Scores follow the one convention
of oneclass: higher = more in-class; ``label`` 1 = in-class.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oneclass.metrics import METRIC_KEYS
from oneclass.outputs import atomic_write_bytes, atomic_write_text, write_csv_atomic

log = logging.getLogger(__name__)

#: timings and counts a cell records beside the metrics of :data:`oneclass.metrics.METRIC_KEYS`
CELL_COUNTS = ["n_train", "n_train_neg", "fit_s", "score_s", "embed_s", "n_failures", "n_no_face"]
#: what identifies a cell: the configuration, the seed and the setting it measures
CELL_KEYS = ["cell", "suite", "embedder", "detector", "seed", "setting", "setting_value"]
RESULT_COLUMNS = [
    *CELL_KEYS,
    "target",
    "family",
    *METRIC_KEYS,
    *CELL_COUNTS,
    "split",
    "status",
    "error",
]
#: the numeric columns of :data:`RESULT_COLUMNS`
NUMERIC_COLUMNS = [*METRIC_KEYS, *CELL_COUNTS, "seed"]
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


def cell_id(
    suite: str,
    embedder: str,
    detector: str,
    seed: int,
    setting: str,
    setting_value: Any,
    target: str = "",
) -> str:
    """Returns a readable, file-safe, unique id of a cell (the same as before ``target``
    existed when it is empty)."""
    key = f"{suite}|{embedder}|{detector}|{seed}|{setting}|{setting_value}"
    name = f"{suite}_{embedder}_{detector}_s{seed}_{setting}_{setting_value}"
    if target:
        key += f"|{target}"
        name += f"_{target}"
    slug = re.sub(r"[^A-Za-z0-9._=-]+", "_", name)[:120]
    return f"{slug}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


class RunDir:
    """Read and write one run folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        #: cell files found unreadable by the last :meth:`cells` call: ``(path, reason)``
        self.corrupt: list[tuple[Path, str]] = []

    # -- writing --------------------------------------------------------------------------------
    def create(self) -> RunDir:
        """Returns this run folder, with its ``cells/`` and ``scores/`` made."""
        for sub in ("cells", "scores"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)
        return self

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        """Write ``name`` (JSON) atomically."""
        atomic_write_text(self.path / name, json.dumps(data, indent=2, default=str))

    def finish_cell(
        self,
        cid: str,
        rows: list[dict[str, Any]],
        scores: pd.DataFrame | None,
        *,
        fingerprint: str = "",
        maps: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Record a finished (or failed) cell: its scores and maps first, then its marker."""
        if scores is not None:
            write_csv_atomic(
                scores.reindex(columns=SCORE_COLUMNS), self.path / "scores" / f"{cid}.csv"
            )
        if maps:
            buf = io.BytesIO()
            np.savez(buf, **maps)  # type: ignore[arg-type]
            atomic_write_bytes(self.path / "maps" / f"{cid}.npz", buf.getvalue())
        cell = {"id": cid, "fingerprint": fingerprint, "rows": rows}
        atomic_write_text(self.path / "cells" / f"{cid}.json", json.dumps(cell, default=str))

    def write_table(self, name: str, df: pd.DataFrame, columns: list[str]) -> None:
        """Write ``name`` (CSV) atomically, formula-like cells neutralised."""
        write_csv_atomic(df.reindex(columns=columns), self.path / name)

    def append_csv(self, name: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
        """Add ``rows`` to the CSV ``name`` (rewritten atomically)."""
        if not rows:
            return
        old = self.table(name, columns)
        new = pd.DataFrame(rows).reindex(columns=columns)
        self.write_table(name, pd.concat([old, new]) if len(old) else new, columns)

    def consolidate(self) -> pd.DataFrame:
        """Rebuild ``results.csv`` from the finished cells (the cells are the source of truth).

        Returns:
            The results table.
        """
        rows = [r for c in self.cells() for r in c["rows"]]
        df = pd.DataFrame(rows).reindex(columns=RESULT_COLUMNS)
        self.write_table("results.csv", df, RESULT_COLUMNS)
        return df

    # -- reading --------------------------------------------------------------------------------
    def cells(self) -> list[dict[str, Any]]:
        """Returns the readable cell files; unreadable ones are listed in :attr:`corrupt` (and
        logged with their path), never fatal."""
        out, self.corrupt = [], []
        for f in sorted((self.path / "cells").glob("*.json")):
            try:
                cell = json.loads(f.read_text(encoding="utf-8"))
                if not isinstance(cell, dict) or not isinstance(cell.get("rows"), list):
                    raise ValueError("not a cell record (no list of rows)")
                if cell.get("id") != f.stem:
                    raise ValueError(f"its id {cell.get('id')!r} is not its file name")
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                reason = f"{type(exc).__name__}: {str(exc)[:200]}"
                log.warning("%s: unreadable cell file (%s); its cell will be run again", f, reason)
                self.corrupt.append((f, reason))
                continue
            out.append(cell)
        return out

    def done(self) -> dict[str, str]:
        """Returns the cells finished without error, with the fingerprint each ran under
        (failed cells are tried again on resume)."""
        return {
            c["id"]: str(c.get("fingerprint", ""))
            for c in self.cells()
            if not any(r.get("status") == "failed" for r in c["rows"])
        }

    def run_info(self) -> dict[str, Any]:
        """Returns run.json (``{}`` before the first session)."""
        f = self.path / "run.json"
        return json.loads(f.read_text()) if f.exists() else {}

    def results(self) -> pd.DataFrame:
        """Returns results.csv (rebuilt from the cells when absent)."""
        f = self.path / "results.csv"
        if not f.exists():
            return self.consolidate()
        return pd.read_csv(f, keep_default_na=False, na_values=[""])

    def scores(self, cid: str) -> pd.DataFrame:
        """Returns the per-image scores of a cell."""
        return pd.read_csv(self.path / "scores" / f"{cid}.csv")

    def table(self, name: str, columns: list[str]) -> pd.DataFrame:
        """Returns the CSV ``name``, or an empty table with ``columns``."""
        f = self.path / name
        return pd.read_csv(f) if f.exists() else pd.DataFrame(columns=columns)

    def failures(self) -> pd.DataFrame:
        """Returns failures.csv."""
        return self.table("failures.csv", FAILURE_COLUMNS)

    def audit(self) -> pd.DataFrame:
        """Returns audit.csv."""
        return self.table("audit.csv", AUDIT_COLUMNS)
