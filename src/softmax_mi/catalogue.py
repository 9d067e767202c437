"""The catalogue of result tables: which Parquet files exist under ``results/``, what their columns mean, and the
names under which ``softmax-mi query`` exposes them.

Tables
    Every ``*.parquet`` under ``results/`` except the per-job leaves in ``runs/`` folders (those are gathered,
    unchanged, into the table beside them). A table's schema travels in the file: ``softmax_mi.io.write_table``
    stores each column's meaning (field metadata ``description``) and unit (``unit``, given or inferred from the
    description); the table's own description is schema metadata ``softmax_mi.description``.

Naming rule for SQL views (``softmax-mi query``)
    ``results/<part>/<stem>.parquet`` is the view ``<part>_<stem>`` (``synthetic_mi_estimates``,
    ``classification_summary``), and also plain ``<stem>`` when no other part has a table of that stem
    (``mi_estimates``, ``per_class``, ``curves``; but not ``metrics`` or ``summary``, which several parts have).
    A file directly under ``results/`` is ``<stem>``. Names are lower-case; characters other than letters, digits
    and ``_`` become ``_``.

``docs/results.md`` is generated from the tables (``softmax-mi catalogue --write docs/results.md``);
``tests/test_catalogue.py`` fails when it drifts from the tables of the smoke run.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from softmax_mi.io import infer_unit
from softmax_mi.provenance import PROVENANCE_COLUMNS

#: Columns every result table should carry (one row = one provenance record).
REQUIRED_COLUMNS = tuple(PROVENANCE_COLUMNS)

#: Spellings that mean the same thing across parts; the first is the project-wide name (docs/results.md).
COMMON_NAMES = {
    "dataset": ("dataset", "task"),
    "seed": ("seed", "seeds"),
    "split": ("split",),
    "n_test": ("n_test", "n_eval", "n_images"),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    unit: str
    meaning: str


@dataclass(frozen=True)
class Table:
    path: Path  # absolute
    relpath: str  # relative to the results folder, POSIX
    part: str  # first folder under results/ ('' for files directly in it)
    stem: str
    views: tuple[str, ...] = ()
    description: str = ""
    columns: tuple[Column, ...] = field(default=())

    @property
    def view(self) -> str:
        """The canonical (always available) view name."""
        return self.views[0]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def missing_provenance(self) -> list[str]:
        return [name for name in REQUIRED_COLUMNS if name not in self.column_names]


def _sanitise(name: str) -> str:
    return re.sub(r"[^0-9a-z_]", "_", name.lower())


def _read_columns(path: Path) -> tuple[str, tuple[Column, ...]]:
    schema = pq.read_schema(path)
    columns = []
    for arrow_field in schema:
        meta = arrow_field.metadata or {}
        meaning = meta.get(b"description", b"").decode()
        unit = meta.get(b"unit", b"").decode() if b"unit" in meta else infer_unit(meaning)
        type_name = str(arrow_field.type).replace("large_string", "string")
        columns.append(Column(arrow_field.name, type_name, unit, meaning))
    description = (schema.metadata or {}).get(b"softmax_mi.description", b"").decode()
    return description, tuple(columns)


def discover(results: str | Path = "results") -> list[Table]:
    """Every result table under ``results`` (sorted by path), with its view names and schema."""
    root = Path(results)
    if not root.is_dir():
        return []
    paths = []
    for folder, subfolders, files in os.walk(root, followlinks=True):
        subfolders[:] = sorted(d for d in subfolders if d != "runs" and not d.startswith("."))
        paths += [Path(folder) / f for f in files if f.endswith(".parquet") and not f.startswith(".")]
    paths.sort()
    found = []
    for path in paths:
        rel = path.relative_to(root)
        part = rel.parts[0] if len(rel.parts) > 1 else ""
        # a deeper file (results/<part>/sub/x.parquet) keeps its sub-folders in the stem
        stem = "_".join([*rel.parts[1:-1], path.stem]) if part else path.stem
        found.append((path, rel.as_posix(), _sanitise(part), _sanitise(stem)))
    stem_counts = Counter(stem for _, _, _, stem in found)
    tables = []
    for path, rel, part, stem in found:
        views = [f"{part}_{stem}" if part else stem]
        if part and stem_counts[stem] == 1:
            views.append(stem)
        description, columns = _read_columns(path)
        tables.append(Table(path.resolve(), rel, part, stem, tuple(views), description, columns))
    # a bare stem must not shadow a canonical name of another table
    canonical = {t.view for t in tables}
    return [
        Table(t.path, t.relpath, t.part, t.stem, (t.view, *[v for v in t.views[1:] if v not in canonical]),
              t.description, t.columns)
        for t in tables
    ]


def view_map(tables: list[Table]) -> dict[str, Table]:
    """Every view name (canonical and alias) → its table."""
    return {view: table for table in tables for view in table.views}


def find(tables: list[Table], name: str) -> Table | None:
    """A table by view name, relative path or file name (``mi_estimates``, ``synthetic/summary.parquet``)."""
    name = name.strip()
    views = view_map(tables)
    if _sanitise(name) in views:
        return views[_sanitise(name)]
    for table in tables:
        if name in (table.relpath, table.relpath.removesuffix(".parquet")):
            return table
    return None


def ambiguous(tables: list[Table], name: str) -> list[str]:
    """Canonical names of the tables whose stem is ``name`` (a bare stem several parts share)."""
    return sorted(t.view for t in tables if t.stem == _sanitise(name.strip()))


def provenance_gaps(tables: list[Table]) -> dict[str, list[str]]:
    """Tables lacking a provenance column (``params_hash``, ``package_version``) → the missing names."""
    return {t.relpath: t.missing_provenance for t in tables if t.missing_provenance}


def naming_issues(tables: list[Table]) -> list[str]:
    """Columns spelled differently from the project-wide name of the same concept (COMMON_NAMES)."""
    issues = []
    for canonical, spellings in COMMON_NAMES.items():
        for table in tables:
            for other in spellings[1:]:
                if other in table.column_names and canonical not in table.column_names:
                    issues.append(f"{table.relpath}: column '{other}' plays the role of '{canonical}'")
    return issues


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or "—"


def render_markdown(tables: list[Table]) -> str:
    """``docs/results.md``: naming rule, then one table per file (column, type, unit, meaning)."""
    lines = [
        "# Result tables",
        "",
        "<!-- generated by `softmax-mi catalogue --write docs/results.md` from a results folder; do not edit by hand."
        " tests/test_catalogue.py compares it with the tables of the smoke run. -->",
        "",
        "Every table is a Parquet file under `results/<part>/` that carries this schema itself (pyarrow field "
        "metadata `description` and `unit`; `softmax-mi tables TABLE` prints it). Per-job leaves under "
        "`results/<part>/runs/` have the schema of the table they are gathered into and are not listed.",
        "",
        "**Query names.** `softmax-mi query \"SELECT …\"` sees `results/<part>/<stem>.parquet` as the view "
        "`<part>_<stem>`, and also as plain `<stem>` when no other part has a table of that stem. "
        "MI is in nats, accuracies are fractions 0–1, times in seconds.",
        "",
        "**Provenance.** Rows carry `params_hash` (sha256 prefix of the settings that produced the row) and "
        "`package_version`.",
        "",
    ]
    gaps = provenance_gaps(tables)
    if gaps:
        lines += ["Tables without provenance columns: "
                  + ", ".join(f"`{rel}` (no {', '.join(missing)})" for rel, missing in gaps.items()) + ".", ""]
    lines += ["| file | query names | description |", "|---|---|---|"]
    for table in tables:
        names = ", ".join(f"`{v}`" for v in table.views)
        link = f"[`results/{table.relpath}`](#{_anchor(table.relpath)})"
        lines.append(f"| {link} | {names} | {_cell(table.description)} |")
    for table in tables:
        lines += ["", f"## results/{table.relpath}", ""]
        lines.append(f"Query names: {', '.join(f'`{v}`' for v in table.views)}."
                     + (f" {table.description[:1].upper()}{table.description[1:]}." if table.description else ""))
        lines += ["", "| column | type | unit | meaning |", "|---|---|---|---|"]
        for column in table.columns:
            lines.append(f"| `{column.name}` | {column.type} | {_cell(column.unit)} | {_cell(column.meaning)} |")
    return "\n".join(lines) + "\n"


def _anchor(relpath: str) -> str:
    return re.sub(r"[^0-9a-z_\- ]", "", f"results/{relpath}".lower()).replace(" ", "-")
