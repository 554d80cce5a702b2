"""Benchmark reports: one self-contained HTML file (and optionally Markdown) from run folders.

``write_report([run])`` reports one run; with several runs it also compares them cell by cell.
Modules: :mod:`.runs` (reading run folders), :mod:`.tables` (numbers), :mod:`.plots` (figures),
:mod:`.gallery` (thumbnails of the worst mistakes), :mod:`.document` (what the report says),
:mod:`.html` and :mod:`.markdown` (rendering).
"""

from __future__ import annotations

from pathlib import Path

from oneclass.report import html, markdown
from oneclass.report.document import build
from oneclass.report.runs import Run, RunFormatError, load_run, load_runs


def write_report(run_dirs: str | Path | list[str | Path], out_html: str | Path,
                 out_md: str | Path | None = None, *, assets: str | Path | None = None,
                 top_k: int = 5, gallery_k: int = 12) -> Path:
    """Write the HTML report of one or more run folders; returns the HTML file's path.

    ``out_md``: also write the Markdown version (tables only). ``assets``: a folder for the
    Markdown's figures as PNG files (relative links); without it the Markdown has no images.
    ``top_k``: configurations drawn in ROC curves; ``gallery_k``: thumbnails per gallery.
    """
    if isinstance(run_dirs, str | Path):
        run_dirs = [run_dirs]
    runs = load_runs(list(run_dirs))
    blocks = build(runs, top_k=top_k, gallery_k=gallery_k)
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html.render(blocks), encoding="utf-8")
    if out_md is not None:
        md = Path(out_md)
        md.parent.mkdir(parents=True, exist_ok=True)
        md.write_text(markdown.render(blocks, md, Path(assets) if assets else None),
                      encoding="utf-8")
    return out


__all__ = ["Run", "RunFormatError", "load_run", "load_runs", "write_report"]
