"""Benchmark reports: one self-contained HTML file and/or Markdown, from run folders.

``write_reports([run], "report.html", "report.md")`` writes each file in the format its suffix
names (``.html``/``.htm``: HTML; ``.md``/``.markdown``: Markdown); ``write_report(runs, html,
md)`` is the same with the two roles fixed (and checked against the suffixes, so Markdown never
lands in an ``.html`` file or the other way round). With several runs the report also compares
them cell by cell. Files are written to a temporary name and renamed.

Modules: :mod:`.runs` (reading run folders), :mod:`.tables` (numbers), :mod:`.plots` (figures),
:mod:`.gallery` (thumbnails of the worst mistakes, with anomaly maps for patch embedders),
:mod:`.document` (what the report says; :mod:`.sections` and :mod:`.problems` hold its parts),
:mod:`.html` and :mod:`.markdown` (rendering).
"""

from __future__ import annotations

from pathlib import Path

from oneclass.outputs import atomic_write_text
from oneclass.report import html, markdown
from oneclass.report.blocks import Block
from oneclass.report.document import build
from oneclass.report.runs import Run, RunFormatError, load_run, load_runs

HTML_SUFFIXES = (".html", ".htm")
MARKDOWN_SUFFIXES = (".md", ".markdown")


def report_format(path: str | Path) -> str:
    """Returns ``"html"`` or ``"markdown"``: the format a report file's suffix names.

    Raises:
        ValueError: any other suffix (the file is named).
    """
    suffix = Path(path).suffix.lower()
    if suffix in HTML_SUFFIXES:
        return "html"
    if suffix in MARKDOWN_SUFFIXES:
        return "markdown"
    raise ValueError(
        f"{path}: a report file ends in {' or '.join(HTML_SUFFIXES)} (HTML) or "
        f"{' or '.join(MARKDOWN_SUFFIXES)} (Markdown)"
    )


def render(blocks: list[Block], path: str | Path, *, assets: str | Path | None = None) -> str:
    """Returns the report text of ``blocks`` in the format of ``path``'s suffix (Markdown
    figures go to ``assets`` as PNG files)."""
    if report_format(path) == "html":
        return html.render(blocks)
    return markdown.render(blocks, Path(path), Path(assets) if assets else None)


def write_reports(
    run_dirs: str | Path | list[str | Path],
    *outputs: str | Path,
    assets: str | Path | None = None,
    top_k: int = 5,
    gallery_k: int = 12,
) -> list[Path]:
    """Write the report of one or more run folders to each of ``outputs``, each in the format
    its suffix names.

    Args:
        run_dirs: run folders (several: a comparison).
        outputs: report files, e.g. ``"report.html"``, ``"report.md"``.
        assets: a folder for the Markdown's figures as PNG files (relative links); without it
            the Markdown has no images.
        top_k: configurations drawn in ROC curves.
        gallery_k: thumbnails per gallery.

    Returns:
        The files written.

    Raises:
        ValueError: no output, an output of an unknown suffix, or two outputs that are one file.
    """
    if not outputs:
        raise ValueError("write_reports needs at least one output file")
    paths = [Path(p) for p in outputs]
    for p in paths:
        report_format(p)
    if len({p.resolve() for p in paths}) < len(paths):
        raise ValueError(f"report outputs name one file twice: {[str(p) for p in paths]}")
    if isinstance(run_dirs, str | Path):
        run_dirs = [run_dirs]
    runs = load_runs(list(run_dirs))
    blocks = build(runs, top_k=top_k, gallery_k=gallery_k)
    for p in paths:
        atomic_write_text(p, render(blocks, p, assets=assets))
    return paths


def write_report(
    run_dirs: str | Path | list[str | Path],
    out_html: str | Path,
    out_md: str | Path | None = None,
    *,
    assets: str | Path | None = None,
    top_k: int = 5,
    gallery_k: int = 12,
) -> Path:
    """Write the HTML report (and optionally the Markdown one) of one or more run folders.

    ``out_html`` must end in ``.html``/``.htm`` and ``out_md`` in ``.md``/``.markdown``: a
    Markdown report never overwrites an HTML file (see :func:`write_reports`).

    Returns:
        The HTML file's path.

    Raises:
        ValueError: a suffix that does not match its role.
    """
    if report_format(out_html) != "html":
        raise ValueError(
            f"{out_html}: the HTML report needs an .html name (for Markdown use "
            "out_md, or write_reports)"
        )
    if out_md is not None and report_format(out_md) != "markdown":
        raise ValueError(f"{out_md}: the Markdown report needs an .md name")
    outs = [out_html] + ([out_md] if out_md is not None else [])
    return write_reports(run_dirs, *outs, assets=assets, top_k=top_k, gallery_k=gallery_k)[0]


__all__ = [
    "Run",
    "RunFormatError",
    "load_run",
    "load_runs",
    "render",
    "report_format",
    "write_report",
    "write_reports",
]
