"""Saved models that are safe to load from strangers: JSON + ``.npz`` + ``.safetensors``.

A saved model is a folder::

    model/
      oneclass.json          format name and version, library versions, class, parameters, state
      arrays.npz             numpy arrays (never unpickled)
      weights.safetensors    the detector's torch tensors, if any
      embedder.json          a stateful (e.g. fine-tuned) embedder's config, if any
      embedder.safetensors   its tensors

``oneclass.json`` records the SHA-256 of every other file, so a truncated or tampered file is
refused. Nothing here unpickles (no pickle, joblib or ``torch.load``), array sizes are bounded
before anything is read (:mod:`oneclass.persist_arrays`), NaN/inf and out-of-range values are
refused with the file and field named, and a model file never turns on downloads: what a model
*kind* means is looked up in registries, never taken as code from the file.

Writing replaces a model folder atomically, and only a folder that is exactly a oneclass model
(:func:`check_model_target`): nothing of the user's is ever deleted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from oneclass.bundle import (
    ARRAYS,
    EMBEDDER_CONFIG,
    EMBEDDER_TENSORS,
    FORMAT,
    FORMAT_VERSION,
    HEADER,
    MODEL_FILES,
    TENSORS,
    check_model_target,
    jsonable,
    library_versions,
    read_bundle,
    write_bundle,
)
from oneclass.data.hashing import sha256_file
from oneclass.detect.saving import detector_payload, save_detector
from oneclass.persist_arrays import ModelFileError
from oneclass.registry import Registry

__all__ = [
    "ARRAYS",
    "EMBEDDER_CONFIG",
    "EMBEDDER_TENSORS",
    "FORMAT",
    "FORMAT_VERSION",
    "HEADER",
    "MODEL_FILES",
    "TENSORS",
    "ModelFileError",
    "jsonable",
    "check_model_target",
    "detector_from_payload",
    "detector_payload",
    "library_versions",
    "load",
    "read_bundle",
    "save_detector",
    "sha256_file",
    "write_bundle",
]

#: what a saved folder's ``kind`` may be, beside ``"detector"``: classes with ``from_bundle``
MODEL_KINDS = Registry("model kind", {"pipeline": "oneclass.pipeline:Pipeline"})


def _upgrade_v1(entry: dict[str, Any], arrays: dict[str, np.ndarray], tensors: dict[str, Any]):
    """Format 1 kept ``state``/``base_state`` and ``det/``/``base/`` prefixes."""
    meta = {"model": entry["state"], "calibration": entry["base_state"]}

    def renamed(d: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for k, v in d.items():
            if k.startswith("base/"):
                out["calibration/" + k[5:]] = v
            elif k.startswith("det/"):
                out["model/" + k[4:]] = v
            else:
                out[k] = v
        return out

    return meta, renamed(arrays), renamed(tensors)


def detector_from_payload(
    entry: dict[str, Any], arrays: dict[str, np.ndarray], tensors: dict[str, Any]
) -> Any:
    """Rebuild a detector from :func:`detector_payload`'s output (format 1 or 2).

    Returns:
        The fitted detector.

    Raises:
        KeyError, TypeError, ValueError: a missing or malformed entry (the caller names the file).
    """
    from oneclass.detect.registry import make_detector
    from oneclass.detect.state import State

    if not isinstance(entry.get("params"), dict):
        raise TypeError("params must be a mapping")
    if "base_state" in entry:
        meta, arrays, tensors = _upgrade_v1(entry, arrays, tensors)
    else:
        meta = entry["state"]
    det = make_detector(str(entry["detector"]), **entry["params"])
    det.set_state(State(meta=meta, arrays=arrays, tensors=tensors))
    threshold = float(det.threshold_)
    if not np.isfinite(threshold):
        raise ValueError(f"field 'state.calibration.threshold_' = {threshold}: must be finite")
    return det


def load(path: str | Path, **options: Any) -> Any:
    """Load a saved detector or pipeline; refuses anything that is not a valid oneclass model.

    Args:
        path: the model folder.
        **options: for a pipeline, options of the user's own (``embedder_options``: e.g.
            ``{"allow_download": True}``, ``cache``, ``progress``); a model file never sets them.

    Returns:
        A fitted detector or :class:`oneclass.pipeline.Pipeline`.

    Raises:
        ModelFileError: naming the file and the field that is wrong.
    """
    header, arrays, tensors = read_bundle(path)
    kind = header.get("kind")
    where = Path(path) / HEADER
    if kind == "detector" and options:
        raise TypeError(f"options {sorted(options)} apply to pipelines only")
    try:
        if kind == "detector":
            return detector_from_payload(header, arrays, tensors)
        if isinstance(kind, str) and kind in MODEL_KINDS:
            cls: Any = MODEL_KINDS.resolve(kind)
            return cls.from_bundle(header, arrays, tensors, **options)
    except ModelFileError:
        raise
    except KeyError as exc:
        raise ModelFileError(f"{where}: incomplete model description (missing {exc})") from exc
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{where}: {exc}") from exc
    raise ModelFileError(f"{where}: unknown model kind {kind!r}")
