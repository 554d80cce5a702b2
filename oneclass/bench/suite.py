"""Benchmark suites: a YAML file names the data, the protocol and the grid to run.

Example (``benchmarks/niccage.yaml``)::

    name: niccage
    protocol: positives-vs-families     # see oneclass.bench.protocols: the registry
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

A suite may instead hold ``parts:``, a list of suites that share the top level's grid (embedders,
detectors, seeds, bootstrap, baselines, fewshot, label_efficiency); each part names its own
``protocol`` and data and may override any of those (see ``benchmarks/generic.yaml``).

An ``embedders`` item is a spec string or ``{embedder: SPEC, detectors: [...], baselines: [...],
settings: [...]}``: this embedder runs only those one-class detectors, binary baselines and
settings (e.g. patch vectors with ``knn:coreset=0.1`` alone, or fine-tuning in the main setting
only). The spec
``finetune:base=SPEC[,option=value...]`` fine-tunes ``base`` inside every cell on that cell's
training images only (see :mod:`oneclass.bench.embeddings`).

A data entry is ``{dataset: NAME[, subset: S][, label: L][, sample: N]}`` (a manifest) or
``{source: SPEC}`` (a folder, zip, or CSV/TXT list of paths or URLs, as ``oneclass score`` takes).

Everything is checked when the file is read, before any image is touched: types (``detectors:
knn`` is an error, not the detectors k, n, n), unknown keys, the protocol's own keys, and every
embedder and detector spec (built, not fitted). YAML aliases are refused: a few hundred bytes of
nested aliases can expand to gigabytes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from oneclass.bench import schema as S
from oneclass.bench.protocols import available_protocols, get_protocol
from oneclass.bench.schema import SuiteError

__all__ = ["MAX_SUITE_BYTES", "EmbedderRow", "Suite", "SuiteError", "changed_settings"]

#: the largest suite file read (a suite is a page of YAML)
MAX_SUITE_BYTES = 256 * 1024
FINETUNE = "finetune"

#: keys that choose what is run, not how the data is split or measured: changing them between
#: sessions of one run adds or skips cells but never makes old cells wrong
GRID_KEYS = ("name", "embedders", "detectors", "seeds", "notes", "parts")


def _embedder_item(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        return S.mapping(
            {
                "embedder": S.text,
                "detectors": S.list_of(S.text),
                "baselines": S.list_of(S.text),
                "settings": S.list_of(S.text, non_empty=True),
            },
            required=("embedder",),
        )(value, where)
    return S.text(value, where)


COMMON_KEYS: dict[str, S.Check] = {
    "name": S.text,
    "protocol": S.text,
    "embedders": S.list_of(_embedder_item, non_empty=True),
    "detectors": S.list_of(S.text),
    "seeds": S.list_of(S.integer(0), non_empty=True),
    "bootstrap": S.integer(0),
    "calibration_folds": S.integer(0),
    "notes": S.optional_text,
}
#: top-level keys of a ``parts`` suite that every part inherits
SHARED_KEYS = (
    "embedders",
    "detectors",
    "seeds",
    "bootstrap",
    "calibration_folds",
    "baselines",
    "fewshot",
    "label_efficiency",
)


@dataclass(frozen=True)
class EmbedderRow:
    """One embedder of a suite and, optionally, the only detectors (one-class ``detectors``,
    binary ``baselines``) and ``settings`` it runs."""

    spec: str
    detectors: list[str] | None = None
    baselines: list[str] | None = None
    settings: list[str] | None = None

    @property
    def finetuned(self) -> bool:
        """Whether the spec fine-tunes a base embedder per cell."""
        return self.spec.split(":", 1)[0] == FINETUNE


class _NoAliasLoader(yaml.SafeLoader):
    """YAML's safe loader without aliases (``*name``): nothing in a suite expands."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                f"YAML alias *{event.anchor} is not allowed in a suite file "
                "(aliases can expand a small file without bound; write the values out)",
                event.start_mark,
            )
        return super().compose_node(parent, index)


@dataclass
class Suite:
    """A parsed, checked suite file (one protocol), or a list of ``parts``."""

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
    parts: list[Suite] = field(default_factory=list)
    rows: list[EmbedderRow] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        """Returns the value of a protocol key (a field, or one only its protocol declares)."""
        if key in self.options:
            return self.options[key]
        value = getattr(self, key, None)
        return default if value is None else value

    @property
    def units(self) -> list[Suite]:
        """Returns the suites to run: the parts, or this suite itself."""
        return self.parts or [self]

    # -- reading --------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: Any, path: str | None = None) -> Suite:
        """Check and parse a suite mapping; ``path`` names it in errors.

        Returns:
            The :class:`Suite`.

        Raises:
            SuiteError: naming the file, the key and what is wrong.
        """
        where = path or "suite"
        if not isinstance(raw, dict):
            raise SuiteError(f"{where}: expected a mapping at the top level, got {S.show(raw)}")
        if "parts" not in raw:
            return cls._one(raw, where, path, raw)
        shared = {k: raw[k] for k in SHARED_KEYS if k in raw}
        top = S.mapping(
            {
                **COMMON_KEYS,
                "parts": S.list_of(S.mapping_of(lambda v, w: v)),
                "baselines": lambda v, w: v,
                "fewshot": lambda v, w: v,
                "label_efficiency": lambda v, w: v,
            },
            required=("name", "parts"),
        )
        top(raw, where)
        if not raw["parts"]:
            raise SuiteError(f"{where}: parts: the list is empty")
        parts = [
            cls._one({**shared, **p}, f"{where}: parts[{i}]", path, p)
            for i, p in enumerate(raw["parts"])
        ]
        names = [p.name for p in parts]
        if len(set(names)) < len(names):
            raise SuiteError(f"{where}: parts: names must be unique, got {names}")
        first = parts[0]
        return cls(
            name=S.text(raw["name"], f"{where}: name"),
            protocol="parts",
            embedders=sorted({e for p in parts for e in p.embedders}),
            detectors=sorted({d for p in parts for d in p.detectors}),
            seeds=sorted({s for p in parts for s in p.seeds}),
            bootstrap=first.bootstrap,
            calibration_folds=first.calibration_folds,
            notes=str(raw.get("notes", "")),
            path=path,
            raw=dict(raw),
            parts=parts,
        )

    @classmethod
    def _one(cls, raw: dict[str, Any], where: str, path: str | None, own: dict[str, Any]) -> Suite:
        if "protocol" not in raw:
            raise SuiteError(f"{where}: missing required key 'protocol'")
        S.text(raw["protocol"], f"{where}: protocol")
        if raw["protocol"] not in available_protocols():
            raise SuiteError(
                f"{where}: protocol {raw['protocol']!r} is not one of {available_protocols()}"
            )
        proto = get_protocol(raw["protocol"])
        keys = {**COMMON_KEYS, **proto.keys}
        for key in ("name", "detectors"):
            if key not in raw:
                raise SuiteError(f"{where}: missing required key {key!r}")
        checked = S.mapping(keys)(raw, where)
        checked.setdefault("embedders", ["none"])
        rows = [
            EmbedderRow(e)
            if isinstance(e, str)
            else EmbedderRow(
                e["embedder"], e.get("detectors"), e.get("baselines"), e.get("settings")
            )
            for e in checked["embedders"]
        ]
        fields = set(cls.__dataclass_fields__) - {"path", "raw", "parts", "rows", "options"}
        known = {k: v for k, v in checked.items() if k in fields}
        known["embedders"] = [r.spec for r in rows]
        options = {k: v for k, v in checked.items() if k not in fields}
        suite = cls(**known, path=path, raw=dict(own), rows=rows, options=options)
        proto.check(suite, where)
        return suite

    @classmethod
    def load(cls, path: str | Path) -> Suite:
        """Read and check a suite file (at most :data:`MAX_SUITE_BYTES`, no YAML aliases).

        Returns:
            The :class:`Suite`.

        Raises:
            SuiteError: naming the file and the problem.
        """
        path = Path(path)
        if not path.is_file():
            raise SuiteError(f"{path}: no such suite file")
        size = path.stat().st_size
        if size > MAX_SUITE_BYTES:
            raise SuiteError(f"{path}: {size} bytes; a suite file is at most {MAX_SUITE_BYTES}")
        try:
            raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_NoAliasLoader)  # noqa: S506
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise SuiteError(f"{path}: invalid YAML ({exc})") from exc
        return cls.from_dict(raw, str(path))

    # -- what a run depends on ------------------------------------------------------------------
    def protocol_settings(self) -> dict[str, dict[str, Any]]:
        """Returns, per part (suite name), every setting that decides splits and measurements:
        what a resumed run must share with the session that wrote its cells."""
        out = {}
        for unit in self.units:
            cfg = {
                "protocol": unit.protocol,
                "bootstrap": unit.bootstrap,
                "calibration_folds": unit.calibration_folds,
            }
            for key, value in unit.raw.items():
                if key in GRID_KEYS or key in cfg:
                    continue
                if key == "baselines" and isinstance(value, dict):
                    value = {k: v for k, v in value.items() if k != "detectors"}
                if key == "label_efficiency" and isinstance(value, dict):
                    value = {k: v for k, v in value.items() if k != "detector"}
                if key == "wild" and isinstance(value, dict):
                    value = {k: v for k, v in value.items() if k != "embedders"}
                cfg[key] = value
            for key in ("baselines", "fewshot", "label_efficiency"):
                if key not in unit.raw and getattr(unit, key, None):
                    val = getattr(unit, key)
                    cfg[key] = (
                        {k: v for k, v in val.items() if k not in ("detectors", "detector")}
                        if isinstance(val, dict)
                        else val
                    )
            out[unit.name] = cfg
        return out

    def fingerprints(self) -> dict[str, str]:
        """Returns a short hash of :meth:`protocol_settings` per part (stored with each cell)."""
        return {name: fingerprint(cfg) for name, cfg in self.protocol_settings().items()}


def fingerprint(settings: dict[str, Any]) -> str:
    """Returns the 16-hex SHA-256 of a settings mapping (key order does not matter)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict) and d:
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: d}


def changed_settings(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Returns ``"part: key.sub: old -> new"`` for each setting that differs (parts that exist
    in both; a part added to the suite is no change for the cells already run)."""
    out = []
    for part in old.keys() & new.keys():
        a, b = _flat(old[part]), _flat(new[part])
        for key in sorted(a.keys() | b.keys()):
            if a.get(key, "(unset)") != b.get(key, "(unset)"):
                out.append(f"{part}: {key}: {a.get(key, '(unset)')!r} -> {b.get(key, '(unset)')!r}")
    return out
