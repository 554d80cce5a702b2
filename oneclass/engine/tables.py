"""Tables written as rows arrive: CSV or Parquet, constant memory, atomic at the end.

A :class:`StreamingTable` writes each batch of rows to a temporary file beside the target as
soon as the batch is scored, so memory holds one batch, not the collection; :meth:`close`
renames the finished file into place (a reader never sees half a table, and an interrupted run
leaves the previous file, if any, untouched). CSV cells that a spreadsheet would read as a
formula are neutralised (:func:`oneclass.outputs.csv_safe_frame`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import pandas as pd

from oneclass.outputs import csv_safe_frame, temp_path_beside

FORMATS = ("csv", "parquet")


def table_format(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """Returns ``fmt``, else ``"parquet"`` for a ``.parquet``/``.pq`` path, else ``"csv"``.

    Raises:
        ValueError: an unknown ``fmt``.
    """
    if fmt is None:
        return "parquet" if Path(path).suffix.lower() in (".parquet", ".pq") else "csv"
    if fmt not in FORMATS:
        raise ValueError(f"unknown table format {fmt!r}; use one of {', '.join(FORMATS)}")
    return fmt


class StreamingTable:
    """Append pandas batches to a CSV or Parquet file; rename it into place on :meth:`close`.

    Args:
        path: the target file.
        fmt: ``"csv"`` or ``"parquet"`` (default: from the suffix).

    The first batch fixes the columns; later batches are reordered to them (a missing column is
    written empty).
    """

    def __init__(self, path: str | os.PathLike[str], fmt: str | None = None):
        self.path = Path(path)
        self.fmt = table_format(self.path, fmt)
        self.rows = 0
        self.columns: list[str] | None = None
        self._tmp = temp_path_beside(self.path, suffix=".partial")
        self._csv: TextIO | None = None
        self._parquet: Any = None
        self._schema: Any = None

    def write(self, batch: pd.DataFrame) -> None:
        """Append the rows of ``batch`` (may be empty)."""
        if self.columns is None:
            self.columns = [str(c) for c in batch.columns]
            self.path.parent.mkdir(parents=True, exist_ok=True)
        batch = batch.reindex(columns=self.columns)
        if self.fmt == "csv":
            if self._csv is None:
                self._csv = open(self._tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115
                csv_safe_frame(batch.iloc[:0]).to_csv(self._csv, index=False)
            csv_safe_frame(batch).to_csv(self._csv, index=False, header=False)
        else:
            self._write_parquet(batch)
        self.rows += len(batch)

    def _write_parquet(self, batch: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._parquet is None:
            table = pa.Table.from_pandas(batch, preserve_index=False)
            self._schema = table.schema
            self._parquet = pq.ParquetWriter(str(self._tmp), self._schema)
        else:
            table = pa.Table.from_pandas(batch, schema=self._schema, preserve_index=False)
        self._parquet.write_table(table)

    def close(self) -> Path:
        """Finish the file and rename it into place.

        Returns:
            The target path (an empty table with no batch written gets a header-only CSV, or no
            Parquet file at all).
        """
        if self._csv is not None:
            self._csv.flush()
            os.fsync(self._csv.fileno())
            self._csv.close()
            self._csv = None
        elif self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        elif self.fmt == "csv":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._tmp.write_text(",".join(self.columns or []) + "\n", encoding="utf-8")
        else:
            return self.path
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the partial file; the target is left as it was."""
        if self._csv is not None:
            self._csv.close()
            self._csv = None
        if self._parquet is not None:
            with contextlib.suppress(Exception):
                self._parquet.close()
            self._parquet = None
        with contextlib.suppress(OSError):
            self._tmp.unlink()

    def __enter__(self) -> StreamingTable:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
