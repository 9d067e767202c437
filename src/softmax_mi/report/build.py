"""Assemble the whole report from a results folder and write it: Markdown, self-contained HTML, and the headline
JSON that `dvc metrics show` reads."""

from __future__ import annotations

from pathlib import Path

from softmax_mi import __version__
from softmax_mi.io import atomic_path, write_json
from softmax_mi.report.benchmark import benchmark_section
from softmax_mi.report.claims import headline
from softmax_mi.report.document import Report
from softmax_mi.report.render import to_html, to_markdown
from softmax_mi.report.sections import (
    classification_section,
    label_shift_section,
    localisation_section,
    synthetic_section,
)


def assemble(results: str | Path) -> Report:
    """The report of the summaries under ``results``: title, the verdicts table, then one section per part."""
    results = Path(results)
    report = Report()
    report.add("h1", "softmax-mi: reproduction report for arXiv 1911.10688")
    report.add("p", f"Built by softmax-mi {__version__} from the tables under `{results.as_posix()}/`. Paper numbers "
                    "come from docs/paper.md: [published] = the paper's public result rows, [re-run] = an "
                    "independent re-run of the original protocol. Verdicts are computed from the tables "
                    "(softmax_mi.report).")
    body = Report()
    synthetic_section(body, results)
    classification_section(body, results)
    localisation_section(body, results)
    label_shift_section(body, results)
    benchmark_section(body, results)
    report.add("h2", "Verdicts")
    report.add("table", ["claim", "statement", "verdict", "reason"],
               [[c.key, c.statement, c.verdict, c.reason] for c in body.claims])
    report.blocks += body.blocks
    report.claims = body.claims
    return report


def build_report(results: str | Path = "results", *, markdown: str | Path | None = None,
                 html: str | Path | None = None, metrics: str | Path | None = None) -> Report:
    """Assemble the report from ``results`` and write it (markdown, self-contained HTML, headline JSON)."""
    results = Path(results)
    report = assemble(results)
    if markdown:
        with atomic_path(markdown) as tmp:
            tmp.write_text(to_markdown(report))
    if html:
        with atomic_path(html) as tmp:
            tmp.write_text(to_html(report, results))
    if metrics:
        write_json(headline(report.claims), metrics)
    return report
