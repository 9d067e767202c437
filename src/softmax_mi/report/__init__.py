"""The reproduction report: ``results/report.md``, a self-contained ``results/report.html`` and the headline
``results/report.json``.

Per paper part it puts the numbers of docs/paper.md (published, or re-run independently of this project) beside
ours (mean ± std over seeds, read from the summary each part writes: ``results/<part>/summary.parquet``), the
faithful and corrected protocols side by side, and the part's figures. Each claim (C1–C4, docs/paper.md §0.3)
gets a verdict computed from those summaries, never typed by hand. A part whose summary is missing gets "not run"
with the missing path as the reason; the report is still written.

Modules, one concern each:
  reference  the paper's numbers          claims    the verdicts (C1–C4, ``TOLERANCE``)
  sections   one section per part         document  the report as blocks, number formats
  render     Markdown / HTML              build     ``assemble``, ``build_report``
  stage      the Snakemake rule ``report`` (``softmax_mi.report.stage.write``)
  readme     the README's generated result blocks and figures (``softmax-mi readme``, ``make readme``)

Entry points: :func:`build_report`, ``softmax-mi report``, and the Snakemake rule ``report``.
"""

from softmax_mi.report.build import assemble, build_report
from softmax_mi.report.claims import NOT_REPRODUCED, NOT_RUN, REPRODUCED, TOLERANCE, headline
from softmax_mi.report.document import Claim, Report
from softmax_mi.report.render import to_html, to_markdown

__all__ = ["NOT_REPRODUCED", "NOT_RUN", "REPRODUCED", "TOLERANCE", "Claim", "Report", "assemble", "build_report",
           "headline", "to_html", "to_markdown"]
