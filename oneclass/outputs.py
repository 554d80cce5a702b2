"""Writing output files safely: atomically, and CSV cells that a spreadsheet will not execute.

Every file the pipeline, the CLI and the benchmark write goes through here:

- :func:`atomic_write_bytes` / :func:`atomic_write_text`: a temp file beside the target, fsync,
  then :func:`os.replace`, so a reader never sees half a file and a crash leaves the old one.
- :func:`atomic_replace_dir`: build a folder under a temp name beside the target, then swap it in.
- :func:`csv_safe_cell` / :func:`write_csv_atomic`: cells starting with ``= + - @`` (or a tab /
  carriage return) are prefixed with ``'`` so a spreadsheet shows them as text (CSV injection);
  numbers are left alone.

This module depends on the standard library only (pandas is imported lazily by
:func:`write_csv_atomic`), so any layer may import it.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_replace_dir",
    "csv_safe_cell",
    "csv_safe_frame",
    "write_csv_atomic",
    "temp_path_beside",
]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def temp_path_beside(path: str | os.PathLike[str], suffix: str = ".tmp") -> Path:
    """A fresh, unused name in the folder of ``path`` (same file system: a rename is atomic).

    Returns:
        ``<folder>/.<name>.<random><suffix>``; nothing is created.
    """
    p = Path(path)
    return p.parent / f".{p.name}.{uuid.uuid4().hex[:12]}{suffix}"


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file and a rename.

    Returns:
        The path written.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return p


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` through a temp file and a rename.

    Returns:
        The path written.
    """
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_with(path: str | os.PathLike[str], write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp_path)`` to produce a file under a temp name beside ``path``, then rename it.

    For writers that want a file name (PIL's ``Image.save``, numpy, safetensors).

    Returns:
        The path written.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_beside(p, suffix=p.suffix or ".tmp")
    try:
        write(tmp)
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return p


@contextlib.contextmanager
def atomic_replace_dir(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Build a folder under a temp name beside ``target``; on success swap it in for ``target``.

    Usage::

        with atomic_replace_dir(out) as tmp:
            (tmp / "model.json").write_text(...)

    The old ``target`` (when present) is renamed aside, the new one renamed in, and only then the
    old one removed, so a failure at any point leaves either the old or the new folder complete.
    The caller decides beforehand whether ``target`` may be replaced at all (this function
    replaces whatever is there). On an exception inside the block the temp folder is removed and
    ``target`` is untouched.

    Yields:
        The temp folder to fill.
    """
    dst = Path(target)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".new", dir=dst.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old: Path | None = None
    if dst.exists() or dst.is_symlink():
        old = temp_path_beside(dst, suffix=".old")
        os.replace(dst, old)
    try:
        os.replace(tmp, dst)
    except BaseException:
        if old is not None:
            os.replace(old, dst)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()


def csv_safe_cell(value: Any) -> Any:
    """Neutralise a cell that a spreadsheet would read as a formula.

    Returns:
        ``value`` unchanged unless it is a string starting with ``= + - @``, a tab or a carriage
        return; then the string prefixed with ``'``. Numbers (including negative ones) are not
        strings and stay as they are.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_safe_frame(df: Any) -> Any:
    """Returns a copy of a pandas DataFrame with every string cell (and column name) made safe."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or str(out[col].dtype) in ("string", "str"):
            out[col] = out[col].map(csv_safe_cell)
    out.columns = [csv_safe_cell(c) if isinstance(c, str) else c for c in out.columns]
    return out


def write_csv_atomic(df: Any, path: str | os.PathLike[str], **to_csv: Any) -> Path:
    """Write a pandas DataFrame as CSV, cells neutralised, through a temp file and a rename.

    Args:
        df: the frame.
        path: the target file.
        **to_csv: passed to :meth:`pandas.DataFrame.to_csv` (default ``index=False``).

    Returns:
        The path written.
    """
    to_csv.setdefault("index", False)
    buf = io.StringIO()
    csv_safe_frame(df).to_csv(buf, **to_csv)
    return atomic_write_text(path, buf.getvalue())


def write_csv_stream(df: Any, stream: Any, **to_csv: Any) -> None:
    """Write a pandas DataFrame as CSV to an open text stream (stdout), cells neutralised."""
    to_csv.setdefault("index", False)
    csv_safe_frame(df).to_csv(stream, **to_csv)
