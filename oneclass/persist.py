"""Saved models that are safe to load from strangers: JSON + ``.npz`` + ``.safetensors``.

A saved model is a folder::

    model/
      oneclass.json         format name and version, library versions, class, parameters, state
      arrays.npz            numpy arrays (read with allow_pickle=False)
      weights.safetensors   torch tensors, if any

``oneclass.json`` records the SHA-256 of the two array files, so a truncated or tampered file is
refused with a clear error. Nothing here unpickles: no pickle, joblib or ``torch.load``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "oneclass-model"
FORMAT_VERSION = 1
HEADER = "oneclass.json"
ARRAYS = "arrays.npz"
TENSORS = "weights.safetensors"


class ModelFileError(ValueError):
    """A saved model that cannot be loaded: missing, truncated, tampered or too new."""


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a saved model's numbers."""
    out = {"python": platform.python_version()}
    for name in ("oneclass", "numpy", "scikit-learn", "torch", "pyod", "safetensors"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _jsonable(value: Any, where: str) -> Any:
    """``value`` with numpy scalars turned into Python ones; refuse anything JSON cannot hold."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"{where} = {value!r} cannot be saved as JSON")


def write_bundle(path: str | Path, header: dict[str, Any],
                 arrays: dict[str, np.ndarray], tensors: dict[str, Any] | None = None) -> Path:
    """Write a model folder atomically (into a temporary folder, then renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        files = {}
        np.savez(tmp / ARRAYS, **{k: np.asarray(v) for k, v in arrays.items()})
        files[ARRAYS] = _sha256(tmp / ARRAYS)
        if tensors:
            from safetensors.torch import save_file

            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()},
                      str(tmp / TENSORS))
            files[TENSORS] = _sha256(tmp / TENSORS)
        full = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "versions": library_versions(), "files": files, **header}
        (tmp / HEADER).write_text(json.dumps(_jsonable(full, "model"), indent=2))
        if path.exists():
            if not (path / HEADER).exists():
                raise FileExistsError(f"{path} exists and is not a oneclass model: not replacing")
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return path


def read_bundle(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    """Read and verify a model folder: (header, arrays, tensors)."""
    path = Path(path)
    head_file = path / HEADER
    if not head_file.is_file():
        raise ModelFileError(f"{path}: not a oneclass model (no {HEADER})")
    try:
        header = json.loads(head_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{head_file}: unreadable JSON ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{head_file}: not a {FORMAT} file")
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{head_file}: format version {version} is newer than this oneclass reads "
            f"({FORMAT_VERSION}); upgrade oneclass"
        )
    files = header.get("files", {})
    for name, digest in files.items():
        if name not in (ARRAYS, TENSORS):
            raise ModelFileError(f"{head_file}: unexpected file entry {name!r}")
        f = path / name
        if not f.is_file():
            raise ModelFileError(f"{f}: missing")
        if _sha256(f) != digest:
            raise ModelFileError(f"{f}: checksum mismatch (truncated or modified)")
    arrays: dict[str, np.ndarray] = {}
    if ARRAYS in files:
        with np.load(path / ARRAYS, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    tensors: dict[str, Any] = {}
    if TENSORS in files:
        from safetensors.torch import load_file

        tensors = load_file(str(path / TENSORS))
    return header, arrays, tensors


def _split_prefixed(d: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix):]: v for k, v in d.items() if k.startswith(prefix)}


def detector_payload(det) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    """A fitted detector as (header entry, arrays, tensors), keys prefixed to keep parts apart."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(det, "threshold_")
    own, base = det._get_state(), det._base_state()
    entry = {"detector": det.name, "params": _jsonable(det.get_params(deep=False), "params"),
             "state": own.meta, "base_state": base.meta}
    arrays = {**{f"base/{k}": v for k, v in base.arrays.items()},
              **{f"det/{k}": v for k, v in own.arrays.items()}}
    tensors = {f"det/{k}": v for k, v in own.tensors.items()}
    return entry, arrays, tensors


def detector_from_payload(entry: dict[str, Any], arrays: dict[str, np.ndarray],
                          tensors: dict[str, Any]):
    """Rebuild a detector from :func:`detector_payload`'s output."""
    from oneclass.detect.base import State
    from oneclass.detect.registry import make_detector

    det = make_detector(entry["detector"], **entry["params"])
    det._set_base_state(State(meta=entry["base_state"], arrays=_split_prefixed(arrays, "base/")))
    det._set_state(State(meta=entry["state"], arrays=_split_prefixed(arrays, "det/"),
                         tensors=_split_prefixed(tensors, "det/")))
    return det


def save_detector(det, path: str | Path) -> Path:
    """Save a fitted detector as a model folder."""
    entry, arrays, tensors = detector_payload(det)
    return write_bundle(path, {"kind": "detector", **entry}, arrays, tensors)


def load(path: str | Path):
    """Load a saved detector or pipeline; refuses anything that is not a valid oneclass model."""
    header, arrays, tensors = read_bundle(path)
    kind = header.get("kind")
    try:
        if kind == "detector":
            return detector_from_payload(header, arrays, tensors)
        if kind == "pipeline":
            from oneclass.pipeline import Pipeline

            return Pipeline._from_bundle(header, arrays, tensors)
    except (KeyError, TypeError) as exc:
        raise ModelFileError(f"{path}: incomplete model description ({exc})") from exc
    except ValueError as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"{path}: {exc}") from exc
    raise ModelFileError(f"{path}: unknown model kind {kind!r}")
