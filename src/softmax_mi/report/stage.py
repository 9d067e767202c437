"""The Snakemake rule ``report`` (workflow/rules/report.smk)."""

from __future__ import annotations

from pathlib import Path

from softmax_mi.report.build import build_report


def write(*, outputs: dict) -> None:
    """Write results/report.md, report.html and report.json. The rule's inputs are the parts' summaries and
    figures; the report reads them from the folder of its outputs, so a part absent from the DAG is reported as
    not run rather than failing the rule."""
    results = Path(outputs["markdown"]).parent
    build_report(results, markdown=outputs["markdown"], html=outputs["html"], metrics=outputs.get("metrics"))
