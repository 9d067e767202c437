"""`softmax-mi` on a tiny catalogue written in a temporary folder: SQL, show, export, errors without tracebacks."""

from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest

from helpers import BIN, pipeline_env
from softmax_mi.cli import main
from softmax_mi.io import write_table

DOCS = {"estimator": "MI estimator", "mi_estimate": "estimate, nats", "mi_true": "truth, nats",
        "macro_acc": "mean per-class accuracy, fraction 0–1", "seed": "base seed"}


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    runs = pd.DataFrame({"estimator": ["softmax", "softmax", "knn", "knn"], "seed": [0, 1, 0, 1],
                         "mi_estimate": [1.0, 1.2, 0.9, 0.9], "mi_true": [1.0] * 4})
    write_table(runs, root / "synthetic/mi_estimates.parquet", column_docs=DOCS, table_doc="one row per run")
    write_table(runs.groupby("estimator", as_index=False)["mi_estimate"].mean(), root / "synthetic/summary.parquet",
                column_docs=DOCS)
    write_table(pd.DataFrame({"seed": [0], "macro_acc": [0.9]}), root / "classification/summary.parquet",
                column_docs=DOCS)
    return root


def cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_query_csv(results, capsys):
    code, out, err = cli(capsys, "query", "--results", str(results), "--format", "csv",
                         "select estimator, avg(mi_estimate - mi_true) as bias from mi_estimates group by 1 order by 1")
    assert code == 0, err
    frame = pd.read_csv(pd.io.common.StringIO(out))
    assert frame["estimator"].tolist() == ["knn", "softmax"]
    assert frame["bias"].round(6).tolist() == [-0.1, 0.1]


def test_prefixed_names_and_results_before_command(results, capsys):
    code, out, _ = cli(capsys, "--results", str(results), "query", "-f", "json",
                       "select (select count(*) from synthetic_summary) s, "
                       "(select count(*) from classification_summary) c")
    assert code == 0 and json.loads(out) == [{"s": 2, "c": 1}]


def test_show_prints_a_readable_table(results, capsys):
    code, out, _ = cli(capsys, "show", "mi_estimates", "--results", str(results), "-n", "3", "--where", "seed = 0")
    assert code == 0
    assert "mi_estimate" in out and "softmax" in out and "2 rows" in out


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_export(results, tmp_path, capsys, fmt):
    target = tmp_path / f"out.{fmt}"
    code, _, err = cli(capsys, "show", "synthetic_summary", "--results", str(results), "--format", fmt,
                       "-o", str(target))
    assert code == 0 and "wrote 2 rows" in err
    frame = {"csv": pd.read_csv, "json": pd.read_json, "parquet": pd.read_parquet}[fmt](target)
    assert sorted(frame["estimator"]) == ["knn", "softmax"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["query", "selec 1"], "SQL error"),
        (["query", "select * from nope"], "available tables"),
        (["query", "select * from summary"], "ambiguous"),
        (["show", "summary"], "use one of classification_summary, synthetic_summary"),
        (["show", "nope"], "no table named 'nope'"),
        (["query", "--format", "parquet", "select 1"], "needs -o"),
    ],
)
def test_errors_are_one_clear_message(results, capsys, args, message):
    code, _, err = cli(capsys, *args, "--results", str(results))
    assert code == 2 and message in err and "Traceback" not in err


def test_missing_results_folder(tmp_path, capsys):
    code, _, err = cli(capsys, "tables", "--results", str(tmp_path / "absent"))
    assert code == 2 and "does not exist" in err


def test_tables_and_schema(results, capsys):
    code, out, _ = cli(capsys, "tables", "--results", str(results))
    assert code == 0 and "synthetic_mi_estimates, mi_estimates" in out
    code, out, _ = cli(capsys, "tables", "mi_estimates", "--results", str(results), "-f", "csv")
    schema = pd.read_csv(pd.io.common.StringIO(out)).set_index("name")
    assert schema.loc["mi_estimate", "unit"] == "nats" and schema.loc["mi_estimate", "type"] == "double"


def test_catalogue_write_and_check(results, tmp_path, capsys):
    doc = tmp_path / "results.md"
    assert cli(capsys, "catalogue", "--results", str(results), "--write", str(doc))[0] == 0
    assert "## results/synthetic/mi_estimates.parquet" in doc.read_text()
    assert cli(capsys, "catalogue", "--results", str(results), "--check", str(doc))[0] == 0
    doc.write_text(doc.read_text().replace("nats", "bits"))
    code, _, err = cli(capsys, "catalogue", "--results", str(results), "--check", str(doc))
    assert code == 2 and "out of date" in err


def test_installed_console_script(results):
    done = subprocess.run([str(BIN / "softmax-mi"), "query", "--results", str(results), "select 42 as answer",
                           "--format", "csv"], capture_output=True, text=True, env=pipeline_env(), timeout=120)
    assert done.returncode == 0 and done.stdout.split() == ["answer", "42"]
    bad = subprocess.run([str(BIN / "softmax-mi"), "query", "--results", str(results), "select * from nope"],
                         capture_output=True, text=True, env=pipeline_env(), timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_show_columns_picks_and_orders(results, capsys):
    code, out, err = cli(capsys, "show", "mi_estimates", "--results", str(results), "--columns", "mi_true, estimator",
                         "-f", "csv")
    assert code == 0, err
    assert pd.read_csv(pd.io.common.StringIO(out)).columns.tolist() == ["mi_true", "estimator"]


def test_show_unknown_column_names_the_tables_columns(results, capsys):
    code, _, err = cli(capsys, "show", "mi_estimates", "--results", str(results), "--columns", "estimator,nope")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "unknown column 'nope' in synthetic_mi_estimates; its columns: estimator, seed, mi_estimate, mi_true" in err


def wide_frame(n_numeric: int = 19) -> pd.DataFrame:
    columns = {"estimator": ["softmax", "a_name_much_longer_than_any_cell_should_be_shown_whole", "knn"],
               "note": ["words that must never be split across two lines of the terminal output", "", "short"]}
    columns |= {f"metric_{i:02d}": [0.5 + i, 1.25, float("nan")] for i in range(n_numeric)}
    return pd.DataFrame(columns)


def rendered(frame: pd.DataFrame, width: int) -> list[str]:
    from rich.console import Console

    from softmax_mi.cli import print_table

    console = Console(width=width, force_terminal=False, color_system=None)
    with console.capture() as captured:
        print_table(frame, console, title="results/synthetic/wide.parquet")
    return captured.get().splitlines()


@pytest.mark.parametrize("width", [60, 100, 160])
def test_a_wide_table_fits_the_width_without_wrapping_a_cell(width):
    lines = rendered(wide_frame(), width)
    body = [line for line in lines if line.startswith("│")]
    assert len(body) == 3  # one line per row: nothing wrapped
    assert max(map(len, lines)) <= width
    header = next(line for line in lines if line.startswith("┃"))
    assert header.startswith("┃ estimator") and "┃ note" in header and header.endswith("┃ … ┃")  # the leading ones
    assert "words that must" in body[0] and "terminal output" not in body[0] and "… │" in body[0]
    shown = [name.strip() for name in header.strip("┃").split("┃")][:-1]
    bottom = next(i for i, line in enumerate(lines) if line.startswith("└"))
    hidden = [f"metric_{i:02d}" for i in range(len(shown) - 2, 19)]
    assert " ".join(line.strip() for line in lines[bottom + 1:]) == (
        f"3 rows; {len(hidden)} more columns (--columns to pick, -f csv for all): {', '.join(hidden)}")


def test_a_table_that_fits_is_printed_whole():
    lines = rendered(wide_frame(n_numeric=2), 200)
    assert "a_name_much_longer_than_any_cell_should_be_shown_whole" in "".join(lines)
    assert "…" not in "".join(lines) and lines[-1] == "3 rows"


def test_fit_columns_cuts_cells_before_leaving_columns_out():
    from softmax_mi.cli import MAX_CELL, fit_columns

    headers, natural = ["a", "b", "c"], [60, 3, 60]
    widths = fit_columns(headers, natural, 1 + (MAX_CELL + 3) + (3 + 3) + (MAX_CELL + 3) + 20)
    assert widths == [MAX_CELL + 20, 3, MAX_CELL]  # all shown, the spare width to the first cut column
    widths = fit_columns(headers * 4, natural * 4, 60)
    assert 0 < len(widths) < 12 and 1 + sum(w + 3 for w in widths) + 4 <= 60
    assert fit_columns(["a_long_header", "b"], [13, 1], 8) == [13]  # too narrow for any: the first, whole header


def test_every_help_text_formats():
    """argparse %-formats help strings: a bare "95 %" in a help text crashes `softmax-mi --help`."""
    import argparse

    from softmax_mi.cli import build_parser

    parser = build_parser()
    assert "localise" in parser.format_help()
    sub = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        assert command.format_help(), name
