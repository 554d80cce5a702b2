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

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from oneclass.data.hashing import sha256_file
from oneclass.outputs import atomic_replace_dir
from oneclass.persist_arrays import (
    ModelFileError,
    read_json_bounded,
    read_npz_bounded,
    read_safetensors_bounded,
)
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

FORMAT = "oneclass-model"
#: 2: detector state as ``get_state()`` lays it out, embedder files; 1 is still read
FORMAT_VERSION = 2
HEADER = "oneclass.json"
ARRAYS = "arrays.npz"
TENSORS = "weights.safetensors"
EMBEDDER_CONFIG = "embedder.json"
EMBEDDER_TENSORS = "embedder.safetensors"
#: every file a model folder may hold (anything else makes it "not exactly a model")
MODEL_FILES = (HEADER, ARRAYS, TENSORS, EMBEDDER_CONFIG, EMBEDDER_TENSORS)

#: model kinds -> the class that rebuilds them (``from_bundle``); lazily imported, so this
#: module does not import the pipeline that imports it
MODEL_KINDS = Registry("model kind", {"pipeline": "oneclass.pipeline:Pipeline"})


def library_versions() -> dict[str, str]:
    """Returns the versions of the libraries that shape a saved model's numbers."""
    out = {"python": platform.python_version()}
    for name in ("oneclass", "numpy", "scikit-learn", "torch", "pyod", "safetensors"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def jsonable(value: Any, where: str) -> Any:
    """Returns ``value`` with numpy scalars made Python ones; refuses what JSON cannot hold.

    Raises:
        TypeError: a value that is not JSON (the field is named).
        ValueError: a NaN or infinite float (JSON has no such numbers).
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v, where) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        raise ValueError(f"{where} = {value!r}: a saved model holds finite numbers only")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"{where} = {value!r} cannot be saved as JSON")


# ---- where a model may be written -------------------------------------------------------------
def check_model_target(path: str | Path) -> Path:
    """Refuse to write a model where it would replace anything that is not exactly a model.

    Allowed: a path that does not exist, an empty folder, or a folder that holds only
    :data:`MODEL_FILES` with a valid ``oneclass.json``. Refused: the working folder or one above
    it (``--out .``), the home folder, a file, a link, a folder with any other entry.

    Returns:
        The path.

    Raises:
        FileExistsError: naming the reason; nothing is touched.
    """
    p = Path(path)
    resolved = p.resolve()
    protected = {Path.cwd().resolve(), *Path.cwd().resolve().parents, Path.home().resolve()}
    if resolved in protected:
        raise FileExistsError(
            f"{path}: is the working folder, a folder above it or the home "
            f"folder: a model is written into a folder of its own"
        )
    if p.is_symlink():
        raise FileExistsError(f"{path}: is a symbolic link: not replacing it")
    if not p.exists():
        return p
    if not p.is_dir():
        raise FileExistsError(f"{path}: exists and is not a folder: not replacing it")
    entries = sorted(e.name for e in p.iterdir())
    if not entries:
        return p
    foreign = [e for e in entries if e not in MODEL_FILES]
    if foreign or HEADER not in entries:
        what = f"it holds {', '.join(foreign[:5])}" if foreign else f"it has no {HEADER}"
        raise FileExistsError(
            f"{path}: exists and is not a oneclass model ({what}): "
            f"not replacing it; choose a new folder"
        )
    try:
        header = read_json_bounded(p / HEADER)
    except ModelFileError as exc:
        raise FileExistsError(f"{path}: not a oneclass model ({exc}): not replacing it") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise FileExistsError(f"{path}: {HEADER} is not a {FORMAT} file: not replacing it")
    return p


# ---- writing ----------------------------------------------------------------------------------
def _save_tensors(tensors: dict[str, Any], path: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path))


def write_bundle(
    path: str | Path,
    header: dict[str, Any],
    arrays: dict[str, np.ndarray],
    tensors: dict[str, Any] | None = None,
    *,
    embedder: tuple[dict[str, Any], dict[str, Any]] | None = None,
) -> Path:
    """Write a model folder atomically (built beside it, then swapped in).

    Args:
        path: the model folder (see :func:`check_model_target` for what may be replaced).
        header: JSON entries of ``oneclass.json`` (format, versions and files are added).
        arrays: numpy arrays for ``arrays.npz``.
        tensors: torch tensors for ``weights.safetensors``.
        embedder: ``(config, tensors)`` of a stateful embedder, or ``None``.

    Returns:
        The model folder.
    """
    path = check_model_target(path)
    full = {"format": FORMAT, "format_version": FORMAT_VERSION, "versions": library_versions()}
    head = jsonable({**full, **header}, "model")
    with atomic_replace_dir(path) as tmp:
        files: dict[str, str] = {}
        np.savez(tmp / ARRAYS, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]
        files[ARRAYS] = sha256_file(tmp / ARRAYS)
        if tensors:
            _save_tensors(tensors, tmp / TENSORS)
            files[TENSORS] = sha256_file(tmp / TENSORS)
        if embedder is not None:
            config, emb_tensors = embedder
            (tmp / EMBEDDER_CONFIG).write_text(json.dumps(jsonable(config, "embedder"), indent=2))
            files[EMBEDDER_CONFIG] = sha256_file(tmp / EMBEDDER_CONFIG)
            if emb_tensors:
                _save_tensors(emb_tensors, tmp / EMBEDDER_TENSORS)
                files[EMBEDDER_TENSORS] = sha256_file(tmp / EMBEDDER_TENSORS)
        (tmp / HEADER).write_text(json.dumps({**head, "files": files}, indent=2))
    return path


# ---- reading ----------------------------------------------------------------------------------
def read_bundle(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    """Read and verify a model folder.

    Returns:
        ``(header, arrays, tensors)``; a stateful embedder's files are in
        ``header["_embedder_state"]`` as ``(config, tensors)`` (not saved back).

    Raises:
        ModelFileError: missing, unreadable, too new, tampered or hostile content.
    """
    path = Path(path)
    head_file = path / HEADER
    if not head_file.is_file():
        raise ModelFileError(f"{path}: not a oneclass model (no {HEADER})")
    header = read_json_bounded(head_file)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{head_file}: not a {FORMAT} file")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(f"{head_file}: format version {version!r} is not a version number")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{head_file}: format version {version} is newer than this oneclass reads "
            f"({FORMAT_VERSION}); upgrade oneclass"
        )
    files = header.get("files", {})
    if not isinstance(files, dict):
        raise ModelFileError(f"{head_file}: field 'files' must be a mapping")
    for name, digest in files.items():
        if name not in MODEL_FILES or name == HEADER:
            raise ModelFileError(f"{head_file}: unexpected file entry {name!r}")
        f = path / name
        if not f.is_file():
            raise ModelFileError(f"{f}: missing")
        if not isinstance(digest, str) or sha256_file(f) != digest:
            raise ModelFileError(f"{f}: checksum mismatch (truncated or modified)")
    for name in (TENSORS, EMBEDDER_CONFIG, EMBEDDER_TENSORS):
        if (path / name).exists() and name not in files:
            raise ModelFileError(f"{path / name}: not listed in {HEADER} (no checksum)")
    arrays = read_npz_bounded(path / ARRAYS) if ARRAYS in files else {}
    tensors = read_safetensors_bounded(path / TENSORS) if TENSORS in files else {}
    if EMBEDDER_CONFIG in files:
        config = read_json_bounded(path / EMBEDDER_CONFIG)
        emb_tensors = (
            read_safetensors_bounded(path / EMBEDDER_TENSORS) if EMBEDDER_TENSORS in files else {}
        )
        header["_embedder_state"] = (config, emb_tensors)
    header["_path"] = str(path)
    return header, arrays, tensors


# ---- detectors --------------------------------------------------------------------------------
def detector_payload(det: Any) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    """A fitted detector as ``(header entry, arrays, tensors)``, through its public state API.

    Returns:
        ``({"detector", "params", "state"}, arrays, tensors)``.
    """
    state = det.get_state()
    entry = {
        "detector": det.name,
        "params": jsonable(det.get_params(deep=False), "params"),
        "state": jsonable(state.meta, "state"),
    }
    return entry, dict(state.arrays), dict(state.tensors)


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


def save_detector(det: Any, path: str | Path) -> Path:
    """Save a fitted detector as a model folder.

    Returns:
        The model folder.
    """
    entry, arrays, tensors = detector_payload(det)
    return write_bundle(path, {"kind": "detector", **entry}, arrays, tensors)


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
