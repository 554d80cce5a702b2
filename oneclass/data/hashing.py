"""SHA-256 of bytes and of files: the one content hash of the project (cache keys, manifest and
model-file checksums)."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["sha256_bytes", "sha256_file"]

_BLOCK = 1 << 20


def sha256_bytes(data: bytes | bytearray | memoryview) -> str:
    """Hash bytes.

    Returns:
        The SHA-256 digest of ``data``, 64 lowercase hex characters.
    """
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hash a file's content, read in 1 MiB blocks (bounded memory for any size).

    Returns:
        The SHA-256 digest of the file's bytes, 64 lowercase hex characters.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()
