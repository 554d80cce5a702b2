"""``oneclass report``: the HTML (and Markdown) report of one run, or a comparison of several."""

from __future__ import annotations

import argparse
from pathlib import Path

from oneclass.cli.common import CliError

NAME = "report"
HELP = "report one run, or compare several"
_MD = (".md", ".markdown")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the options of ``report``."""
    p.add_argument("runs", nargs="+", help="run folders")
    p.add_argument(
        "--out",
        default="report.html",
        help="report file: .html (Markdown beside it) or .md (HTML beside it)",
    )
    p.add_argument("--markdown", help="Markdown file (default: --out with the suffix .md)")


def output_paths(out: str | Path, markdown: str | Path | None = None) -> tuple[Path, Path]:
    """Decide where the HTML and the Markdown go; they are never the same file.

    Returns:
        ``(html, md)``. ``--out x.md`` writes the Markdown to ``x.md`` and the HTML to ``x.html``;
        ``--out x.html`` writes the HTML there and the Markdown to ``--markdown`` or ``x.md``.

    Raises:
        CliError: the two would be one file.
    """
    out = Path(out)
    if out.suffix.lower() in _MD:
        md = Path(markdown) if markdown else out
        html = out.with_suffix(".html")
        if markdown and Path(markdown) != out:
            raise CliError(f"--out {out} is a Markdown file and --markdown names another")
    else:
        html = out
        md = Path(markdown) if markdown else out.with_suffix(".md")
    if html.resolve() == md.resolve():
        raise CliError(f"the HTML and the Markdown report would both be {html}")
    return html, md


def run(a: argparse.Namespace) -> int:
    """Run ``report``; returns the exit status."""
    from oneclass.report import write_report

    html, md = output_paths(a.out, a.markdown)
    print(f"report: {write_report([Path(r) for r in a.runs], html, md)} and {md}")
    return 0
