"""Render report blocks as Markdown (GitHub flavour): the same tables, no embedded images.

Figures are written as PNG files into ``assets`` (and linked relative to the Markdown file) only
when an assets folder is given; gallery thumbnails never are (the photos belong to their owners):
the Markdown lists those images by name, score and family instead.

Every text that comes from data (suite, file and embedder names, failure reasons, run.json) is
escaped: ``< > &`` become entities and Markdown's own characters are backslash-escaped, so a file
named ``<img src=x onerror=...>.jpg`` is shown as text in any renderer, never as a tag or a link.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from oneclass.outputs import atomic_write_bytes
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

_MD_SPECIAL = re.compile(r"([\\`*_|~])")
_LINE_START = re.compile(r"^(\s*)([#>+\-=]|\d+\.)")


def escape(v: object, *, block: bool = False) -> str:
    """Returns ``v`` as Markdown text that renders as itself: HTML's ``& < >`` as entities,
    Markdown's ``\\ ` * _ | ~`` backslash-escaped, ``](`` broken (no link), on one line;
    ``block``: a paragraph or heading, where a block marker at the start (``# > + - = 1.``) is
    escaped too."""
    text = str(v).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text.replace("\r", " ").replace("\n", " "))
    text = text.replace("](", "]\\(")  # no inline link or image: [text](url), ![alt](url)
    if block:
        text = _LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), text)
    return text


def _cell(v: str) -> str:
    return escape(v)


def _fence(text: str) -> str:
    """Returns a code fence longer than any run of backticks in ``text``."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def table(t: Table) -> str:
    """A pipe table; the best values of a column in bold."""
    out = []
    if t.caption:
        out.append(f"**{_cell(t.caption)}**\n")
    out.append("| " + " | ".join(_cell(c) for c in t.columns) + " |")
    out.append(
        "|" + "|".join("---:" if t.is_numeric(j) else "---" for j in range(len(t.columns))) + "|"
    )
    for i, row in enumerate(t.rows):
        cells = [
            f"**{_cell(v)}**" if t.is_bold(i, j) and v.strip() else _cell(v)
            for j, v in enumerate(row)
        ]
        out.append("| " + " | ".join(cells) + " |")
    if t.note:
        out.append(f"\n_{_cell(t.note)}_")
    return "\n".join(out)


def _gallery(g: Gallery) -> str:
    rows = [
        [t.lines[-1] if t.lines else "", *(t.lines[1:2] or [""]), t.lines[0] if t.lines else ""]
        for t in g.thumbs
    ]
    t = Table(
        ["image", "family", "score"],
        rows,
        numeric=[False, False, True],
        caption=g.title,
        note=g.note,
    )
    return table(t) if rows else f"**{_cell(g.title)}**\n\nNo images to show."


def _block(b: Block, assets: Path | None, md_dir: Path) -> str:
    if isinstance(b, Heading):
        return f"{'#' * b.level} {escape(b.text)}"
    if isinstance(b, Para):
        text = escape(b.text, block=True)
        return f"> {text}" if b.kind == "warn" else (f"_{text}_" if b.kind == "note" else text)
    if isinstance(b, KeyValues):
        rows = [f"| **{escape(k)}** | {escape(v)} |" for k, v in b.items]
        return "\n".join(["| what | value |", "|---|---|", *rows])
    if isinstance(b, Table):
        return table(b)
    if isinstance(b, Figure):
        if assets is None:
            return ""
        assets.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", b.name).strip(".-") or "figure"
        f = assets / f"{name}.png"
        atomic_write_bytes(f, b.png)
        rel = Path(os.path.relpath(f, md_dir)).as_posix()
        rel = "/".join(
            re.sub(r"[^A-Za-z0-9._-]", lambda m: f"%{ord(m.group()):02X}", part)
            for part in rel.split("/")
        )
        return f"![{escape(b.caption)}]({rel})\n\n_{escape(b.caption)}_"
    if isinstance(b, Gallery):
        return _gallery(b)
    if isinstance(b, Details):
        fence = _fence(b.text)
        return (
            f"<details><summary>{escape(b.summary)}</summary>\n\n{fence}json\n{b.text}\n"
            f"{fence}\n\n</details>"
        )
    raise TypeError(f"cannot render {type(b).__name__}")


def render(blocks: list[Block], md_path: Path, assets: Path | None = None) -> str:
    """The Markdown text of a report that will live at ``md_path``; figures go to ``assets``."""
    parts = [_block(b, assets, md_path.parent) for b in blocks]
    if assets is None and any(isinstance(b, Figure) for b in blocks):
        parts.insert(2, "_Figures and thumbnails are in the HTML version of this report._")
    return "\n\n".join(p for p in parts if p) + "\n"
