"""``softmax-mi``: query, show and document the result tables, and build the reproduction report.

    softmax-mi tables                         every table, its query names and size
    softmax-mi tables mi_estimates            one table's schema (column, type, unit, meaning)
    softmax-mi query "SELECT estimator, avg(mi_estimate - mi_true) FROM mi_estimates GROUP BY 1"
    softmax-mi show classification_summary --limit 10 --format csv -o summary.csv
    softmax-mi show mi_estimates --columns dataset,dim,estimator,mi_estimate,mi_true
    softmax-mi catalogue --write docs/results.md
    softmax-mi report                         results/report.md + results/report.html
    softmax-mi readme --write README.md       the README's generated result blocks and figures

Every command takes ``--results DIR`` (default ``results``). Query names follow the rule of
:mod:`softmax_mi.catalogue`: ``<part>_<stem>``, plus ``<stem>`` when unique. Errors (bad SQL, unknown table,
missing folder) print one line on stderr and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

from softmax_mi import __version__
from softmax_mi.extras import MissingExtraError, optional_import

FORMATS = ("table", "csv", "json", "parquet")


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


# ------------------------------------------------------------------------------------------------------ helpers
def _tables(results: str):
    from softmax_mi.catalogue import discover

    tables = discover(results)
    if not tables:
        where = Path(results)
        raise CLIError(f"no result tables under {where}/ (run the pipeline first, or pass --results DIR)"
                       if where.is_dir() else f"results folder {where}/ does not exist (pass --results DIR)")
    return tables


def connect(results: str):
    """An in-memory DuckDB connection with one view per result table (every name of the naming rule)."""
    duckdb = optional_import("duckdb", "querying the result tables")

    tables = _tables(results)
    con = duckdb.connect(":memory:")
    for table in tables:
        path = str(table.path).replace("'", "''")
        for view in table.views:
            con.execute(f'CREATE VIEW "{view}" AS SELECT * FROM read_parquet(\'{path}\')')
    return con, tables


def run_query(results: str, sql: str):
    """Run ``sql`` over the catalogue; a pandas DataFrame (empty for statements without a result)."""
    import pandas as pd

    duckdb = optional_import("duckdb", "querying the result tables")

    from softmax_mi.catalogue import ambiguous

    con, tables = connect(results)
    try:
        relation = con.sql(sql)
        return pd.DataFrame() if relation is None else relation.df()
    except duckdb.CatalogException as error:
        message = _first_line(error)
        missing = re.search(r"Table with name (\S+) does not exist", message)
        if missing and len(ambiguous(tables, missing.group(1))) > 1:
            raise CLIError(f"{message}\n  {_unknown(tables, missing.group(1), results)}") from None
        names = ", ".join(sorted({v for t in tables for v in t.views}))
        raise CLIError(f"{message}\n  available tables: {names}") from None
    except duckdb.Error as error:
        raise CLIError(f"SQL error: {_first_line(error)}") from None
    finally:
        con.close()


def _unknown(tables, name: str, results: str) -> str:
    from softmax_mi.catalogue import ambiguous

    candidates = ambiguous(tables, name)
    if len(candidates) > 1:
        return f"{name!r} is ambiguous (several parts have it): use one of {', '.join(candidates)}"
    names = ", ".join(sorted({v for t in tables for v in t.views}))
    return f"no table named {name!r} under {results}/\n  available tables: {names}"


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _format_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.6g}"
    return str(value)


def emit(frame, fmt: str, output: str | None, title: str | None = None) -> None:
    """Print ``frame`` as a rich table, or export it as csv / json / parquet (to ``output`` or stdout)."""
    if fmt == "parquet" and not output:
        raise CLIError("--format parquet needs -o FILE")
    if output:
        target = Path(output)
        target.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "table":
            fmt = {".csv": "csv", ".json": "json", ".parquet": "parquet"}.get(target.suffix, "csv")
        if fmt == "csv":
            frame.to_csv(target, index=False)
        elif fmt == "json":
            frame.to_json(target, orient="records", indent=1, force_ascii=False)
        else:
            frame.to_parquet(target, index=False)
        print(f"wrote {len(frame)} rows to {target}", file=sys.stderr)
        return
    if fmt == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif fmt == "json":
        sys.stdout.write(frame.to_json(orient="records", indent=1, force_ascii=False) + "\n")
    else:
        Console = optional_import("rich.console", "a table on the terminal (or --format csv)").Console

        console = Console(width=max(Console().width, 120) if not sys.stdout.isatty() else None)
        print_table(frame, console, title=title)


# Text tables for a terminal: a cell never wraps (a long one is cut, ending in "…"), and a table wider than the
# terminal shows its leading columns, then a "…" column; the footer names the columns left out. Leading, not both
# ends as pandas and DuckDB do: the result tables put the columns that identify a row first, the measurements next,
# and run details and provenance (seconds, device, params_hash, package_version) last.
MAX_CELL = 24  # characters of a cell when the table does not fit at full width (DuckDB's shell cuts at 20)
_BORDER, _PADDING = 1, 2  # rich's default box: one border character per column (+1), one space either side


def _one_line(text: str) -> str:
    return " ".join(text.split()) if "\n" in text or "\t" in text else text


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def fit_columns(headers: list[str], natural: list[int], budget: int) -> list[int]:
    """The widths of the leading columns a text table of ``budget`` characters shows (one per column shown).

    ``natural``: each column's full width (its header or longest cell). All columns at full width when they fit;
    else cells are cut to :data:`MAX_CELL` (never below the header) and as many leading columns are kept as fit
    beside a one-character "…" column (at least one), and the space left over goes back to the cut columns, left
    first.

    >>> fit_columns(["name", "value"], [60, 5], 40)  # "name" cut to what is left beside "value"
    [28, 5]
    >>> fit_columns(["a", "b", "c"], [30, 30, 30], 60)  # two cut to 24 (+1 left over), then the "…" column
    [25, 24]
    """
    def cost(widths):
        return _BORDER + sum(w + _PADDING + _BORDER for w in widths)

    if cost(natural) <= budget:
        return list(natural)
    widths = [max(len(h), min(w, MAX_CELL)) for h, w in zip(headers, natural)]
    if cost(widths) > budget:
        shown = 1
        while shown < len(widths) and cost(widths[: shown + 1] + [1]) <= budget:
            shown += 1
        widths = widths[:shown]
    spare = budget - cost(widths + ([1] if len(widths) < len(natural) else []))
    for index, width in enumerate(widths):
        extra = min(max(spare, 0), natural[index] - width)
        widths[index] += extra
        spare -= extra
    return widths


def print_table(frame, console, title: str | None = None) -> None:
    """Print ``frame`` on ``console`` as a text table that fits its width (see :func:`fit_columns`), then a footer
    with the row count and the columns left out."""
    Table = optional_import("rich.table", "a table on the terminal (or --format csv)").Table

    headers = [str(column) for column in frame.columns]
    cells = [[_one_line(_format_value(value)) for value in column] for _, column in frame.items()]
    natural = [max([len(h)] + [len(c) for c in column]) for h, column in zip(headers, cells)]
    widths = fit_columns(headers, natural, console.width)
    hidden = headers[len(widths):]
    table = Table(title=title, show_lines=False, header_style="bold")
    for index, width in enumerate(widths):
        numeric = frame.dtypes.iloc[index].kind in "iuf"
        table.add_column(headers[index], width=width, no_wrap=True, overflow="ellipsis",
                         justify="right" if numeric else "left")
    if hidden:
        table.add_column("…", width=1, no_wrap=True)
    for row in range(len(frame)):
        table.add_row(*(_truncate(cells[index][row], width) for index, width in enumerate(widths)),
                      *(["…"] if hidden else []))
    console.print(table)
    footer = f"{len(frame)} row{'' if len(frame) == 1 else 's'}"
    if hidden:
        footer += f"; {len(hidden)} more columns (--columns to pick, -f csv for all): {', '.join(hidden)}"
    console.print(f"[dim]{footer}[/dim]", highlight=False)


# ------------------------------------------------------------------------------------------------------ commands
def cmd_query(args) -> None:
    emit(run_query(args.results, args.sql), args.format, args.output)


def cmd_show(args) -> None:
    from softmax_mi.catalogue import find

    tables = _tables(args.results)
    table = find(tables, args.table)
    if table is None:
        raise CLIError(_unknown(tables, args.table, args.results))
    sql = f'SELECT {_select_list(table, args.columns)} FROM "{table.view}"'
    if args.where:
        sql += f" WHERE {args.where}"
    if args.limit and args.limit > 0:
        sql += f" LIMIT {int(args.limit)}"
    emit(run_query(args.results, sql), args.format, args.output, title=f"results/{table.relpath}")


def _select_list(table, columns: str | None) -> str:
    """The SELECT list of ``--columns a,b,c`` (in that order), or ``*``; an unknown name: one line listing the
    table's columns."""
    if not columns:
        return "*"
    names = [name.strip() for name in columns.split(",") if name.strip()]
    unknown = [name for name in names if name not in table.column_names]
    if unknown or not names:
        what = f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}" if unknown \
            else "--columns names no column"
        raise CLIError(f"{what} in {table.view}; its columns: {', '.join(table.column_names)}")
    return ", ".join('"' + name.replace('"', '""') + '"' for name in names)


def cmd_tables(args) -> None:
    import pandas as pd
    import pyarrow.parquet as pq

    from softmax_mi.catalogue import find, provenance_gaps

    tables = _tables(args.results)
    if args.table:
        table = find(tables, args.table)
        if table is None:
            raise CLIError(_unknown(tables, args.table, args.results))
        frame = pd.DataFrame([c.__dict__ for c in table.columns])
        emit(frame, args.format, args.output, title=f"results/{table.relpath} ({', '.join(table.views)})")
        return
    frame = pd.DataFrame([
        {"file": f"results/{t.relpath}", "query names": ", ".join(t.views),
         "rows": pq.ParquetFile(t.path).metadata.num_rows, "columns": len(t.columns), "description": t.description}
        for t in tables
    ])
    emit(frame, args.format, args.output, title=f"result tables under {args.results}/")
    for rel, missing in provenance_gaps(tables).items():
        print(f"note: results/{rel} has no {', '.join(missing)} column", file=sys.stderr)


def cmd_catalogue(args) -> None:
    from softmax_mi.catalogue import discover, naming_issues, provenance_gaps, render_markdown

    tables = discover(args.results)
    if not tables:
        raise CLIError(f"no result tables under {args.results}/")
    text = render_markdown(tables)
    if args.check:
        current = Path(args.check).read_text() if Path(args.check).exists() else ""
        if current != text:
            raise CLIError(f"{args.check} is out of date with the tables under {args.results}/: "
                           f"run `softmax-mi catalogue --results {args.results} --write {args.check}`")
        print(f"{args.check} matches the tables under {args.results}/", file=sys.stderr)
        return
    if args.write:
        target = Path(args.write)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        print(f"wrote {target} ({len(tables)} tables)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    for rel, missing in provenance_gaps(tables).items():
        print(f"note: results/{rel} has no {', '.join(missing)} column", file=sys.stderr)
    for issue in naming_issues(tables):
        print(f"note: {issue}", file=sys.stderr)


def cmd_report(args) -> None:
    from softmax_mi.report import build_report

    results = Path(args.results)
    if not results.is_dir():
        raise CLIError(f"results folder {results}/ does not exist (pass --results DIR)")
    md = Path(args.markdown) if args.markdown else results / "report.md"
    html = Path(args.html) if args.html else results / "report.html"
    report = build_report(results, markdown=md, html=html)
    print(f"wrote {md} and {html}", file=sys.stderr)
    for claim in report.claims:
        print(f"{claim.key}: {claim.verdict} — {claim.reason}")


# ------------------------------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="softmax-mi", description="Query and document softmax-mi result tables; build the reproduction report.",
    )
    parser.add_argument("--version", action="version", version=f"softmax-mi {__version__}")
    parser.add_argument("--results", default="results", metavar="DIR", help="results folder (default: results)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--results", default=argparse.SUPPRESS, metavar="DIR",
                        help="results folder (default: results)")
    export = argparse.ArgumentParser(add_help=False)
    export.add_argument("--format", "-f", choices=FORMATS, default="table",
                        help="table (readable, default), csv, json or parquet (parquet needs -o)")
    export.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    query = sub.add_parser("query", parents=[common, export], help="run SQL (DuckDB) over every result table")
    query.add_argument("sql", help='e.g. "SELECT estimator, avg(error) FROM mi_estimates GROUP BY 1"')
    query.set_defaults(func=cmd_query)

    show = sub.add_parser(
        "show", parents=[common, export], help="print one table", formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  softmax-mi show mi_estimates --columns dataset,dim,estimator,mi_estimate,mi_true -n 10\n"
               "  softmax-mi show classification_summary --where \"split = 'test'\" -n 0 -f csv -o summary.csv")
    show.add_argument("table", help="query name (mi_estimates, classification_summary, …) or path")
    show.add_argument("--limit", "-n", type=int, default=50, help="rows to show (0: all; default 50)")
    show.add_argument("--where", help="SQL condition, e.g. \"split = 'test'\"")
    show.add_argument("--columns", "-c", metavar="A,B,C",
                      help="only these columns, in this order (default: all; a table wider than the terminal "
                           "shows its leading columns and names the others)")
    show.set_defaults(func=cmd_show)

    tables = sub.add_parser("tables", parents=[common, export], help="list tables, or one table's schema")
    tables.add_argument("table", nargs="?", help="a table: print its columns (type, unit, meaning)")
    tables.set_defaults(func=cmd_tables)

    catalogue = sub.add_parser("catalogue", parents=[common], help="write/check docs/results.md from the tables")
    group = catalogue.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="FILE", help="write the catalogue (e.g. docs/results.md)")
    group.add_argument("--check", metavar="FILE", help="exit 2 when FILE differs from the tables")
    catalogue.set_defaults(func=cmd_catalogue)

    report = sub.add_parser("report", parents=[common], help="build results/report.md and results/report.html")
    report.add_argument("--markdown", metavar="FILE", help="default: RESULTS/report.md")
    report.add_argument("--html", metavar="FILE", help="default: RESULTS/report.html")
    report.set_defaults(func=cmd_report)

    from softmax_mi.commands import register_all  # the commands on a user's own model and files

    register_all(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        status = args.func(args)  # None, or an exit status (`readme --check`: 1 when stale)
    except (CLIError, MissingExtraError) as error:
        print(f"softmax-mi {args.command}: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except (OSError, ValueError) as error:
        print(f"softmax-mi {args.command}: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    return int(status or 0)


if __name__ == "__main__":  # `python -m softmax_mi.cli`: run the imported module, whose CLIError the commands raise
    from softmax_mi.cli import main as imported_main

    sys.exit(imported_main())
