"""``softmax-mi readme``: rewrite the README's generated blocks (``<!-- BEGIN generated: NAME -->`` …
``<!-- END generated: NAME -->``) and its figures from a results folder, or check that they match it.

Thin: reads the README, calls :mod:`softmax_mi.report.readme` (the block registry and the renderers), writes or
compares. ``--check`` exits with status 1 and names each stale block (with a short diff) and figure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from softmax_mi.cli import CLIError
from softmax_mi.commands import add_command

EXAMPLES = """\
examples:
  softmax-mi readme --write README.md                      # after `make run` (this is `make readme`)
  softmax-mi readme --check README.md                      # exit 1 naming each stale block or figure
  softmax-mi --results /tmp/run/results readme --write README.md --no-figures

Blocks are marked in the README as
  <!-- BEGIN generated: part1-table -->
  <!-- END generated: part1-table -->
and everything between the two markers is replaced. Known blocks: see softmax_mi.report.readme.BLOCKS."""


def register(sub) -> None:
    parser = add_command(
        sub, "readme", help="rewrite / check the README's generated result blocks and figures from results/",
        description="Rewrite the README's generated blocks (the numbers of its results sections) and copy the\n"
                    "figures it shows (docs/figures/) from a results folder; or check that they match it.",
        epilog=EXAMPLES)
    parser.add_argument("--results", default=argparse.SUPPRESS, metavar="DIR", help="results folder (default: results)")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", metavar="FILE", help="rewrite FILE's blocks (e.g. README.md) and copy its figures")
    action.add_argument("--check", metavar="FILE", help="exit 1 when a block or figure of FILE differs from the results")
    parser.add_argument("--no-figures", action="store_true",
                        help="leave the figures alone (by default they are copied or checked beside FILE)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from softmax_mi.report.readme import ReadmeError, copy_figures, fill, stale, stale_figures

    results = Path(args.results)
    if not results.is_dir():
        raise CLIError(f"results folder {results}/ does not exist (run `make run` first, or pass --results DIR)")
    readme = Path(args.write or args.check)
    if not readme.is_file():
        raise CLIError(f"{readme}: no such file")
    text = readme.read_text(encoding="utf-8")
    try:
        if args.check:
            problems = stale(text, results, str(readme))
            if not args.no_figures:
                problems += [f"{path} differs from its result file (figure)" for path in stale_figures(
                    results, readme.parent)]
            if problems:
                print("\n".join(problems), file=sys.stderr)
                print(f"fix: softmax-mi readme --results {results} --write {readme}", file=sys.stderr)
                return 1
            print(f"{readme}: every generated block matches {results}/", file=sys.stderr)
            return 0
        new = fill(text, results, str(readme))
        figures = [] if args.no_figures else copy_figures(results, readme.parent)
    except ReadmeError as error:
        raise CLIError(str(error)) from None
    from softmax_mi.io import atomic_path

    with atomic_path(readme) as tmp:
        tmp.write_text(new, encoding="utf-8")
    print(f"wrote {readme} ({'unchanged' if new == text else 'blocks rewritten'}) from {results}/"
          + (f"; copied {len(figures)} figures" if figures else ""), file=sys.stderr)
    return 0
