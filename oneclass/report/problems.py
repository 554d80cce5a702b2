"""The facts of a run (header, timings) and what went wrong in it: failed cells, images without
a face, unreadable images and the leakage audit."""

from __future__ import annotations

from oneclass.report import tables as T
from oneclass.report.blocks import Block, Heading, Para
from oneclass.report.runs import Run
from oneclass.report.sections import slug


class RunFacts:
    """The run-level part of :class:`oneclass.report.document.Builder` (a mixin)."""

    def add(self, *blocks: Block) -> None:
        raise NotImplementedError

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
        kv.append(
            (
                "CI",
                f"{method}"
                + (f", {boot} resamples" if boot else "")
                + "; over seeds: mean of the per-seed bounds",
            )
        )
        if info.get("calibration_folds") is not None:
            kv.append(("calibration folds", str(info["calibration_folds"])))
        kv.append(("versions", flat(info.get("versions"))))
        kv.append(("hardware", flat(info.get("hardware"))))
        kv.append(("git revision", str(info.get("git_revision", info.get("git", "–")))))
        if info:
            kv.append(
                (
                    "started / finished",
                    f"{info.get('started', '–')} / {info.get('finished', 'not finished')}",
                )
            )
        else:
            kv.append(("run.json", "missing (a run still going, or copied without it)"))
        kv.append(("timings", self.timings(run)))
        if isinstance(info.get("cells"), dict):
            kv.append(("cells", flat(info["cells"])))
        return kv

    def timings(self, run: Run) -> str:
        r = run.results[run.results["family"] == "all"]
        parts = []
        if run.info.get("last_session_seconds") is not None:
            parts.append(f"last session {T.secs(float(run.info['last_session_seconds']))} s")
        if not r.empty:
            parts.append(
                f"fit {T.secs(r['fit_s'].sum())} s, score {T.secs(r['score_s'].sum())} s "
                f"over {len(r)} cells"
            )
            emb = r.groupby("embedder")["embed_s"].max().dropna()
            emb = emb[emb > 0]
            if not emb.empty:
                parts.append("embedding " + ", ".join(f"{k} {T.secs(v)} s" for k, v in emb.items()))
        return "; ".join(parts) or "–"

    def problems(self, run: Run) -> None:
        self.add(Heading(3, "Failures, no-face images, leakage audit", slug(run.name, "problems")))
        err = T.cell_errors(run)
        if not err.empty:
            self.add(
                T.to_table(
                    err,
                    [T.text(c.replace("_", " "), c) for c in err.columns],
                    caption=f"{len(err)} cells failed",
                    kind="warn",
                )
            )
        nf = T.no_face(run)
        if nf.empty:
            self.add(Para("No-face images: none (no cell reported an image without a face)."))
        else:
            self.add(
                T.to_table(
                    nf,
                    [
                        T.text("Suite", "suite"),
                        T.text("Embedder", "embedder"),
                        T.col("cells", "cells", T.num),
                        T.col("cells with any", "with", T.num),
                        T.col("most in a cell", "max", T.num),
                        T.col("total", "total", T.num),
                    ],
                    caption="Images without a detected face (train + test, per cell)",
                )
            )
        fails = run.failures
        if fails.empty:
            self.add(Para("Failures: none (every image could be read and decoded)."))
        else:
            fc = T.failure_counts(run)
            self.add(
                T.to_table(
                    fc,
                    [T.text(c.capitalize(), c) for c in fc.columns[:-1]]
                    + [T.col("images", "n", T.num)],
                    caption=f"{len(fails)} images that could not be used, by reason",
                )
            )
            shown = fails.head(200).fillna("")
            self.add(
                T.to_table(
                    shown,
                    [T.text(c, c) for c in ["stage", "item_id", "uri", "reason"]],
                    caption="The failed images"
                    + (f" (first 200 of {len(fails)})" if len(fails) > 200 else ""),
                )
            )
        au = T.audit_summary(run)
        if au.empty:
            self.add(
                Para(
                    "Leakage audit: no near-duplicate pair across train and test was "
                    "recorded"
                    + ("" if (run.path / "audit.csv").exists() else " (no audit.csv in this run)")
                    + "."
                )
            )
        else:
            self.add(
                T.to_table(
                    au,
                    [
                        T.text("Suite", "suite"),
                        T.col("seed", "seed", T.num),
                        T.col("pairs", "pairs", T.num),
                        T.col("test images", "test_items", T.num),
                        T.col("closest distance", "min_distance", T.num),
                    ],
                    caption="Leakage audit: near-duplicate pairs across train and test",
                    kind="warn",
                )
            )
            closest = run.audit.sort_values("distance").head(50)
            self.add(
                T.to_table(
                    closest, [T.text(c, c) for c in closest.columns], caption="Closest pairs"
                )
            )


def flat(d: object) -> str:
    if isinstance(d, dict):
        return ", ".join(f"{k} {flat(v)}" for k, v in d.items()) or "–"
    if isinstance(d, list | tuple):
        return ", ".join(flat(v) for v in d)
    return "–" if d is None else str(d)
