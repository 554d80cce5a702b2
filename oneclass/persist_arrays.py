"""Reading a saved model's array files with bounds that the file cannot choose.

A model folder may come from a stranger. Before anything is decompressed or allocated:

- ``.npz``: every member's declared (uncompressed) size, its ``.npy`` header (shape, dtype) and
  the two together are checked; object arrays are refused (nothing is ever unpickled); the sum of
  declared sizes may not exceed the zip's own size by more than :data:`MAX_EXPANSION` (a 2 MB
  file cannot expand to gigabytes), nor ``max_bytes`` in all.
- ``.safetensors``: the header length is bounded, the header is parsed as JSON, and every
  tensor's dtype, shape and byte range are checked against each other and the file's size.
- JSON files are size-bounded before parsing, and ``NaN``/``Infinity`` literals are refused.

Every refusal is a :class:`ModelFileError` that names the file and the member or field.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MAX_EXPANSION",
    "MAX_JSON_BYTES",
    "MAX_TOTAL_BYTES",
    "ModelFileError",
    "read_json_bounded",
    "read_npz_bounded",
    "read_safetensors_bounded",
]

#: largest JSON file of a model folder (header, embedder config)
MAX_JSON_BYTES = 16 << 20
#: default cap on all arrays of one file, in bytes
MAX_TOTAL_BYTES = 32 << 30
#: declared uncompressed bytes may exceed the file's size by at most this factor (+ 1 MiB)
MAX_EXPANSION = 4
#: most members (arrays) in one npz / tensors in one safetensors file
MAX_MEMBERS = 100_000
_MAX_SAFETENSORS_HEADER = 64 << 20
_ARRAY_KINDS = "biufcUS"  # bool, ints, floats, complex, fixed-width strings: no objects
_ST_DTYPES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}


class ModelFileError(ValueError):
    """A saved model that cannot be loaded: missing, truncated, tampered, hostile or too new."""


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed (numbers must be finite)")


def read_json_bounded(path: Path, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parse a JSON file of at most ``max_bytes``, refusing ``NaN``/``Infinity`` literals.

    Returns:
        The parsed value.

    Raises:
        ModelFileError: too large, not UTF-8, not JSON, or holding a non-finite literal.
    """
    size = path.stat().st_size
    if size > max_bytes:
        raise ModelFileError(
            f"{path}: {size} bytes, more than the {max_bytes} a model's JSON may have"
        )
    try:
        return json.loads(path.read_bytes().decode("utf-8"), parse_constant=_refuse_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelFileError(f"{path}: unreadable JSON ({exc})") from exc


def _npy_header(fh: Any, where: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """``(shape, fortran order, dtype, header bytes)`` of the ``.npy`` stream ``fh``."""
    try:
        major, minor = np.lib.format.read_magic(fh)
        if (major, minor) == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif major in (2, 3):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"npy format version {major}.{minor}")
    except ValueError as exc:
        msg = str(exc)
        if "allow_pickle" in msg or "object" in msg.lower():
            msg = f"Python objects (never unpickled; allow_pickle=False): {msg}"
        raise ModelFileError(f"{where}: bad array header ({msg})") from exc
    return tuple(int(s) for s in shape), bool(fortran), np.dtype(dtype), int(fh.tell())


def _read_data(
    fh: Any, shape: tuple[int, ...], fortran: bool, dtype: np.dtype, where: str
) -> np.ndarray:
    """Read exactly the array's bytes from ``fh`` into a fresh array (no intermediate copy)."""
    flat = np.empty(math.prod(shape), dtype=dtype)
    raw: Any = flat.view(np.uint8).reshape(-1)
    view = memoryview(raw) if flat.nbytes else memoryview(b"")
    got = 0
    while got < flat.nbytes:
        n = fh.readinto(view[got:])
        if not n:
            raise ModelFileError(f"{where}: truncated ({got} of {flat.nbytes} bytes)")
        got += n
    return flat.reshape(shape, order="F" if fortran else "C")


def read_npz_bounded(path: Path, max_bytes: int = MAX_TOTAL_BYTES) -> dict[str, np.ndarray]:
    """Read an ``.npz`` file after checking every member's declared and real sizes.

    Args:
        path: the file.
        max_bytes: most bytes all arrays together may take.

    Returns:
        name -> array.

    Raises:
        ModelFileError: naming the file and member that is too large, inconsistent, an object
            array, or unreadable.
    """
    file_size = path.stat().st_size
    budget = min(max_bytes, MAX_EXPANSION * file_size + (1 << 20))
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelFileError(f"{path}: not a readable npz file ({exc})") from exc
    out: dict[str, np.ndarray] = {}
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ModelFileError(f"{path}: {len(infos)} members (at most {MAX_MEMBERS})")
        declared = sum(i.file_size for i in infos)
        if declared > budget:
            raise ModelFileError(
                f"{path}: its members declare {declared} bytes uncompressed, more than this "
                f"{file_size}-byte file may expand to ({budget} bytes): refused"
            )
        names = set()
        for info in infos:
            where = f"{path}: member {info.filename!r}"
            if not info.filename.endswith(".npy") or info.is_dir():
                raise ModelFileError(f"{where}: not an .npy array")
            if info.flag_bits & 0x1:
                raise ModelFileError(f"{where}: encrypted")
            try:
                with zf.open(info) as fh:
                    shape, fortran, dtype, header = _npy_header(fh, where)
                    if dtype.hasobject or dtype.kind not in _ARRAY_KINDS:
                        raise ModelFileError(
                            f"{where}: dtype {dtype} is not allowed (Python "
                            f"objects are never unpickled; allow_pickle=False)"
                        )
                    nbytes = math.prod(shape) * dtype.itemsize
                    if header + nbytes != info.file_size:
                        raise ModelFileError(
                            f"{where}: header says {shape} {dtype} ({nbytes} bytes) but the "
                            f"member holds {info.file_size - header} bytes"
                        )
                    arr = _read_data(fh, shape, fortran, dtype, where)
            except ModelFileError:
                raise
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                raise ModelFileError(f"{where}: unreadable ({exc})") from exc
            name = info.filename[: -len(".npy")]
            if name in names:
                raise ModelFileError(f"{where}: duplicate member")
            names.add(name)
            out[name] = arr
    return out


def read_safetensors_bounded(path: Path, max_bytes: int = MAX_TOTAL_BYTES) -> dict[str, Any]:
    """Read a ``.safetensors`` file as torch tensors after checking its header against its size.

    Returns:
        name -> tensor (on the CPU).

    Raises:
        ModelFileError: naming the file and tensor whose header is inconsistent or too large.
    """
    size = path.stat().st_size
    if size > max_bytes:
        raise ModelFileError(f"{path}: {size} bytes, more than the {max_bytes} allowed")
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise ModelFileError(f"{path}: truncated safetensors file")
        n = int.from_bytes(head, "little")
        if n > min(_MAX_SAFETENSORS_HEADER, size - 8):
            raise ModelFileError(f"{path}: safetensors header of {n} bytes does not fit the file")
        try:
            header = json.loads(fh.read(n).decode("utf-8"), parse_constant=_refuse_constant)
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
            raise ModelFileError(f"{path}: unreadable safetensors header ({exc})") from exc
    if not isinstance(header, dict) or len(header) > MAX_MEMBERS + 1:
        raise ModelFileError(f"{path}: safetensors header is not a mapping of tensors")
    data_size = size - 8 - n
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        where = f"{path}: tensor {name!r}"
        if not isinstance(spec, dict):
            raise ModelFileError(f"{where}: malformed entry")
        dtype, shape, offsets = spec.get("dtype"), spec.get("shape"), spec.get("data_offsets")
        if dtype not in _ST_DTYPES:
            raise ModelFileError(f"{where}: dtype {dtype!r} is not allowed")
        if not (isinstance(shape, list) and all(isinstance(s, int) and s >= 0 for s in shape)):
            raise ModelFileError(f"{where}: bad shape {shape!r}")
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) for o in offsets)
            and 0 <= offsets[0] <= offsets[1] <= data_size
        ):
            raise ModelFileError(f"{where}: byte range {offsets!r} is outside the file")
        if offsets[1] - offsets[0] != math.prod(shape) * _ST_DTYPES[dtype]:
            raise ModelFileError(
                f"{where}: shape {shape} {dtype} does not match its {offsets[1] - offsets[0]} bytes"
            )
    try:
        from safetensors.torch import load_file

        return dict(load_file(str(path)))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise ModelFileError(f"{path}: unreadable safetensors file ({exc})") from exc
