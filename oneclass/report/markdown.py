"""Render report blocks as Markdown (GitHub flavour): the same tables, no embedded images.

Figures are written as PNG files into ``assets`` (and linked relative to the Markdown file) only
when an assets folder is given; gallery thumbnails never are (the photos belong to their owners):
the Markdown lists those images by name, score and family instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from oneclass.report.blocks import (
    Block,
    Details,
    Figure,
    Gallery,
    Heading,
    KeyValues,
    Para,
    Table,
)


def _cell(v: str) -> str:
    return v.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def table(t: Table) -> str:
    """A pipe table; the best values of a column in bold."""
    out = []
    if t.caption:
        out.append(f"**{_cell(t.caption)}**\n")
    out.append("| " + " | ".join(_cell(c) for c in t.columns) + " |")
    out.append("|" + "|".join("---:" if t.is_numeric(j) else "---"
                              for j in range(len(t.columns))) + "|")
    for i, row in enumerate(t.rows):
        cells = [f"**{_cell(v)}**" if t.is_bold(i, j) and v.strip() else _cell(v)
                 for j, v in enumerate(row)]
        out.append("| " + " | ".join(cells) + " |")
    if t.note:
        out.append(f"\n_{_cell(t.note)}_")
    return "\n".join(out)


def _gallery(g: Gallery) -> str:
    rows = [[t.lines[-1] if t.lines else "", *(t.lines[1:2] or [""]), t.lines[0] if t.lines
             else ""] for t in g.thumbs]
    t = Table(["image", "family", "score"], rows, numeric=[False, False, True],
              caption=g.title, note=g.note)
    return table(t) if rows else f"**{_cell(g.title)}**\n\nNo images to show."


def _block(b: Block, assets: Path | None, md_dir: Path) -> str:
    if isinstance(b, Heading):
        return f"{'#' * b.level} {b.text}"
    if isinstance(b, Para):
        return f"> {b.text}" if b.kind == "warn" else (f"_{b.text}_" if b.kind == "note"
                                                        else b.text)
    if isinstance(b, KeyValues):
        return table(Table(["what", "value"], [[f"**{k}**", v] for k, v in b.items]))
    if isinstance(b, Table):
        return table(b)
    if isinstance(b, Figure):
        if assets is None:
            return ""
        assets.mkdir(parents=True, exist_ok=True)
        f = assets / f"{b.name}.png"
        f.write_bytes(b.png)
        rel = Path(os.path.relpath(f, md_dir)).as_posix()
        return f"![{b.caption}]({rel})\n\n_{b.caption}_"
    if isinstance(b, Gallery):
        return _gallery(b)
    if isinstance(b, Details):
        return f"<details><summary>{b.summary}</summary>\n\n```json\n{b.text}\n```\n\n</details>"
    raise TypeError(f"cannot render {type(b).__name__}")


def render(blocks: list[Block], md_path: Path, assets: Path | None = None) -> str:
    """The Markdown text of a report that will live at ``md_path``; figures go to ``assets``."""
    parts = [_block(b, assets, md_path.parent) for b in blocks]
    if assets is None and any(isinstance(b, Figure) for b in blocks):
        parts.insert(2, "_Figures and thumbnails are in the HTML version of this report._")
    return "\n\n".join(p for p in parts if p) + "\n"
