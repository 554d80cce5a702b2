"""Run a suite's grid (embedders x detectors x seeds x settings) into a run folder, resumably.

The runner only schedules and resumes: the protocol (:mod:`oneclass.bench.protocols`) plans the
tasks, a job (:mod:`oneclass.bench.job`) runs one cell, the run folder
(:mod:`oneclass.bench.results`) records it at once. A rerun skips the finished cells, re-runs
failed and unreadable ones, and refuses to continue a run whose protocol settings changed (the
message names each changed setting). One failing cell is recorded with its error and the rest go
on; :func:`run_status` is then non-zero.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from oneclass.bench import provenance
from oneclass.bench.context import Records, RunContext
from oneclass.bench.embeddings import make_embeddings
from oneclass.bench.job import Job, run_job
from oneclass.bench.protocols import get_protocol
from oneclass.bench.protocols.base import Work
from oneclass.bench.provenance import cpu_name
from oneclass.bench.results import RunDir, cell_id
from oneclass.bench.specs import check_specs
from oneclass.bench.suite import (
    EmbedderRow,
    Suite,
    SuiteError,
    changed_settings,
)

__all__ = ["ResumeError", "Runner", "cpu_name", "run_status", "run_suite"]

log = logging.getLogger(__name__)


class ResumeError(SuiteError):
    """A run folder holds cells of other protocol settings than the suite's."""


class Runner:
    """Runs one suite into one run folder."""

    def __init__(
        self,
        suite: Suite,
        out_dir: str | Path,
        *,
        cache_dir: str | Path | None = None,
        progress: bool = True,
        embedders: list[str] | None = None,
        detectors: list[str] | None = None,
        seeds: list[int] | None = None,
    ):
        check_specs(suite, embedders=embedders, detectors=detectors)
        self.suite = suite
        self.run = RunDir(out_dir)
        self.cache_dir = Path(cache_dir) if cache_dir else provenance.default_cache_dir()
        self.progress = progress
        self.embedders = embedders
        self.only_detectors = detectors
        self.seeds = seeds
        self.counts = {"done": 0, "skipped": 0, "failed": 0}
        self.settings = suite.protocol_settings()
        self.fingerprints = suite.fingerprints()

    # -- resume -------------------------------------------------------------------------------
    def check_resume(self) -> None:
        """Raise :class:`ResumeError` if the run folder was written under other protocol
        settings (naming them); a folder without run.json is a new run."""
        old = self.run.run_info()
        if not old:
            return
        before = old.get("protocol_settings")
        if before is None and isinstance(old.get("config"), dict):  # runs before fingerprints
            try:
                before = Suite.from_dict(old["config"]).protocol_settings()
            except SuiteError:
                before = None
        if before is None:
            return
        changes = changed_settings(before, self.settings)
        if changes:
            raise ResumeError(
                f"{self.run.path}: this run folder was written with other protocol settings "
                f"than {self.suite.path or self.suite.name} has now; resuming would mix results: "
                + "; ".join(changes)
                + ". Run into a new folder (--out), or restore the setting"
            )

    def _info(self, **extra: Any) -> dict[str, Any]:
        old = self.run.run_info()
        suite = self.suite
        info = {
            "suite": suite.name,
            "suite_file": suite.path,
            "config": suite.raw,
            "protocol": suite.protocol,
            "protocols": {u.name: u.protocol for u in suite.units},
            "protocol_settings": self.settings,
            "fingerprints": self.fingerprints,
            "seeds": self.seeds or suite.seeds,
            "embedders": self.embedders or suite.embedders,
            "bootstrap": suite.bootstrap,
            "bootstrap_method": "stratified percentile bootstrap, 95%",
            "calibration_folds": suite.calibration_folds,
            "cache": str(self.cache_dir),
            "download_cache": str(provenance.download_cache_dir()),
            "versions": provenance.library_versions(),
            "hardware": provenance.hardware(),
            "git_revision": provenance.git_revision(),
            "started": old.get("started", datetime.now(timezone.utc).isoformat()),
            "sessions": old.get("sessions", 0) + (0 if extra else 1),
        }
        return {**old, **info, **extra}

    # -- the grid -----------------------------------------------------------------------------
    def run_suite(self) -> RunDir:
        """Run every cell not yet done; returns the run folder."""
        t0 = time.perf_counter()
        self.check_resume()
        self.run.create()
        self.done = self.run.done()
        for f, reason in self.run.corrupt:
            log.warning("%s: unreadable (%s): its cell runs again", f, reason)
        corrupt = [str(f) for f, _ in self.run.corrupt]
        self.run.write_json("run.json", self._info())
        records = Records(self.run)
        for unit in self.suite.units:
            self._run_unit(unit, records)
        df = self.run.consolidate()
        self.run.write_json(
            "run.json",
            self._info(
                finished=datetime.now(timezone.utc).isoformat(),
                last_session_seconds=round(time.perf_counter() - t0, 1),
                audit_pairs_per_seed=records.audit_pairs or None,
                corrupt_cells_rerun=corrupt,
                cells={**self.counts, "rows": len(df)},
            ),
        )
        return self.run

    def _run_unit(self, unit: Suite, records: Records) -> None:
        protocol = get_protocol(unit.protocol)
        seeds = [s for s in unit.seeds if self.seeds is None or s in self.seeds]
        if not seeds:
            return
        ctx = RunContext(unit, seeds, self.cache_dir, self.progress, records)
        if not protocol.uses_embedder:
            self._run_work(unit, protocol.plan(ctx, None), None, f"{unit.name}")
            return
        for row in self.embedder_rows(unit):
            emb = make_embeddings(row.spec, self.cache_dir, self.progress)
            self._run_work(unit, protocol.plan(ctx, emb), row, f"{unit.name} {row.spec}")

    def embedder_rows(self, unit: Suite) -> list[EmbedderRow]:
        """Returns the embedder rows a part runs: its own, filtered by ``embedders``; a spec that
        no part of the suite names runs in every part (trying a new embedder on a suite)."""
        if self.embedders is None:
            return list(unit.rows)
        rows = [r for r in unit.rows if r.spec in self.embedders]
        known = {r.spec for part in self.suite.units for r in part.rows}
        return rows + [EmbedderRow(e) for e in self.embedders if e not in known]

    def _detectors(self, task: Any, row: Any) -> list[str]:
        names = list(task.detectors)
        if row is not None:
            if row.settings is not None and task.setting not in row.settings:
                return []
            own = row.baselines if task.binary else row.detectors
            names = list(own) if own is not None else names
        if self.only_detectors is not None:
            names = [d for d in names if d in self.only_detectors]
        return names

    def _run_work(self, unit: Suite, work: list[Work], row: Any, desc: str) -> None:
        jobs = [self._job(unit, w, det) for w in work for det in self._detectors(w.task, row)]
        with tqdm(total=len(jobs), desc=desc, unit="cell", disable=not self.progress) as bar:
            for job in jobs:
                bar.set_postfix_str(
                    f"{job.detector} {job.work.task.setting}={job.work.task.value}", refresh=False
                )
                if self.done.get(job.cell) == self.fingerprints[unit.name] or (
                    job.cell in self.done and not self.done[job.cell]
                ):
                    self.counts["skipped"] += 1
                else:
                    out = run_job(job)
                    self.counts["failed" if out.failed else "done"] += 1
                    self.run.finish_cell(
                        job.cell,
                        out.rows,
                        out.scores,
                        maps=out.maps,
                        fingerprint=self.fingerprints[unit.name],
                    )
                bar.update(1)

    def _job(self, unit: Suite, work: Work, detector: str) -> Job:
        t = work.task
        spec = work.embeddings.spec
        cid = cell_id(unit.name, spec, detector, work.seed, t.setting, t.value, t.target)
        identity = {
            "cell": cid,
            "suite": unit.name,
            "embedder": spec,
            "detector": detector,
            "seed": work.seed,
            "setting": t.setting,
            "setting_value": t.value,
            "target": t.target,
            "split": t.split,
        }
        return Job(cid, identity, work, detector, unit.bootstrap, unit.calibration_folds)


def run_status(run: RunDir) -> int:
    """Returns the exit status of a benchmark: 0 when every cell of the run finished, 1 when a
    cell failed (its error is in results.csv and the report)."""
    return 1 if any(r.get("status") == "failed" for c in run.cells() for r in c["rows"]) else 0


def run_suite(suite: Suite | str | Path, out_dir: str | Path, **kw: Any) -> RunDir:
    """Run (or resume) ``suite`` into ``out_dir``; returns the run folder (see
    :func:`run_status` for the exit status)."""
    if not isinstance(suite, Suite):
        suite = Suite.load(suite)
    return Runner(suite, out_dir, **kw).run_suite()
