"""The pipeline's figures are drawn for the report's width: panels in a grid, legends outside the data, honest axes
(tables made up here; no pipeline run)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from softmax_mi import plots


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plot functions would save, kept open for inspection (nothing is written)."""
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda figure, target: figures.append(figure))
    yield figures
    for figure in figures:
        plots.plt.close(figure)


def per_class_rows(settings: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [dict(dataset="mnist", setting=f"s{s}", split="test", loss=loss, seed=seed, **{"class": c},
                 n_train=3000 if c % 2 else 30, accuracy=min(1.0, 0.97 + 0.05 * rng.random()))
            for s in range(settings) for loss in ("softmax", "pc_softmax") for seed in (0, 1) for c in range(10)]
    return pd.DataFrame(rows)


def test_six_panels_make_a_page_wide_grid_on_a_full_axis(drawn):
    plots.plot_per_class_accuracy(per_class_rows(), "unused.png")
    (figure,) = drawn
    axes = figure.get_axes()
    assert len(axes) == 6
    assert {a.get_subplotspec().get_gridspec().get_geometry() for a in axes} == {(2, 3)}
    width, _ = figure.get_size_inches()
    assert width * plots.DPI <= 1200, "wider than the report's text column"
    assert all(a.get_ylim() == (0, 100) for a in axes), "a bar chart's axis starts at 0"
    assert all(a.get_legend() is None for a in axes) and len(figure.legends) == 1, "the legend sits outside the bars"
    tops = [seg[:, 1].max() for a in axes for c in a.collections for seg in c.get_segments()]  # error bar segments
    assert tops and max(tops) <= 100 + 1e-9, "an error bar passes 100 %"
    assert "3k" in {t.get_text().split("\n")[1] for t in axes[0].get_xticklabels()}


def test_clipped_error_stays_within_bounds():
    mean, std = pd.Series([98.0, 2.0, 50.0]), pd.Series([5.0, 5.0, np.nan])
    assert plots.clipped_error(mean, std).tolist() == [[5.0, 2.0, 0.0], [2.0, 5.0, 0.0]]


def test_a_single_dimension_panel_has_its_reference_lines(drawn):
    rows = [dict(dataset="uniform", balance="balanced", dim=1, estimator=e, mi_true=1.05, entropy_y=1.6,
                 mean=1.0, std=0.01) for e in ("knn", "softmax")]
    rows += [dict(dataset="gaussian", balance="balanced", dim=d, estimator="knn", mi_true=m, entropy_y=1.6,
                  mean=m, std=0.01) for d, m in ((1, 1.0), (2, 1.3))]
    plots.plot_mi_vs_truth(pd.DataFrame(rows), "unused.png")
    (figure,) = drawn
    for axis in figure.get_axes():
        labels = {line.get_label(): line for line in axis.get_lines()}
        assert {"true MI", "H(Y)"} <= set(labels), axis.get_title()
        assert len(set(labels["H(Y)"].get_ydata())) == 1
    uniform = next(a for a in figure.get_axes() if a.get_title().startswith("uniform"))
    assert list(uniform.get_lines()[0].get_xdata()) == [0, 1], "one d: the true MI spans the panel"


def test_the_convergence_figure_has_a_panel_per_setting_and_the_reference_is_a_level(drawn):
    curve = pd.DataFrame([dict(dataset=d, setting=s, loss=loss, tau=tau, seed=seed, epoch=e, val_acc=0.5 + 0.04 * e)
                          for d in ("mnist", "fashion_mnist") for s in ("step-r10", "exponential-r10", "balanced")
                          for loss, tau in (("softmax", np.nan), ("logit_adjusted", 2.0)) for seed in (0, 1)
                          for e in range(1, 9)])
    plots.plot_convergence(curve, "unused.png")
    summary = pd.DataFrame([dict(dataset="mnist", protocol="standard", split="test", profile=p, imbalance_ratio=r,
                                 loss="softmax", tau=np.nan, macro_acc_mean=0.9, macro_acc_std=0.01)
                            for p, r in (("step", 10.0), ("step", 100.0), ("balanced", 1.0))])
    plots.plot_accuracy_vs_imbalance(summary, "unused.png")
    convergence, imbalance = drawn
    assert len(convergence.get_axes()) == 6 and convergence.get_size_inches()[0] * plots.DPI <= 1200
    assert "logit_adjusted τ=2" in {t.get_text() for t in convergence.legends[0].get_texts()}
    (panel,) = imbalance.get_axes()  # the balanced reference is a dashed level in the step panel, not a panel
    assert panel.get_title() == "mnist, step" and any(line.get_linestyle() == "--" for line in panel.get_lines())
