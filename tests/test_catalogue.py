"""The catalogue of result tables: naming rule, schema in the files, provenance, and docs/results.md in step
with the tables the pipeline writes."""

from __future__ import annotations

import difflib

import pandas as pd
import pyarrow.parquet as pq
import pytest

from helpers import REPO
from softmax_mi.catalogue import discover, find, naming_issues, provenance_gaps, render_markdown
from softmax_mi.io import infer_unit, write_table

PROV = {"params_hash": "abc", "package_version": "0.1.0"}
DOCS = {"seed": "base seed", "mi": "estimate, nats", "acc": "accuracy, fraction 0–1",
        "params_hash": "hash", "package_version": "version"}


def tiny_results(root):
    write_table(pd.DataFrame([{"seed": 0, "mi": 1.0, **PROV}]), root / "synthetic/mi_estimates.parquet",
                column_docs=DOCS, table_doc="runs")
    write_table(pd.DataFrame([{"seed": 0, "mi": 1.0}]), root / "synthetic/summary.parquet", column_docs=DOCS)
    write_table(pd.DataFrame([{"seed": 0, "acc": 0.5, **PROV}]), root / "classification/summary.parquet",
                column_docs=DOCS)
    write_table(pd.DataFrame([{"seed": 0, "mi": 1.0, **PROV}]), root / "synthetic/runs/x/seed0.parquet",
                column_docs=DOCS)
    return root


def test_naming_rule_and_leaves(tmp_path):
    tables = discover(tiny_results(tmp_path / "results"))
    assert {t.relpath: t.views for t in tables} == {
        "classification/summary.parquet": ("classification_summary",),
        "synthetic/mi_estimates.parquet": ("synthetic_mi_estimates", "mi_estimates"),
        "synthetic/summary.parquet": ("synthetic_summary",),
    }  # `summary` collides across parts: prefixed names only; runs/ leaves are not tables
    assert find(tables, "mi_estimates").relpath == "synthetic/mi_estimates.parquet"
    assert find(tables, "synthetic/summary.parquet").view == "synthetic_summary"
    assert find(tables, "summary") is None


def test_schema_travels_in_the_file(tmp_path):
    tables = discover(tiny_results(tmp_path / "results"))
    columns = {c.name: c for c in find(tables, "mi_estimates").columns}
    assert columns["mi"].unit == "nats" and columns["mi"].meaning == "estimate, nats"
    assert columns["seed"].unit == "" and columns["seed"].type == "int64"
    assert pq.read_schema(tmp_path / "results/classification/summary.parquet").field("acc").metadata[b"unit"] \
        == "fraction 0–1".encode()
    assert find(tables, "mi_estimates").description == "runs"
    assert provenance_gaps(tables) == {"synthetic/summary.parquet": ["params_hash", "package_version"]}
    text = render_markdown(tables)
    assert "## results/synthetic/mi_estimates.parquet" in text and "| `mi` | double | nats | estimate, nats |" in text


def test_infer_unit():
    assert infer_unit("mean of log PC, nats") == "nats"
    assert infer_unit("wall time, seconds") == "s"
    assert infer_unit("macro accuracy, fraction 0–1") == "fraction 0–1"
    assert infer_unit("class label 0–9") == ""


@pytest.mark.slow
def test_docs_results_md_matches_the_tables(smoke_run):
    tables = discover(smoke_run / "results")
    assert {"synthetic/mi_estimates.parquet", "synthetic/summary.parquet"} <= {t.relpath for t in tables}
    expected = render_markdown(tables)
    current = (REPO / "docs/results.md").read_text()
    if current != expected:
        diff = "\n".join(difflib.unified_diff(current.splitlines(), expected.splitlines(), "docs/results.md",
                                              "tables of the smoke run", lineterm="", n=1))
        pytest.fail("docs/results.md is out of date; regenerate it from a pipeline run with\n"
                    "  softmax-mi catalogue --results <run>/results --write docs/results.md\n" + diff[:4000])


@pytest.mark.slow
def test_every_table_documents_every_column(smoke_run):
    undocumented = {t.relpath: [c.name for c in t.columns if not c.meaning] for t in discover(smoke_run / "results")}
    assert not {k: v for k, v in undocumented.items() if v}, f"columns without a description: {undocumented}"


@pytest.mark.slow
def test_provenance_columns(smoke_run):
    tables = discover(smoke_run / "results")
    assert provenance_gaps(tables) == {}, "every result table records params_hash and package_version"
    for table in tables:
        frame = pd.read_parquet(table.path, columns=["params_hash", "package_version"])
        assert frame.notna().all().all() and (frame != "").all().all(), table.relpath
    assert naming_issues(tables) == [], "common columns are spelled the same in every table"
