"""The saved-model folder format: JSON + ``.npz`` + ``.safetensors``, written atomically.

This module knows the files of a model folder (see :mod:`oneclass.persist` for what a folder
holds and how a model is rebuilt from it), writes them through a temp folder that is swapped in
(:func:`write_bundle`), refuses to replace anything that is not exactly a oneclass model
(:func:`check_model_target`), and reads them back with sizes bounded before anything is read and
checksums verified (:func:`read_bundle`). It knows nothing of detectors or pipelines, so every
layer that saves (detectors, pipelines) can use it.
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
