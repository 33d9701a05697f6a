"""The report pages' building blocks: the stylesheet, escaped text, tables, fact lists and the page around them.

Both the full report (:mod:`medtransfer.report.html`) and the page of a study with no finished trial
(:mod:`medtransfer.report.failed_page`) are built from these, so they look alike.
"""

from __future__ import annotations

from html import escape

CSS = """
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:#fff;color:#1f2328;font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",
Arial,sans-serif;overflow-wrap:break-word}
main{max-width:960px;margin:0 auto;padding:28px 24px 56px}
h1{font-size:1.75em;line-height:1.25;margin:0 0 .2em}
h2{font-size:1.3em;margin:2em 0 .6em;padding-bottom:.25em;border-bottom:1px solid #d8dee4}
h3{font-size:1.05em;margin:1.4em 0 .4em}
p,li{max-width:75ch}
.subtitle{color:#57606a;margin:0 0 1.2em}
nav{font-size:.9em;color:#57606a;margin-bottom:1.5em}
nav a{color:#0b5cad;text-decoration:none;margin-right:1em;white-space:nowrap}
.box{border:1px solid #d8dee4;border-left:5px solid #c0392b;background:#fdf5f4;padding:14px 18px;border-radius:4px}
.box .big{font-size:1.25em;font-weight:600;margin:0 0 .3em}
.answer{border-left:4px solid #0b5cad;padding:2px 0 2px 14px;margin:1em 0}
.answer p.headline{font-weight:600;margin:.2em 0}
.answer ul{margin:.3em 0 .3em 1.2em;padding:0}
.muted{color:#57606a;font-size:.9em}
.note{background:#fff8e1;border:1px solid #f0d58a;padding:8px 12px;border-radius:4px;font-size:.92em}
.table-box{max-width:100%;overflow-x:auto;margin:.6em 0 1em}
table{border-collapse:collapse;font-size:.9em}
th,td{padding:5px 10px;border-bottom:1px solid #e1e4e8;text-align:right;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
th:first-child,td:first-child{text-align:left}
td.text{text-align:left;white-space:normal;overflow-wrap:anywhere}
td small{color:#57606a;white-space:nowrap}
tr.recommended td{background:#fdf5f4;font-weight:600}
pre{background:#f6f6f6;padding:.6em .8em;overflow-x:auto;font-size:.9em}
dl.facts{display:grid;grid-template-columns:minmax(10em,max-content) 1fr;gap:4px 18px;margin:.5em 0}
dl.facts dt{color:#57606a}
dl.facts dd{margin:0;overflow-wrap:anywhere}
figure{margin:1.6em 0;padding:0}
figure img{display:block;max-width:100%;height:auto;margin:0 auto;border:1px solid #eef0f2}
figcaption{font-size:.9em;color:#3d444d;margin-top:.5em}
ol.refs{font-size:.85em;color:#3d444d;columns:2;column-gap:2em}
img{max-width:100%;height:auto}
@media print{
  body{font-size:10.5pt}
  main{max-width:none;padding:0}
  nav{display:none}
  h2{break-after:avoid}
  figure,.box,.answer,table,dl.facts{break-inside:avoid}
  .table-box{overflow:visible}
}
"""


def escaped(text) -> str:
    """Any value as HTML text."""
    return escape(str(text))


def html_table(header: list[str], rows: list[list[str]], row_classes: list[str] | None = None,
               text_columns: tuple[int, ...] = ()) -> str:
    """An HTML table in a box that scrolls sideways on narrow screens; cells are already-escaped HTML.

    ``text_columns`` hold prose (left-aligned, wrapped anywhere); the others hold numbers.
    """
    head = "".join(f"<th>{h}</th>" for h in header)

    def cell(i: int, c: str) -> str:
        return f'<td class="text">{c}</td>' if i in text_columns else f"<td>{c}</td>"

    body = "".join(
        (f'<tr class="{cls}">' if cls else "<tr>") + "".join(cell(i, c) for i, c in enumerate(row)) + "</tr>"
        for row, cls in zip(rows, row_classes or [""] * len(rows))
    )
    return f'<div class="table-box"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def facts_list(items: list[tuple[str, str]]) -> str:
    """Name–value pairs (plain text) as a two-column list."""
    return '<dl class="facts">' + "".join(f"<dt>{escaped(k)}</dt><dd>{escaped(v)}</dd>" for k, v in items) + "</dl>"


def html_page(title: str, body: str) -> str:
    """A whole self-contained page: ``title`` is plain text, ``body`` HTML."""
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escaped(title)}</title><style>{CSS}</style></head>"
            f"<body><main>{body}</main></body></html>\n")
