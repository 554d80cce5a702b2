"""Identifying CLIP weights on disk: digests of weight files and model folders (they pin the
``clip`` embedder's name, so the embedding cache never mixes two sets of weights)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | Path) -> str:
    """Returns the SHA-256 (hex) of a file (memoised on path, size and modification time)."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def weights_in(folder: Path) -> list[Path]:
    """Returns the weight files (.safetensors, .bin, .pt, .pth) directly in ``folder``, sorted."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix in (".safetensors", ".bin", ".pt", ".pth") and p.is_file()
    )


def folder_digest(folder: Path) -> str:
    """Returns a SHA-256 digest (hex) of a model folder: its config files and weights."""
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        if p.is_file() and (p.suffix == ".json" or p in weights_in(folder)):
            h.update(p.name.encode() + b"\0" + file_digest(p).encode())
    return h.hexdigest()
