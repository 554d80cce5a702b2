"""Run a suite's grid (embedders x detectors x seeds x settings), resumably, into a run folder.

Every finished cell is recorded at once (``cells/<id>.json``); a rerun skips them. One failing cell
is recorded with its error and the rest go on. Images that cannot be read, and faces not found,
are counted and listed, never replaced.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from oneclass.bench import protocols
from oneclass.bench.results import (
    AUDIT_COLUMNS,
    FAILURE_COLUMNS,
    RunDir,
    cell_id,
    comparable_scores,
)
from oneclass.bench.suite import Suite
from oneclass.data.download import default_cache_dir as download_cache_dir
from oneclass.detect.registry import make_detector
from oneclass.metrics import evaluate
from oneclass.persist import library_versions

ADBENCH_EMBEDDER = "resnet18-adbench"


def default_cache_dir() -> Path:
    """``$ONECLASS_CACHE``, else ``~/.cache/oneclass``: embeddings, wild composites, downloads."""
    from oneclass.data.download import default_cache_dir as downloads

    return downloads().parent


def git_revision() -> str:
    try:
        here = Path(__file__).resolve().parent
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, text=True,
                              capture_output=True, timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict[str, Any]:
    import torch

    info = {"machine": platform.machine(), "cpu": cpu_name(), "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()}
    if info["cuda"]:
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


# -- data ---------------------------------------------------------------------------------------
def resolve_items(entry: dict[str, Any], family: str | None = None) -> list:
    """The items of a data entry: ``{dataset: NAME, subset?, sample?}`` or ``{source: SPEC}``."""
    from oneclass.data.manifests import dataset_items
    from oneclass.data.sources import ImageItem, open_source

    if "dataset" in entry:
        items = list(dataset_items(entry["dataset"], entry.get("subset")))
    elif "source" in entry:
        items = list(open_source(str(entry["source"])))
    else:
        raise ValueError(f"data entry {entry} needs 'dataset' or 'source'")
    if entry.get("sample"):
        idx = protocols.sample(np.arange(len(items)), int(entry["sample"]),
                               np.random.default_rng(int(entry.get("sample_seed", 0))))
        items = [items[i] for i in idx]
    if family is not None:
        items = [ImageItem(it.id, it.uri, it.label, it.group, family) for it in items]
    return items


class Embeddings:
    """Per-item embeddings of one embedder (``None`` = failed), with failures listed."""

    def __init__(self, embedder_spec: str, cache_dir: Path, progress: bool):
        from oneclass.embed.cache import EmbeddingCache
        from oneclass.embed.registry import make_embedder

        self.spec = embedder_spec
        self.embedder = make_embedder(embedder_spec)
        self.cache = EmbeddingCache(cache_dir / "embeddings.sqlite")
        self.progress = progress
        self.by_uri: dict[str, Any] = {}
        self.failures: list[dict[str, Any]] = []
        self.seconds = 0.0

    def add(self, items: list, suite: str) -> None:
        from oneclass.embed.cache import embed_items

        todo = list({it.uri: it for it in items if it.uri not in self.by_uri}.values())
        if not todo:
            return
        t0 = time.perf_counter()
        out = embed_items(self.embedder, todo, cache=self.cache, progress=self.progress)
        self.seconds += time.perf_counter() - t0
        reasons = {f.item.id: f.reason for f in out.failures}
        for it, emb in zip(todo, out.embeddings, strict=True):
            self.by_uri[it.uri] = emb
            if emb is None:
                self.failures.append({"suite": suite, "embedder": self.spec, "item_id": it.id,
                                      "uri": it.uri, "stage": "decode",
                                      "reason": reasons.get(it.id, "unreadable")})

    def train_matrix(self, items: list) -> tuple[np.ndarray, np.ndarray, int]:
        """Largest-face vectors of the usable items, their positions, and the no-face count."""
        vecs, keep, no_face = [], [], 0
        for i, it in enumerate(items):
            emb = self.by_uri.get(it.uri)
            if emb is None:
                continue
            if emb.n_faces == 0:
                no_face += 1
                continue
            vecs.append(emb.vectors[emb.largest()])
            keep.append(i)
        return np.asarray(vecs, dtype=np.float64), np.asarray(keep, dtype=int), no_face

    def score(self, det, items: list) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Best-face score per item (-inf: no face, nan: failed), face counts, statuses."""
        emb = [self.by_uri.get(it.uri) for it in items]
        ok = [e for e in emb if e is not None and e.n_faces > 0]
        flat = det.score_samples(np.vstack([e.vectors for e in ok])) if ok else np.empty(0)
        scores, faces, status, pos = [], [], [], 0
        for e in emb:
            if e is None:
                scores.append(math.nan), faces.append(0), status.append("failed")
            elif e.n_faces == 0:
                scores.append(-math.inf), faces.append(0), status.append("no_face")
            else:
                scores.append(float(flat[pos:pos + e.n_faces].max()))
                faces.append(e.n_faces), status.append("ok")
                pos += e.n_faces
        return np.asarray(scores), np.asarray(faces), status


class ArrayEmbeddings(Embeddings):
    """ADBench's precomputed vectors behave like an embedder's output."""

    def __init__(self):
        self.spec, self.by_uri, self.failures, self.seconds = ADBENCH_EMBEDDER, {}, [], 0.0


# -- the runner ---------------------------------------------------------------------------------
class Runner:
    """Runs one suite into one run folder."""

    def __init__(self, suite: Suite, out_dir: str | Path, *, cache_dir: str | Path | None = None,
                 progress: bool = True, embedders: list[str] | None = None,
                 detectors: list[str] | None = None, seeds: list[int] | None = None):
        self.suite = suite
        self.run = RunDir(out_dir).create()
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.progress = progress
        self.embedders = embedders or suite.embedders
        self.only_detectors = detectors
        self.seeds = seeds if seeds is not None else suite.seeds
        self.n_done = self.n_skipped = self.n_failed = 0
        self.done = self.run.done()

    def _info(self, **extra) -> dict[str, Any]:
        old = self.run.run_info()
        info = {"suite": self.suite.name, "suite_file": self.suite.path, "config": self.suite.raw,
                "protocol": self.suite.protocol, "seeds": self.seeds,
                "embedders": self.embedders, "bootstrap": self.suite.bootstrap,
                "bootstrap_method": "stratified percentile bootstrap, 95%",
                "calibration_folds": self.suite.calibration_folds,
                "cache": str(self.cache_dir), "download_cache": str(download_cache_dir()),
                "versions": library_versions(), "hardware": hardware(),
                "git_revision": git_revision(),
                "started": old.get("started", datetime.now(timezone.utc).isoformat()),
                "sessions": old.get("sessions", 0) + (0 if extra else 1)}
        return {**old, **info, **extra}

    def run_suite(self) -> RunDir:
        """Run every cell not yet done; return the run folder."""
        t0 = time.perf_counter()
        self.run.write_json("run.json", self._info())
        if self.suite.protocol == "adbench":
            self._run_adbench()
        else:
            for spec in self.embedders:
                self._run_embedder(spec)
        df = self.run.consolidate()
        self.run.write_json("run.json", self._info(
            finished=datetime.now(timezone.utc).isoformat(),
            last_session_seconds=round(time.perf_counter() - t0, 1),
            audit_pairs_per_seed=getattr(self, "audit_pairs", None),
            cells={"done": self.n_done, "skipped": self.n_skipped, "failed": self.n_failed,
                   "rows": len(df)}))
        return self.run

    def _prefetch(self, items: list) -> set[str]:
        """Download the URL items once, concurrently, into the download cache; failures are
        listed. Stops at once, with what is missing, when the network cannot be reached."""
        from oneclass.data.download import default_downloader
        from oneclass.data.uri import is_url

        urls = list(dict.fromkeys(it.uri for it in items if is_url(it.uri)))
        if not urls:
            return set()
        dl = default_downloader()
        missing = [u for u in urls if not dl.path_for(u).is_file()]
        if missing:
            import requests

            try:
                requests.head(missing[0], timeout=5, allow_redirects=True)
            except requests.RequestException as exc:
                raise RuntimeError(
                    f"suite {self.suite.name!r} needs internet: {len(missing)} of {len(urls)} "
                    f"images are not in the download cache {dl.cache_dir}, and {missing[0]} "
                    f"cannot be reached ({type(exc).__name__}). Run it where there is network "
                    f"access (or `oneclass datasets fetch` there first and copy the cache)"
                ) from exc
        result = dl.fetch(urls, progress=self.progress)
        by_uri = {it.uri: it for it in items}
        self.download_failures = [
            {"suite": self.suite.name, "embedder": "", "item_id": by_uri[u].id, "uri": u,
             "stage": "download", "reason": reason} for u, reason in result.failures]
        return {u for u, _ in result.failures}

    # -- cells --------------------------------------------------------------------------------
    def _detectors(self, names: list[str]) -> list[str]:
        if self.only_detectors is None:
            return names
        return [d for d in names if d in self.only_detectors]

    def _cells(self, emb: Embeddings, items: list, task: protocols.Task, seed: int,
               bar: tqdm) -> None:
        for det_spec in self._detectors(task.detectors):
            cid = cell_id(self.suite.name, emb.spec, det_spec, seed, task.setting, task.value)
            bar.set_postfix_str(f"{det_spec} {task.setting}={task.value}", refresh=False)
            if cid in self.done:
                self.n_skipped += 1
                bar.update(1)
                continue
            base = {"cell": cid, "suite": self.suite.name, "embedder": emb.spec,
                    "detector": det_spec, "seed": seed, "setting": task.setting,
                    "setting_value": task.value, "split": task.split}
            try:
                rows, scores = self._one_cell(emb, items, task, det_spec, seed, base)
                self.n_done += 1
            except Exception as exc:  # noqa: BLE001 - one failing cell must not stop the grid
                rows = [{**base, "family": "all", "status": "failed",
                         "error": f"{type(exc).__name__}: {exc}"}]
                scores = None
                self.n_failed += 1
            self.run.finish_cell(cid, rows, scores)
            bar.update(1)

    def _one_cell(self, emb: Embeddings, items: list, task: protocols.Task, det_spec: str,
                  seed: int, base: dict[str, Any]):
        train_items = [items[i] for i in task.train]
        X, keep, no_face_train = emb.train_matrix(train_items)
        if X.shape[0] == 0:
            raise ValueError("no usable training images")
        det = make_detector(det_spec, random_state=seed,
                            calibration_folds=self.suite.calibration_folds)
        t0 = time.perf_counter()
        if task.train_y is None:
            det.fit(X)
        else:
            det.fit(X, task.train_y[keep])
        fit_s = time.perf_counter() - t0
        test_items = [items[i] for i in task.test]
        t0 = time.perf_counter()
        raw, faces, status = emb.score(det, test_items)
        score_s = time.perf_counter() - t0
        usable = np.array([s != "failed" for s in status])
        y, fam = task.test_label[usable], task.test_family[usable]
        s = comparable_scores(raw[usable])
        n_neg = 0 if task.train_y is None else int((task.train_y[keep] == 0).sum())
        common = {**base, "n_train": int(X.shape[0]), "n_train_neg": n_neg,
                  "fit_s": round(fit_s, 4), "score_s": round(score_s, 4),
                  "embed_s": round(emb.seconds, 2),
                  "n_failures": int((~usable).sum()) + (len(train_items) - len(keep)
                                                        - no_face_train),
                  "status": "ok", "error": ""}
        rows = []
        families = ["all"] + [f for f in dict.fromkeys(fam) if f != "positive"]
        for f in families:
            m = np.ones_like(y, bool) if f == "all" else (fam == "positive") | (fam == f)
            nf = int(sum(1 for st, keep_ in zip(np.asarray(status)[usable], m, strict=True)
                         if keep_ and st == "no_face")) + (no_face_train if f == "all" else 0)
            metrics = evaluate(y[m], s[m], n_boot=self.suite.bootstrap, seed=seed)
            rows.append({**common, **metrics, "family": f, "n_no_face": nf})
        scores = pd.DataFrame({
            "item_id": [it.id for it in test_items], "uri": [it.uri for it in test_items],
            "label": task.test_label, "family": task.test_family, "score": raw,
            "n_faces": faces, "status": status})
        return rows, scores

    # -- protocols ----------------------------------------------------------------------------
    def _run_embedder(self, spec: str) -> None:
        from oneclass.data.sources import ImageItem  # noqa: F401 - data layer must exist

        suite = self.suite
        emb = Embeddings(spec, self.cache_dir, self.progress)
        if suite.protocol == "positives-vs-families":
            items, role, family = [], [], []
            for fam, entry in [("positive", suite.positives), *suite.negatives.items()]:
                got = resolve_items(entry, fam)
                items += got
                role += ["positive" if fam == "positive" else "negative"] * len(got)
                family += [fam] * len(got)
            failed = self._prefetch(items)
            keep = [i for i, it in enumerate(items) if it.uri not in failed]
            items = [items[i] for i in keep]
            role_a = np.array(role, dtype=object)[keep]
            fam_a = np.array(family, dtype=object)[keep]
            emb.add(items, suite.name)
            hashes = self._hashes(items, emb)
            groups = protocols.split_groups(items, hashes)
            tasks = {s: list(protocols.positives_vs_families(suite, items, role_a, fam_a,
                                                             groups, s))
                     for s in self.seeds}
            self._audit(items, tasks, hashes)
        else:
            items = resolve_items(suite.data)
            failed = self._prefetch(items)
            items = [it for it in items if it.uri not in failed]
            emb.add(items, suite.name)
            tasks = {s: list(protocols.one_vs_rest(suite, items, s)) for s in self.seeds}
        self._record_failures(emb)
        wild = suite.wild and spec in suite.wild.get("embedders", [spec])
        n = sum(len(self._detectors(t.detectors)) for ts in tasks.values() for t in ts)
        n += len(self.seeds) * len(self._detectors(suite.detectors)) if wild else 0
        with tqdm(total=n, desc=f"{suite.name} {spec}", unit="cell",
                  disable=not self.progress) as bar:
            for seed, ts in tasks.items():
                for task in ts:
                    self._cells(emb, items, task, seed, bar)
                if wild:
                    self._wild(emb, items, ts[0], seed, bar)
        self._record_failures(emb)

    def _wild(self, emb: Embeddings, items: list, main: protocols.Task, seed: int,
              bar: tqdm) -> None:
        from oneclass.bench.wild import build_wild_set

        cfg = self.suite.wild
        test = [items[i] for i in main.test]
        pos = [it for it, lab in zip(test, main.test_label, strict=True) if lab == 1]
        faces = [it for it in test if it.family in cfg.get("face_families", ["trump", "glint"])]
        bgs = resolve_items(cfg.get("backgrounds", {"dataset": "bsds500"}), "natural")
        wild = build_wild_set(pos, faces, bgs, self.cache_dir / "wild" / self.suite.name, seed,
                              per_kind=int(cfg.get("per_kind", 40)))
        emb.add(wild, self.suite.name)
        all_items = items + wild
        idx = np.arange(len(items), len(all_items))
        label = np.array([int(w.family == "positive") for w in wild])
        fam = np.array([w.family for w in wild], dtype=object)
        task = protocols.Task("wild", "composites", self.suite.detectors, main.train, idx, label,
                              fam, None, "wild composites built from test-split images only")
        self._cells(emb, all_items, task, seed, bar)

    def _run_adbench(self) -> None:
        from oneclass.data.adbench import adbench_split, load_adbench

        emb = ArrayEmbeddings()
        n = len(self.suite.sets) * len(self.seeds) * len(self._detectors(self.suite.detectors))
        with tqdm(total=n, desc=self.suite.name, unit="cell", disable=not self.progress) as bar:
            for name in self.suite.sets:
                X, y = load_adbench(name)
                for seed in self.seeds:
                    sp = adbench_split(X, y, seed=seed)
                    items, vecs = _array_items(f"{name}/seed{seed}",
                                               np.vstack([sp.X_train, sp.X_test]))
                    emb.by_uri.update(vecs)
                    n_tr = len(sp.X_train)
                    tr, te = np.arange(n_tr), np.arange(n_tr, len(items))
                    fam = np.where(sp.y_test == 1, "positive", "anomaly")
                    task = protocols.Task("per-target", name, self.suite.detectors, tr, te,
                                          sp.y_test.astype(int), fam, None,
                                          "seeded 70% of the normals train; rest + anomalies test")
                    self._cells(emb, items, task, seed, bar)

    def _hashes(self, items: list, emb: Embeddings) -> np.ndarray:
        """Perceptual hashes of the readable items (zeros for unreadable ones), once per run."""
        from oneclass.data.splits import perceptual_hashes

        key = tuple(it.uri for it in items)
        if getattr(self, "_hash_key", None) != key:
            readable = np.array([emb.by_uri.get(it.uri) is not None for it in items])
            good = perceptual_hashes([it for it, ok in zip(items, readable, strict=True) if ok],
                                     progress=self.progress)
            self._hash_cache = np.zeros((len(items), good.shape[1]), dtype=np.uint8)
            self._hash_cache[readable] = good
            self._hash_key = key
        return self._hash_cache

    def _audit(self, items: list, tasks: dict[int, list[protocols.Task]],
               hashes: np.ndarray) -> None:
        """Near-duplicate pairs across each seed's train and test images (audit.csv)."""
        from oneclass.data.splits import near_duplicate_pairs

        readable = hashes.any(axis=1)
        rows, counts = [], {}
        for seed, seed_tasks in tasks.items():
            train = np.unique(np.concatenate([t.train for t in seed_tasks]))
            train, test = train[readable[train]], seed_tasks[0].test
            test = test[readable[test]]
            i, j, d = near_duplicate_pairs(hashes[train], hashes[test])
            counts[str(seed)] = len(i)
            rows += [{"suite": self.suite.name, "seed": seed, "train_id": items[train[a]].id,
                      "test_id": items[test[b]].id, "distance": int(c)}
                     for a, b, c in zip(i, j, d, strict=True)]
        pd.DataFrame(rows, columns=AUDIT_COLUMNS).to_csv(self.run.path / "audit.csv", index=False)
        self.audit_pairs = counts

    def _record_failures(self, emb: Embeddings) -> None:
        old = self.run.failures()
        new = pd.DataFrame(getattr(self, "download_failures", []) + emb.failures,
                           columns=FAILURE_COLUMNS)
        both = pd.concat([old, new]).drop_duplicates(["suite", "embedder", "uri"])
        both.to_csv(self.run.path / "failures.csv", index=False)


def _array_items(name: str, X: np.ndarray):
    from oneclass.data.sources import ImageItem
    from oneclass.embed.base import ImageEmbedding

    items = [ImageItem(id=f"{name}/{i}", uri=f"adbench:{name}#{i}") for i in range(len(X))]
    vecs = {it.uri: ImageEmbedding(X[i:i + 1].astype(np.float32)) for i, it in enumerate(items)}
    return items, vecs


def run_suite(suite: Suite | str | Path, out_dir: str | Path, **kw) -> RunDir:
    """Run (or resume) ``suite`` into ``out_dir``."""
    if not isinstance(suite, Suite):
        suite = Suite.load(suite)
    return Runner(suite, out_dir, **kw).run_suite()
