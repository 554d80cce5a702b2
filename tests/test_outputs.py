"""Output files: atomic writes and CSV cells a spreadsheet will not run."""

from __future__ import annotations

import pandas as pd
import pytest

from oneclass.outputs import (
    atomic_replace_dir,
    atomic_write_text,
    atomic_write_with,
    csv_safe_cell,
    write_csv_atomic,
)


def test_csv_cells_that_look_like_formulas_are_neutralised(tmp_path):
    df = pd.DataFrame(
        {
            "path": ['=HYPERLINK("x")', "+1", "-cmd", "@SUM(A1)", "ok.jpg", "\tx"],
            "score": [-1.5, 2.0, -3.0, 0.0, 1.0, 2.0],
        }
    )
    out = write_csv_atomic(df, tmp_path / "s.csv")
    back = pd.read_csv(out)
    assert back["path"].tolist() == [
        '\'=HYPERLINK("x")',
        "'+1",
        "'-cmd",
        "'@SUM(A1)",
        "ok.jpg",
        "'\tx",
    ]
    assert back["score"].tolist() == [-1.5, 2.0, -3.0, 0.0, 1.0, 2.0]  # numbers untouched
    assert csv_safe_cell(-2) == -2 and csv_safe_cell("a=b") == "a=b"
    assert [p.name for p in tmp_path.iterdir()] == ["s.csv"]  # no temp file left


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "f.txt"
    atomic_write_text(target, "old")

    def half_then_crash(tmp):
        tmp.write_text("half of the new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write_with(target, half_then_crash)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_atomic_replace_dir_swaps_or_leaves_untouched(tmp_path):
    target = tmp_path / "model"
    with atomic_replace_dir(target) as tmp:
        (tmp / "a").write_text("1")
    assert (target / "a").read_text() == "1"
    with pytest.raises(RuntimeError), atomic_replace_dir(target) as tmp:
        (tmp / "a").write_text("2")
        raise RuntimeError("crash while writing")
    assert (target / "a").read_text() == "1"
    with atomic_replace_dir(target) as tmp:
        (tmp / "b").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
