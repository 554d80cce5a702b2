"""What a protocol plans with: data entries resolved to items, URL prefetch, embedding,
near-duplicate hashes, the leakage audit and the failures list of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oneclass.bench.audit import audit_rows, item_hashes
from oneclass.bench.embeddings import ArrayEmbeddings
from oneclass.bench.prefetch import prefetch
from oneclass.bench.protocols.base import sample
from oneclass.bench.results import AUDIT_COLUMNS, FAILURE_COLUMNS, RunDir


def resolve_items(entry: dict[str, Any], family: str | None = None) -> list:
    """Returns the items of a data entry: ``{dataset: NAME, subset?, label?, sample?}`` or
    ``{source: SPEC}``, with ``family`` set when given."""
    from oneclass.data.manifests import dataset_items
    from oneclass.data.sources import ImageItem, open_source

    if "dataset" in entry:
        items = list(dataset_items(entry["dataset"], entry.get("subset")))
    elif "source" in entry:
        items = list(open_source(str(entry["source"])))
    else:
        raise ValueError(f"data entry {entry} needs 'dataset' or 'source'")
    if entry.get("label") is not None:
        items = [it for it in items if it.label == entry["label"]]
        if not items:
            raise ValueError(f"data entry {entry}: no image has label {entry['label']!r}")
    if entry.get("sample"):
        idx = sample(
            np.arange(len(items)),
            int(entry["sample"]),
            np.random.default_rng(int(entry.get("sample_seed", 0))),
        )
        items = [items[i] for i in idx]
    if family is not None:
        items = [ImageItem(it.id, it.uri, it.label, it.group, family) for it in items]
    return items


class Records:
    """The failures and leakage audit of a run, written (atomically) as they grow."""

    def __init__(self, run: RunDir):
        self.run = run
        self.failures: list[dict[str, Any]] = []
        self.audit: dict[str, list[dict[str, Any]]] = {}
        self.audit_pairs: dict[str, dict[str, int]] = {}

    def add_failures(self, rows: list[dict[str, Any]]) -> None:
        """Add failure rows and rewrite failures.csv (old rows kept, duplicates dropped)."""
        old = self.run.failures()
        new = pd.DataFrame(rows, columns=FAILURE_COLUMNS)
        both = pd.concat([old, new]) if len(old) else new
        self.run.write_table(
            "failures.csv", both.drop_duplicates(["suite", "embedder", "uri"]), FAILURE_COLUMNS
        )

    def set_audit(self, suite: str, rows: list[dict[str, Any]], counts: dict[str, int]) -> None:
        """Record a suite's audit pairs and rewrite audit.csv."""
        self.audit[suite], self.audit_pairs[suite] = rows, counts
        df = pd.DataFrame([r for rs in self.audit.values() for r in rs], columns=AUDIT_COLUMNS)
        self.run.write_table("audit.csv", df, AUDIT_COLUMNS)


class RunContext:
    """The services of :class:`oneclass.bench.protocols.base.Context` for one suite (part)."""

    def __init__(
        self, suite: Any, seeds: list[int], cache_dir: Path, progress: bool, records: Records
    ):
        self.suite = suite
        self.seeds = seeds
        self.cache_dir = cache_dir
        self.progress = progress
        self.records = records
        self._hash_key: tuple | None = None
        self._hashes = np.zeros((0, 32), dtype=np.uint8)

    def items(self, entry: dict[str, Any], family: str | None = None) -> list:
        """Returns the items of a data entry."""
        return resolve_items(entry, family)

    def prefetch(self, items: list) -> list:
        """Returns ``items`` without the URLs that could not be downloaded (listed)."""
        kept, failures = prefetch(items, self.suite.name, progress=self.progress)
        if failures:
            self.records.add_failures(failures)
        return kept

    def embed(self, embeddings: Any, items: list) -> None:
        """Embed ``items`` (cached); images that fail are listed."""
        before = len(embeddings.failures)
        embeddings.add(items, self.suite.name)
        if len(embeddings.failures) > before:
            self.records.add_failures(embeddings.failures[before:])

    def hashes(self, items: list, embeddings: Any) -> np.ndarray:
        """Returns perceptual hashes of the readable items (zeros for unreadable), once per list."""
        key = tuple(it.uri for it in items)
        if self._hash_key != key:
            readable = np.array([e is not None for e in embeddings.get(items)], dtype=bool)
            self._hashes = item_hashes(items, readable, progress=self.progress)
            self._hash_key = key
        return self._hashes

    def audit(
        self, items: list, splits: dict[int, tuple[np.ndarray, np.ndarray]], hashes: np.ndarray
    ) -> None:
        """Record near-duplicate pairs across each seed's train and test (audit.csv)."""
        rows, counts = audit_rows(self.suite.name, items, splits, hashes)
        self.records.set_audit(self.suite.name, rows, counts)

    def wild_set(self, positives: list, faces: list, seed: int) -> list:
        """Returns the in-the-wild composites of one seed (built from test images only)."""
        from oneclass.bench.wild import build_wild_set

        cfg = self.suite.wild
        bgs = resolve_items(cfg.get("backgrounds", {"dataset": "bsds500"}), "natural")
        return build_wild_set(
            positives,
            faces,
            bgs,
            self.cache_dir / "wild" / self.suite.name,
            seed,
            per_kind=int(cfg.get("per_kind", 40)),
        )

    def array_embeddings(self) -> ArrayEmbeddings:
        """Returns an empty store of precomputed vectors (for protocols without an embedder)."""
        return ArrayEmbeddings()
