"""The README's result blocks, generated from a results folder: every number the README's Part 1–3 sections quote
comes from the tables the run wrote, never typed by hand.

A block is a stretch of README.md between two markers::

    <!-- BEGIN generated: part1-table -->
    …text this module writes…
    <!-- END generated: part1-table -->

:data:`BLOCKS` maps each block name to its renderer (``results`` folder → Markdown). The renderers read the parts'
summaries (``results/<part>/summary.parquet``, :data:`softmax_mi.report.sections.TABLES`) and reuse the report's
cells (:func:`softmax_mi.report.document.pm`), tables (:func:`softmax_mi.report.render.to_markdown`) and verdicts
(:mod:`softmax_mi.report.claims`), so the README and ``results/report.md`` always say the same thing.
:data:`FIGURES` names the figures the README shows (``docs/figures/…``) and the result file each is copied from.

Entry points: ``softmax-mi readme --write README.md`` (``make readme``) and ``softmax-mi readme --check README.md``.
"""

from __future__ import annotations

import difflib
import math
import re
import shutil
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from softmax_mi.report.build import assemble
from softmax_mi.report.document import Report, finite, fmt, pm
from softmax_mi.report.reference import PAPER_MNIST, PAPER_SYNTHETIC
from softmax_mi.report.render import to_markdown
from softmax_mi.report.sections import TABLES, _loss_name

MARKER = re.compile(r"^<!-- (BEGIN|END) generated: ([^ ]+) -->$", re.MULTILINE)


class ReadmeError(ValueError):
    """A README whose markers cannot be filled (unknown block, unpaired marker) or a results folder that lacks a
    table a block needs; the message names the block or the file and the fix."""


# ------------------------------------------------------------------------------------------------ reading tables
def read(results: Path, relpath: str) -> pd.DataFrame:
    """The table ``results/relpath``; a missing one is an error naming the file."""
    path = Path(results) / relpath
    if not path.is_file():
        raise ReadmeError(f"{path} is missing: run the pipeline first (`make run`), or pass --results DIR")
    return pd.read_parquet(path)


def summary(results: Path, part: str) -> pd.DataFrame:
    """The part's summary table (:data:`softmax_mi.report.sections.TABLES`)."""
    return read(results, TABLES[part])


def verdict_lines(results: Path, *keys: str) -> str:
    """The report's verdict paragraph of each claim in ``keys`` (``**C1 — reproduced.** statement: reason.``)."""
    report = Report()
    for claim in assemble(results).claims:
        if claim.key in keys:
            report.claim(claim)
    return to_markdown(report).strip()


def table(head: list[str], rows: list[list[str]]) -> str:
    """A Markdown table, rendered as the report renders its tables."""
    report = Report()
    report.add("table", head, rows)
    return to_markdown(report).strip()


def at_most(value: float, digits: int = 3) -> str:
    """``value`` rounded *up* to ``digits`` decimals: "within {at_most(x)} nats" stays true after rounding."""
    scale = 10 ** digits
    return f"{math.ceil(round(value * scale, 6)) / scale:.{digits}f}"


def seed_count(frame: pd.DataFrame) -> int:
    """How many distinct seeds the summary rows of ``frame`` pool (column ``seed_list``)."""
    return len({int(seed) for seeds in frame["seed_list"] for seed in seeds})


def span(values, digits: int = 3, sign: bool = False) -> str:
    """``a`` or ``a–b`` for the smallest and largest of ``values``."""
    low, high = float(np.min(values)), float(np.max(values))
    form = f"{{:{'+' if sign else ''}.{digits}f}}"
    return form.format(low) if round(low, digits) == round(high, digits) else \
        f"{form.format(low)} to {form.format(high)}"


# ------------------------------------------------------------------------------------------------ Part 1
def gaussian(results: Path) -> pd.DataFrame:
    """The synthetic summary's rows of the Gaussian task."""
    stats = summary(results, "synthetic")
    return stats[stats["dataset"] == "gaussian"]


def part1_table(results: Path) -> str:
    """True MI and the classifier estimates per dimension, balanced and imbalanced (nats, mean ± std)."""
    stats = gaussian(results)

    def row(balance: str, dim: int, estimator: str):
        found = stats[(stats["balance"] == balance) & (stats["dim"] == dim) & (stats["estimator"] == estimator)]
        return found.iloc[0] if len(found) else None

    rows = []
    for dim in sorted(stats["dim"].unique()):
        cells = [str(dim)]
        for balance, estimator in (("balanced", "softmax"), ("imbalanced", "pc_softmax")):
            found = row(balance, dim, estimator)
            cells += [fmt(found["mi_true"]), pm(found["mean"], found["std"])] if found is not None else ["—", "—"]
        plain = row("imbalanced", dim, "softmax")
        cells.append(f"{fmt(plain['mean'])} ({plain['bias']:+.3f})" if plain is not None else "—")
        rows.append(cells)
    caption = (f"{seed_count(stats)} seeds, nats (mean ± std over seeds; from "
               f"`results/{TABLES['synthetic']}`):")
    head = ["d", "true MI, balanced", "softmax `log K − CE`", "true MI, imbalanced", "PC-softmax `mean log PC_y`",
            "plain softmax on imbalanced (bias)"]
    return caption + "\n\n" + table(head, rows)


def _bias(stats: pd.DataFrame, estimators: tuple[str, ...], **where) -> np.ndarray:
    picked = stats[stats["estimator"].isin(estimators)]
    for column, value in where.items():
        picked = picked[picked[column] == value]
    return picked["bias"].to_numpy()


def part1_findings(results: Path) -> str:
    """C1 and C2 in numbers, the other estimators' bias, Gao et al.'s task, and the two verdicts."""
    every = summary(results, "synthetic")
    stats = every[every["dataset"] == "gaussian"]
    lines = []
    balanced = _bias(stats, ("softmax",), balance="balanced")
    if len(balanced):
        lines.append(f"- Balanced: `log K − CE` is within {at_most(np.abs(balanced).max())} nats of the truth at "
                     f"every d (the paper's central claim, C1).")
    pc, plain = _bias(stats, ("pc_softmax",), balance="imbalanced"), stats[
        (stats["estimator"] == "softmax") & (stats["balance"] == "imbalanced")]
    if len(pc) and len(plain):
        expected = float(np.log(plain["n_classes"].iloc[0]) - plain["entropy_y"].iloc[0])
        lines.append(f"- Imbalanced: PC-softmax's |bias| is at most {at_most(np.abs(pc).max())} nats; plain softmax's "
                     f"bias is {span(plain['bias'], sign=True)} nats, where the bound predicts "
                     f"log K − H(Y) = {expected:.3f} (C2).")
    gaps = [abs(r.mi_true - PAPER_SYNTHETIC[r.balance]["truth"][r.dim]) for r in stats.itertuples()
            if r.dim in PAPER_SYNTHETIC.get(r.balance, {}).get("truth", {})]
    if gaps:
        lines.append(f"- The true MI matches docs/paper.md §2's Monte-Carlo table within {at_most(max(gaps))} nats.")
    critics = _bias(stats, ("mine", "infonce", "nwj"))
    knn = _bias(stats, ("knn", "sklearn_knn"))
    if len(critics) or len(knn):
        parts = []
        if len(critics):
            parts.append(f"MINE, InfoNCE and NWJ with the same critic family and step budget are off by "
                         f"{span(critics, sign=True)} nats (estimate − truth)")
        if len(knn):
            parts.append(f"the kNN estimators by {span(knn, sign=True)}")
        lines.append("- " + "; ".join(parts) + ", over every d and balance.")
    uniform = every[every["dataset"] == "uniform"]
    if len(uniform):
        trained = _bias(uniform, ("softmax", "pc_softmax", "mine", "infonce", "nwj"))
        knn = _bias(uniform, ("knn", "sklearn_knn"))
        lines.append(f"- Gao et al.'s task (closed form {uniform['mi_true'].iloc[0]:.3f} nats): the trained "
                     f"estimators are off by {span(trained, sign=True) if len(trained) else '—'} nats, the kNN "
                     f"estimators by {span(knn, sign=True) if len(knn) else '—'}.")
    return "\n".join(lines) + "\n\n" + verdict_lines(results, "C1", "C2")


# ------------------------------------------------------------------------------------------------ Part 2
LOSS_LABELS = {"softmax": "softmax", "pc_softmax": "PC-softmax", "posthoc_la": "post-hoc logit adjustment",
               "logit_adjusted": "logit adjustment", "class_balanced": "class-balanced", "ldam_drw": "LDAM-DRW"}


def loss_label(loss: str, tau) -> str:
    """A loss's name for the README's tables (``post-hoc logit adjustment (τ=1)``)."""
    return _loss_name(LOSS_LABELS.get(loss, loss), tau)


def classification_test(results: Path) -> pd.DataFrame:
    """The classification summary's test rows, in (dataset, protocol, setting, loss, τ) order."""
    stats = summary(results, "classification")
    test = stats[stats["split"] == "test"]
    return test.assign(tau_key=test["tau"].fillna(-1.0)).sort_values(
        ["dataset", "protocol", "setting", "loss", "tau_key"], ignore_index=True)


def part2_faithful(results: Path) -> str:
    """The faithful MNIST protocol: accuracies per loss beside the independent re-run (percent)."""
    test = classification_test(results)
    faithful = test[(test["dataset"] == "mnist") & (test["protocol"] == "faithful")]
    order = {"softmax": 0, "pc_softmax": 1}
    rows = []
    for setting in ("faithful-imbalanced", "faithful-balanced"):
        picked = faithful[faithful["setting"] == setting]
        for r in sorted(picked.itertuples(index=False), key=lambda r: (order.get(r.loss, 2), r.loss)):
            paper = PAPER_MNIST.get((setting, r.loss))
            rows.append([setting.removeprefix("faithful-"), loss_label(r.loss, r.tau), str(r.n_seeds),
                         pm(r.micro_acc_mean, r.micro_acc_std, 2, 100), pm(r.macro_acc_mean, r.macro_acc_std, 2, 100),
                         fmt(100 * r.minority_acc_mean, 2),
                         f"{paper[0]:.2f} / {paper[1]:.2f}" if paper else "—"])
    caption = (f"Test accuracy in percent, mean ± std over seeds (`results/{TABLES['classification']}`; "
               "\"minority classes\" is the mean accuracy of the five small classes):")
    head = ["faithful protocol", "loss", "seeds", "micro", "macro", "minority classes",
            "re-run, docs/paper.md §3.1 (micro / macro)"]
    return caption + "\n\n" + table(head, rows or [["—"] * len(head)])


def paired_lifts(results: Path, setting: str, metric: str = "macro_acc") -> pd.Series:
    """PC-softmax − softmax per seed (percentage points) on MNIST's ``setting``, test split, seeds paired."""
    rows = read(results, "classification/metrics.parquet")
    rows = rows[(rows["dataset"] == "mnist") & (rows["setting"] == setting) & (rows["split"] == "test")
                & rows["tau"].isna()]
    by_loss = rows.pivot_table(index="seed", columns="loss", values=metric)
    if not {"softmax", "pc_softmax"} <= set(by_loss.columns):
        return pd.Series(dtype=float)
    return (100 * (by_loss["pc_softmax"] - by_loss["softmax"])).dropna()


def part2_findings(results: Path) -> str:
    """The faithful lift of PC-softmax over softmax, its spread over paired seeds, the balanced control, and C3."""
    lines = []
    lifts = paired_lifts(results, "faithful-imbalanced")
    micro = paired_lifts(results, "faithful-imbalanced", "micro_acc")
    if len(lifts):
        error = lifts.std(ddof=1) / math.sqrt(len(lifts)) if len(lifts) > 1 else float("nan")
        lines.append(
            f"Macro accuracy on imbalanced MNIST, PC-softmax minus softmax: **{lifts.mean():+.2f} points** over "
            f"{len(lifts)} paired seeds (standard error {fmt(error, 2)}; {int((lifts > 0).sum())} of {len(lifts)} "
            f"differences positive, from {lifts.min():+.2f} to {lifts.max():+.2f}); micro accuracy moves by "
            f"{micro.mean():+.2f} points.")
    balanced = paired_lifts(results, "faithful-balanced")
    if len(balanced):
        lines.append(f"On balanced data the two losses differ by {at_most(balanced.abs().max(), 2)} points at most, "
                     "as they must (the prior is uniform, so the losses differ by a constant).")
    test = classification_test(results)
    faithful = test[(test["dataset"] == "mnist") & (test["setting"] == "faithful-imbalanced")]
    macro = {loss: faithful.loc[faithful["loss"] == loss, "macro_acc_mean"] for loss in ("pc_softmax", "posthoc_la")}
    if all(len(values) for values in macro.values()):
        lines.append(f"Post-hoc logit adjustment of the softmax runs (τ = 1) reaches "
                     f"{100 * macro['posthoc_la'].iloc[0]:.2f} macro against PC-softmax training's "
                     f"{100 * macro['pc_softmax'].iloc[0]:.2f}.")
    return " ".join(lines) + "\n\n" + verdict_lines(results, "C3")


STANDARD_LOSSES = (("softmax", None), ("pc_softmax", None), ("posthoc_la", 1.0), ("logit_adjusted", 2.0),
                   ("class_balanced", None), ("ldam_drw", None))


def part2_standard(results: Path) -> str:
    """The standard long-tail protocol: macro accuracy per (dataset, setting) and loss beside the same LeNet trained
    on the balanced set (percent, mean ± std), then each setting's losses ranked where the seeds allow it."""
    test = classification_test(results)
    standard = test[test["protocol"] == "standard"]
    losses = [(loss, tau) for loss, tau in STANDARD_LOSSES
              if ((standard["loss"] == loss) & (standard["tau_key"] == (-1.0 if tau is None else tau))).any()]
    reference = standard[(standard["setting"] == "balanced") & (standard["loss"] == "softmax")]
    rows = []
    for (dataset, setting), group in standard[standard["setting"] != "balanced"].groupby(["dataset", "setting"]):
        cells = [dataset, setting, str(group["n_seeds"].max())]
        for loss, tau in losses:
            found = group[(group["loss"] == loss) & (group["tau_key"] == (-1.0 if tau is None else tau))]
            cells.append(pm(found["macro_acc_mean"].iloc[0], found["macro_acc_std"].iloc[0], 1, 100)
                         if len(found) else "—")
        balanced = reference[reference["dataset"] == dataset]
        cells.append(pm(balanced["macro_acc_mean"].iloc[0], balanced["macro_acc_std"].iloc[0], 1, 100)
                     if len(balanced) else "—")
        rows.append(cells)
    caption = (f"Standard protocol, macro accuracy on the balanced test set in percent, mean ± std over seeds "
               f"(`results/{TABLES['classification']}`); the last column is the same LeNet and recipe trained on the "
               "balanced set (every class at the largest class's size):")
    head = ["dataset", "setting", "seeds", *(loss_label(loss, tau) for loss, tau in losses), "balanced LeNet"]
    return caption + "\n\n" + table(head, rows or [["—"] * len(head)]) + "\n\n" + standard_ranking(results)


def standard_ranking(results: Path) -> str:
    """Per standard setting, the losses in order of mean macro accuracy; ``>`` between neighbours only where the upper
    one is ahead on every (paired) seed by more than either one's seed range (max − min), ``≈`` otherwise."""
    rows = read(results, "classification/metrics.parquet")
    rows = rows[(rows["protocol"] == "standard") & (rows["split"] == "test") & (rows["setting"] != "balanced")]
    lines = []
    for (dataset, setting), group in rows.groupby(["dataset", "setting"], sort=True):
        by_run = group.assign(name=[loss_label(l, None if pd.isna(t) else t) for l, t in zip(group["loss"], group["tau"])]
                              ).pivot_table(index="seed", columns="name", values="macro_acc")
        if by_run.shape[0] < 2:
            continue
        order = by_run.mean().sort_values(ascending=False).index
        text = order[0]
        for upper, lower in zip(order, order[1:]):
            spread = max(by_run[upper].max() - by_run[upper].min(), by_run[lower].max() - by_run[lower].min())
            text += (" > " if ((by_run[upper] - by_run[lower]) > spread).all() else " ≈ ") + lower
        lines.append(f"- {dataset} {setting}: {text}")
    return ("Ranked by macro accuracy (`>`: ahead on every paired seed by more than either loss's seed range; "
            "`≈`: the seeds do not separate them):\n\n" + "\n".join(lines)) if lines else ""


# ------------------------------------------------------------------------------------------------ Part 3
METHOD_LABELS = {"cam": "CAM", "infocam": "infoCAM (centred region sum)",
                 "infocam_full": "infoCAM, original \"full\" padding", "infocam_noregion": "infoCAM without region sum",
                 "infocam_leastlikely": "least-likely-class variant", "gradcam": "Grad-CAM",
                 "centre_box": "centre box (floor)"}
PART3_COLUMNS = (("paper", "gt_known_loc", "paper (fixed τ): GT-known"), ("maxboxacc", "gt_known_loc", "τ from val: GT-known"),
                 ("maxboxacc", "top1_loc", "τ from val: Top-1"), ("maxboxacc_v2", "maxboxacc_v2", "MaxBoxAccV2"))


def localisation_test(results: Path) -> pd.DataFrame:
    """The localisation summary's test rows."""
    stats = summary(results, "localisation")
    return stats[stats["split"] == "test"]


def _cell(rows: pd.DataFrame, method: str, protocol: str, metric: str) -> tuple:
    found = rows[(rows["method"] == method) & (rows["protocol"] == protocol) & (rows["metric"] == metric)
                 & (rows["iou"].isna() | np.isclose(rows["iou"].fillna(0.5), 0.5))]
    return (found["mean"].iloc[0], found["std"].iloc[0]) if len(found) else (None, None)


def part3_table(results: Path) -> str:
    """Localisation accuracy of every method per protocol, one table per trained model (percent, mean ± std)."""
    stats = localisation_test(results)
    blocks = []
    for (dataset, backbone, adl), rows in stats.groupby(["dataset", "backbone", "adl"], sort=True):
        methods = [m for m in METHOD_LABELS if m in set(rows["method"])]
        methods += sorted(set(rows["method"]) - set(METHOD_LABELS) - {"classifier"})
        table_rows = [[METHOD_LABELS.get(m, m), *(pm(*_cell(rows, m, p, metric), 1, 100)
                                                  for p, metric, _ in PART3_COLUMNS)] for m in methods]
        accuracy = pm(*_cell(rows, "classifier", "classification", "top1_acc"), 2, 100)
        blocks.append(f"{dataset}, {backbone}{' + ADL' if adl else ''}, {seed_count(rows)} seeds (classifier test "
                      f"accuracy {accuracy} %), test split, percent, mean ± std "
                      f"(`results/{TABLES['localisation']}`):\n\n"
                      + table(["method", *(label for *_, label in PART3_COLUMNS)], table_rows))
    return "\n\n".join(blocks) or f"No test rows in `results/{TABLES['localisation']}`."


def part3_findings(results: Path) -> str:
    """infoCAM's gain over CAM under validation-chosen τ (with and without the region sum), and C4."""
    stats = localisation_test(results)
    lines = []
    for (dataset, backbone, adl), rows in stats.groupby(["dataset", "backbone", "adl"], sort=True):
        def gain(method: str, protocol: str, metric: str):
            cam, other = _cell(rows, "cam", protocol, metric)[0], _cell(rows, method, protocol, metric)[0]
            return 100 * (other - cam) if finite(cam) and finite(other) else None

        val = [gain("infocam", "maxboxacc", metric) for metric in ("gt_known_loc", "top1_loc")]
        if not all(finite(g) for g in val):
            continue
        v2, noregion = gain("infocam", "maxboxacc_v2", "maxboxacc_v2"), gain("infocam_noregion", "maxboxacc",
                                                                             "gt_known_loc")
        name = f"{dataset}, {backbone}{' + ADL' if adl else ''}"
        lines.append(f"- {name}: under validation-chosen thresholds infoCAM's GT-known / Top-1 loc differ from "
                     f"CAM's by {val[0]:+.1f} / {val[1]:+.1f} points, MaxBoxAccV2 by "
                     f"{f'{v2:+.1f}' if finite(v2) else '—'}"
                     + (f"; without the region sum the GT-known difference is {noregion:+.1f}" if finite(noregion)
                        else "") + ".")
    return "\n".join(lines) + ("\n\n" if lines else "") + verdict_lines(results, "C4")


# ------------------------------------------------------------------------------------------------ beyond the paper
def report_section(results: Path, title: str) -> str:
    """The report's own section whose heading starts with ``title`` (its paragraphs, tables and verdicts; figures
    left out: the README shows its copies under docs/figures), so the README and the report say the same thing."""
    section, inside = Report(), False
    for block in assemble(results).blocks:
        if block[0] == "h2":
            inside = block[1].startswith(title)
        elif inside and block[0] != "figure":
            section.blocks.append(block)
    if not section.blocks:
        raise ReadmeError(f"the report of {results} has no section {title!r}: run the pipeline first (`make run`)")
    return to_markdown(section).strip()


def label_shift(results: Path) -> str:
    """Section 4 of the report: the trained models under test priors unlike the training prior, with its verdicts."""
    return report_section(results, "4. Label shift")


def benchmark(results: Path) -> str:
    """Section 5 of the report: the discrete-label MI benchmark, with its verdicts."""
    return report_section(results, "5. A discrete-label MI benchmark")


def verdicts(results: Path) -> str:
    """The report's verdict per claim (C1–C4) as a table."""
    rows = [[c.key, c.statement, c.verdict] for c in assemble(results).claims]
    return table(["claim", "statement", "verdict"], rows)


# ------------------------------------------------------------------------------------------------ registry
@dataclass(frozen=True)
class Block:
    """A generated block of a README: its name, the lines of its two markers (1-based) and the character range of
    the text between them."""
    name: str
    begin: int
    end: int
    start: int
    stop: int


#: Block name → renderer (results folder → Markdown). The README may use any subset, each at most once.
BLOCKS: dict[str, Callable[[Path], str]] = {
    "verdicts": verdicts,
    "part1-table": part1_table,
    "part1-findings": part1_findings,
    "part2-faithful": part2_faithful,
    "part2-findings": part2_findings,
    "part2-standard": part2_standard,
    "part3-table": part3_table,
    "part3-findings": part3_findings,
    "label-shift": label_shift,
    "benchmark": benchmark,
}

#: Figure the README shows (relative to the README's folder) → the result file it is copied from.
FIGURES: dict[str, str] = {
    "docs/figures/mi_vs_truth.png": "synthetic/mi_vs_truth.png",
    "docs/figures/per_class_accuracy.png": "classification/per_class_accuracy.png",
    "docs/figures/heatmaps.png": "localisation/figures/cluttered_mnist/heatmaps.png",
    "docs/figures/convergence.png": "classification/convergence.png",
    "docs/figures/label_shift_accuracy.png": "label_shift/accuracy_vs_ratio.png",
    "docs/figures/benchmark_bias.png": "benchmark/bias.png",
}


def find_blocks(text: str, where: str = "README.md") -> list[Block]:
    """The generated blocks of ``text`` in order; an unknown name, a marker without its partner or a block used
    twice is a :class:`ReadmeError` naming the line."""
    blocks, open_at, seen = [], None, set()
    for match in MARKER.finditer(text):
        kind, name = match.groups()
        line = text.count("\n", 0, match.start()) + 1
        if name not in BLOCKS:
            raise ReadmeError(f"{where}:{line}: unknown generated block {name!r}; known blocks: "
                              f"{', '.join(BLOCKS)}")
        if kind == "BEGIN":
            if open_at is not None:
                raise ReadmeError(f"{where}:{line}: block {name!r} begins inside block {open_at[0]!r} "
                                  f"(line {open_at[1]}); close that one first")
            if name in seen:
                raise ReadmeError(f"{where}:{line}: block {name!r} appears twice; keep one")
            open_at = (name, line, match.end() + 1)
        else:
            if open_at is None or open_at[0] != name:
                raise ReadmeError(f"{where}:{line}: <!-- END generated: {name} --> without its BEGIN marker")
            seen.add(name)
            blocks.append(Block(name, open_at[1], line, open_at[2], match.start()))
            open_at = None
    if open_at is not None:
        raise ReadmeError(f"{where}:{open_at[1]}: block {open_at[0]!r} has no <!-- END generated: {open_at[0]} -->")
    return blocks


WIDTH = 118  # prose lines are wrapped at the README's width; table rows are not


def wrap(markdown: str) -> str:
    """Prose lines wrapped at :data:`WIDTH` (a list item's continuation indented under its text); tables kept."""
    lines = []
    for line in markdown.splitlines():
        if line.startswith("|") or len(line) <= WIDTH:
            lines.append(line)
        else:
            lines += textwrap.wrap(line, WIDTH, subsequent_indent="  " if line.startswith("- ") else "",
                                   break_long_words=False, break_on_hyphens=False)
    return "\n".join(lines)


def render(name: str, results: str | Path) -> str:
    """Block ``name``'s text from ``results`` (what goes between its markers: a blank line around it)."""
    return "\n" + wrap(BLOCKS[name](Path(results)).strip()) + "\n\n"


def fill(text: str, results: str | Path, where: str = "README.md") -> str:
    """``text`` with every generated block rewritten from ``results``."""
    for block in reversed(find_blocks(text, where)):
        text = text[:block.start] + render(block.name, results) + text[block.stop:]
    return text


def stale(text: str, results: str | Path, where: str = "README.md") -> list[str]:
    """One message per block whose text differs from what ``results`` gives: its name, lines and a short diff."""
    messages = []
    for block in find_blocks(text, where):
        current, expected = text[block.start:block.stop], render(block.name, results)
        if current != expected:
            diff = list(difflib.unified_diff(current.splitlines(), expected.splitlines(), lineterm="", n=0))[2:]
            shown = "\n".join(f"    {line}" for line in diff[:12]) + ("\n    …" if len(diff) > 12 else "")
            messages.append(f"{where}:{block.begin}-{block.end}: block {block.name!r} is stale "
                            f"(- README, + results)\n{shown}")
    return messages


def figure_pairs(results: str | Path, root: str | Path) -> list[tuple[Path, Path]]:
    """(result file, README copy) for each figure of :data:`FIGURES`; a missing result file is an error naming it."""
    pairs = []
    for target, source in FIGURES.items():
        origin = Path(results) / source
        if not origin.is_file():
            raise ReadmeError(f"{origin} is missing (the README shows it as {target}): run the pipeline first")
        pairs.append((origin, Path(root) / target))
    return pairs


def copy_figures(results: str | Path, root: str | Path) -> list[Path]:
    """Copy each figure of :data:`FIGURES` from ``results`` to ``root`` (the README's folder); the copies."""
    pairs = figure_pairs(results, root)
    for origin, copy in pairs:
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(origin, copy)
    return [copy for _, copy in pairs]


def stale_figures(results: str | Path, root: str | Path) -> list[str]:
    """The README's figures (paths under ``root``) that are missing or differ from their result file."""
    return [str(copy) for origin, copy in figure_pairs(results, root)
            if not copy.is_file() or copy.read_bytes() != origin.read_bytes()]
