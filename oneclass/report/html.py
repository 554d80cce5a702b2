"""Render report blocks as one self-contained HTML file: CSS inline, images as data URIs, no
scripts and no reference to anything outside the file."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from html import escape

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

CSS = """
:root { --fg:#1d2125; --muted:#5c6670; --line:#e2e5e9; --head:#f1f3f5; --accent:#1f6fb2;
        --best:#e3f2e6; --warn:#fff3e0; --warnline:#f0a040; }
* { box-sizing: border-box; }
body { margin:0; background:#eef0f3; color:var(--fg);
       font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue","DejaVu Sans",
       Arial,sans-serif; }
main { max-width:1400px; margin:0 auto; padding:28px 36px 80px; background:#fff;
       min-height:100vh; }
h1 { font-size:28px; line-height:1.25; margin:4px 0 6px; }
h2 { font-size:22px; margin:44px 0 12px; padding-bottom:6px; border-bottom:2px solid var(--line); }
h3 { font-size:18px; margin:34px 0 10px; color:#243240; }
h4 { font-size:15.5px; margin:26px 0 8px; color:#33414e; }
p { margin:6px 0 10px; max-width:72em; }
p.note, .note { color:var(--muted); font-size:12.5px; }
p.warn { background:var(--warn); border-left:4px solid var(--warnline); padding:6px 10px; }
a { color:var(--accent); text-decoration:none; }
nav.toc { font-size:13.5px; background:#f7f8fa; border:1px solid var(--line); border-radius:6px;
          padding:8px 16px; margin:14px 0 8px; columns:2 280px; }
nav.toc div.l3 { padding-left:16px; }
.tablewrap { overflow-x:auto; margin:0 0 14px; }
.tcap { font-weight:600; font-size:13.5px; margin:14px 0 6px; color:#243240; }
table { border-collapse:collapse; font-size:12.5px; }
th, td { padding:4px 7px; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:var(--head); font-weight:600; text-align:left; vertical-align:bottom;
     white-space:nowrap; }
th.num { text-align:right; }
td { max-width:30em; overflow-wrap:anywhere; }
td.nw { white-space:nowrap; }
td.num { text-align:right; white-space:nowrap; font-variant-numeric:tabular-nums; }
td.best { font-weight:700; background:var(--best); }
tbody tr:nth-child(even) td:not(.best) { background:#fafbfc; }
table.summary { font-size:15px; }
table.summary td, table.summary th { padding:7px 12px; }
table.summary td:nth-child(-n+3) { font-weight:600; }
div.summary { background:#f5f9fd; border:1px solid #d6e4f2; border-radius:8px; padding:10px 16px; }
table.warn th { background:var(--warn); }
dl.kv { display:grid; grid-template-columns:max-content 1fr; gap:3px 18px; font-size:13.5px;
        margin:8px 0 16px; }
dl.kv dt { color:var(--muted); }
dl.kv dd { margin:0; overflow-wrap:anywhere; }
figure { margin:12px 0 20px; }
figure img { max-width:100%; height:auto; border:1px solid var(--line); border-radius:4px; }
figcaption { color:var(--muted); font-size:12.5px; max-width:72em; }
.gallery { display:flex; flex-wrap:wrap; gap:10px 8px; margin:6px 0 4px; }
.thumb { width:104px; font-size:11px; line-height:1.3; text-align:center; color:var(--muted); }
.thumb img, .thumb .missing { width:96px; height:96px; object-fit:contain; background:#f1f3f5;
        border-radius:4px; display:block; margin:0 auto 3px; }
.thumb .missing { display:flex; align-items:center; justify-content:center; font-size:10px;
        padding:4px; overflow:hidden; }
.thumb b, .thumb span { display:block; overflow:hidden; white-space:nowrap;
        text-overflow:ellipsis; }
.thumb b { color:var(--fg); font-variant-numeric:tabular-nums; }
details { margin:10px 0; font-size:13px; }
details pre { background:#f7f8fa; border:1px solid var(--line); padding:10px; overflow-x:auto;
        max-height:480px; }
footer { margin-top:50px; color:var(--muted); font-size:12px; }
"""


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _table(t: Table) -> str:
    cls = f' class="{escape(t.kind)}"' if t.kind else ""
    out = [f'<div class="tcap">{escape(t.caption)}</div>'] if t.caption else []
    out.append(f'<div class="tablewrap"><table{cls}>')
    heads = "".join(
        f"<th{' class=num' if t.is_numeric(j) else ''}>{escape(c)}</th>"
        for j, c in enumerate(t.columns)
    )
    out.append(f"<thead><tr>{heads}</tr></thead><tbody>")
    for i, row in enumerate(t.rows):
        cells = []
        for j, v in enumerate(row):
            c = " ".join(
                k
                for k, on in (
                    ("num", t.is_numeric(j)),
                    ("best", t.is_bold(i, j)),
                    ("nw", len(v) <= 24),
                )
                if on
            )
            cells.append(f"<td{f' class={chr(34)}{c}{chr(34)}' if c else ''}>{escape(v)}</td>")
        out.append(f"<tr>{''.join(cells)}</tr>")
    out.append("</tbody></table></div>")
    if t.note:
        out.append(f'<p class="note">{escape(t.note)}</p>')
    html = "".join(out)
    return f'<div class="summary">{html}</div>' if t.kind == "summary" else html


def _gallery(g: Gallery) -> str:
    out = [f"<h4>{escape(g.title)}</h4>"]
    if not g.thumbs:
        out.append('<p class="note">No images to show.</p>')
    out.append('<div class="gallery">')
    for t in g.thumbs:
        if t.jpeg is not None:
            img = f'<img alt="{escape(t.lines[-1])}" src="{data_uri(t.jpeg, "image/jpeg")}">'
        else:
            img = f'<div class="missing">{escape(t.missing or "not available")}</div>'
        first, *rest = t.lines or [""]
        cap = "".join(
            [
                f"<b>{escape(first)}</b>",
                *(f'<span title="{escape(x)}">{escape(x)}</span>' for x in rest),
            ]
        )
        out.append(f'<div class="thumb">{img}{cap}</div>')
    out.append("</div>")
    if g.note:
        out.append(f'<p class="note">{escape(g.note)}</p>')
    return "".join(out)


def _block(b: Block) -> str:
    if isinstance(b, Heading):
        aid = f' id="{escape(b.anchor)}"' if b.anchor else ""
        return f"<h{b.level}{aid}>{escape(b.text)}</h{b.level}>"
    if isinstance(b, Para):
        cls = f' class="{escape(b.kind)}"' if b.kind else ""
        return f"<p{cls}>{escape(b.text)}</p>"
    if isinstance(b, KeyValues):
        items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in b.items)
        return f'<dl class="kv">{items}</dl>'
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Figure):
        return (
            f'<figure><img alt="{escape(b.name)}" src="{data_uri(b.png, "image/png")}">'
            f"<figcaption>{escape(b.caption)}</figcaption></figure>"
        )
    if isinstance(b, Gallery):
        return _gallery(b)
    if isinstance(b, Details):
        return (
            f"<details><summary>{escape(b.summary)}</summary><pre>{escape(b.text)}</pre></details>"
        )
    raise TypeError(f"cannot render {type(b).__name__}")


def _unique_anchors(blocks: list[Block]) -> None:
    seen: set[str] = set()
    for b in blocks:
        if isinstance(b, Heading) and b.anchor:
            a, k = b.anchor, 2
            while a in seen:
                a, k = f"{b.anchor}-{k}", k + 1
            b.anchor = a
            seen.add(a)


def _toc(blocks: list[Block]) -> str:
    items = [
        f'<div class="l{b.level}"><a href="#{escape(b.anchor)}">{escape(b.text)}</a></div>'
        for b in blocks
        if isinstance(b, Heading) and b.level in (2, 3) and b.anchor
    ]
    return f'<nav class="toc">{"".join(items)}</nav>' if len(items) > 2 else ""


def render(blocks: list[Block]) -> str:
    """The HTML text of a report."""
    _unique_anchors(blocks)
    title = next((b.text for b in blocks if isinstance(b, Heading)), "oneclass report")
    body = []
    toc = _toc(blocks)
    for i, b in enumerate(blocks):
        body.append(_block(b))
        if i == 1 and toc:  # after the title and the line under it
            body.append(toc)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>"
        + "\n".join(body)
        + f"<footer>Written by oneclass.report on {stamp}. Thumbnails show photos whose "
        "copyright stays with their owners: keep this file for local research, do not "
        "publish it.</footer></main></body></html>\n"
    )
