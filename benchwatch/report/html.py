"""Page, stylesheet and escaping shared by the static reports.

Every report is one HTML file that opens anywhere: inline CSS and SVG, no scripts, nothing
fetched when it is opened. Text from outside (labels, model names, error messages) goes through
`esc`; chart markup comes from `benchwatch.report.svg`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

__all__ = ["CSS", "esc", "page", "table"]

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:16px 24px;
color:#222;background:#f4f5f7}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px;border-bottom:1px solid #ccc}
.meta,.muted{color:#666;font-size:12px} .warn{color:#b35900}
.nodata,.err{color:#b00;font-size:12px} .err{word-break:break-all}
table{border-collapse:collapse;margin:8px 0;font-size:12px;background:#fff}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right} th{background:#eef0f3}
td:first-child,th:first-child,.note{text-align:left} .note{display:block}
.grid{display:grid;grid-template-columns:repeat(24,1fr);gap:10px}
.panel{background:#fff;border:1px solid #ddd;border-radius:4px;padding:8px;min-width:0}
.panel h3{font-size:13px;margin:0 0 2px} .panel .desc{font-size:11px;color:#666;margin:0 0 4px}
.figure{max-width:760px;margin:8px 0} .caption{font-size:12px;margin:0 0 4px}
.legend{font-size:11px;display:flex;flex-wrap:wrap;gap:4px 10px}
.legend i{display:inline-block;width:14px;margin-right:3px;vertical-align:middle}
.stat{display:flex;flex-wrap:wrap;gap:8px} .stat div{padding:8px 12px;border-radius:4px;
color:#fff;font-weight:600}
.banner{font-size:28px;font-weight:bold;padding:12px 18px;color:#fff;display:inline-block;
border-radius:6px}
.summary{background:#fff;border:1px solid #ddd;padding:8px;font-size:12px}
details{font-size:11px;color:#555} code{font-size:11px;background:#f5f5f5;padding:1px 4px}
details.folded{font-size:13px;color:#444;margin:12px 0;background:#fff;border:1px solid #ddd;
padding:6px 8px} details.folded .grid{margin-top:8px}
"""


def esc(x: object) -> str:
    """Any value as HTML text (quotes included, so it is safe in attributes too)."""
    return html.escape(str(x))


def page(title: str, body: str) -> str:
    """A complete, self-contained HTML document around `body` (markup, not escaped)."""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>{body}</body></html>\n")


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table: `head` is plain text (escaped here), cells are markup (escape what you put in)."""
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{th}</tr>{trs}</table>"
