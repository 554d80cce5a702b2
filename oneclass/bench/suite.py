"""Benchmark suites: a YAML file names the data, the protocol and the grid to run.

Example (``benchmarks/niccage.yaml``)::

    name: niccage
    protocol: positives-vs-families     # or one-vs-rest, adbench
    positives: {dataset: niccage}
    negatives:                          # test negatives, one entry per family
      trump: {dataset: trump}
      lfw: {dataset: lfw, sample: 1000}
    split: {test_size: 0.5}             # group-aware (near-duplicate groups)
    embedders: [dlib-face, effnet-lite0]
    detectors: [knn, mahalanobis, "ocsvm:nu=0.1"]
    baselines: {detectors: [logistic], train_families: [trump]}
    fewshot: [5, 10, 20, 50]
    label_efficiency: {detector: logistic, counts: [10, 30, 100]}
    wild: {embedders: [dlib-face], per_kind: 60}
    seeds: [0, 1, 2]
    bootstrap: 1000

Images given as URLs are downloaded once into the download cache before anything else; without
network access the run stops at once, saying how many are missing. A data entry is
``{dataset: NAME[, subset: S][, sample: N]}`` (a manifest in ``datasets/``) or
``{source: SPEC}`` (a folder, zip, or CSV/TXT list of paths or URLs, as ``oneclass score`` takes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROTOCOLS = ("positives-vs-families", "one-vs-rest", "adbench")


class SuiteError(ValueError):
    """A suite file that cannot be run as written."""


@dataclass
class Suite:
    """A parsed suite file."""

    name: str
    protocol: str
    embedders: list[str]
    detectors: list[str]
    seeds: list[int] = field(default_factory=lambda: [0])
    positives: dict[str, Any] | None = None
    negatives: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: dict[str, Any] | None = None
    split: dict[str, Any] = field(default_factory=dict)
    baselines: dict[str, Any] = field(default_factory=dict)
    fewshot: list[int] = field(default_factory=list)
    label_efficiency: dict[str, Any] = field(default_factory=dict)
    wild: dict[str, Any] = field(default_factory=dict)
    bootstrap: int = 1000
    calibration_folds: int = 0
    sets: list[str] = field(default_factory=list)
    notes: str = ""
    path: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], path: str | None = None) -> Suite:
        where = path or "suite"
        if not isinstance(raw, dict):
            raise SuiteError(f"{where}: expected a mapping at the top level")
        known = set(cls.__dataclass_fields__) - {"path", "raw"}
        unknown = set(raw) - known
        if unknown:
            raise SuiteError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        for key in ("name", "protocol", "detectors"):
            if key not in raw:
                raise SuiteError(f"{where}: missing required key {key!r}")
        if raw["protocol"] not in PROTOCOLS:
            raise SuiteError(f"{where}: protocol {raw['protocol']!r} is not one of {PROTOCOLS}")
        raw = {"embedders": ["none"], **raw}
        suite = cls(**raw, path=path, raw=dict(raw))
        if suite.protocol == "positives-vs-families" and not (suite.positives and suite.negatives):
            raise SuiteError(f"{where}: positives-vs-families needs positives and negatives")
        if suite.protocol == "one-vs-rest" and not suite.data:
            raise SuiteError(f"{where}: one-vs-rest needs a data entry")
        if suite.protocol == "adbench" and not suite.sets:
            raise SuiteError(f"{where}: adbench needs a list of sets")
        return suite

    @classmethod
    def load(cls, path: str | Path) -> Suite:
        path = Path(path)
        if not path.is_file():
            raise SuiteError(f"{path}: no such suite file")
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise SuiteError(f"{path}: invalid YAML ({exc})") from exc
        return cls.from_dict(raw, str(path))
