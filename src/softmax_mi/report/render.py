"""The report's blocks (softmax_mi.report.document) as Markdown, or as one self-contained HTML page (figures
embedded as data URIs, so the file can be mailed or archived alone)."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from softmax_mi.report.document import Report


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def to_markdown(report: Report) -> str:
    lines = []
    for kind, *content in report.blocks:
        if kind in ("h1", "h2", "h3"):
            lines += [f"{'#' * int(kind[1])} {content[0]}", ""]
        elif kind == "p":
            lines += [content[0], ""]
        elif kind == "table":
            head, rows = content
            lines.append("| " + " | ".join(map(_md_cell, head)) + " |")
            lines.append("|" + "---|" * len(head))
            lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in rows]
            lines.append("")
        elif kind == "figure":
            rel, caption = content
            lines += [f"![{caption}]({rel})", "", f"*{caption}* (`results/{rel}`)", ""]
        elif kind == "claim":
            claim = content[0]
            lines += [f"**{claim.key} — {claim.verdict}.** {claim.statement}: {claim.reason}.", ""]
    return "\n".join(lines)


def _inline(text: str) -> str:
    text = html.escape(str(text))
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)


def _cell(text: str) -> str:
    """A table cell: identifiers may wrap after their underscores (``crossfit_4_bracket_curve`` would otherwise
    widen its column past a narrow window)."""
    return _inline(text).replace("_", "_<wbr>")


CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em}th,td{border:1px solid #ccc;padding:3px 8px}
th{background:#f3f3f3}td{font-variant-numeric:tabular-nums}img{max-width:100%;border:1px solid #eee}
figure{margin:1em 0}figcaption{color:#555;font-size:.9em}code{background:#f5f5f5;padding:0 3px}
.claim{padding:.5em .8em;border-left:5px solid #999;background:#fafafa;margin:1em 0}
.reproduced{border-color:#2a2}.not-reproduced{border-color:#c33}.not-run{border-color:#aaa}"""


def to_html(report: Report, results: Path) -> str:
    """``results``: the folder the figures' paths are relative to (their bytes are embedded)."""
    parts = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
             "<title>softmax-mi reproduction report</title>", f"<style>{CSS}</style></head><body>"]
    for kind, *content in report.blocks:
        if kind in ("h1", "h2", "h3"):
            parts.append(f"<{kind}>{_inline(content[0])}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{_inline(content[0])}</p>")
        elif kind == "table":
            head, rows = content
            header = "".join(f"<th>{_cell(h)}</th>" for h in head)
            parts.append(f"<table><thead><tr>{header}</tr></thead><tbody>")
            parts += ["<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>" for row in rows]
            parts.append("</tbody></table>")
        elif kind == "figure":
            rel, caption = content
            data = base64.b64encode((Path(results) / rel).read_bytes()).decode()
            parts.append(f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{_inline(caption)} (<code>results/{html.escape(rel)}</code>)</figcaption>"
                         "</figure>")
        elif kind == "claim":
            claim = content[0]
            css = claim.verdict.replace(" ", "-")
            parts.append(f"<div class='claim {css}'><b>{claim.key} — {html.escape(claim.verdict)}.</b> "
                         f"{_inline(claim.statement)}: {_inline(claim.reason)}.</div>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
