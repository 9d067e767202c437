"""One registry of names (softmax_mi.registry): the schema's enums, the rules' wildcard constraints and the library's
own tables (estimators, losses, CAM weight rules, backbones, datasets, protocols) all list the same names.

The schema is checked, not generated: it is a hand-written document users read and edit (bounds, descriptions,
defaults beside the enums), validated as it stands at parse time; a test that names the mismatching enum keeps the
two in step without a build step between editing the schema and running the workflow."""

from __future__ import annotations

import re

import pytest
import torch
import yaml

from softmax_mi import cam, grid, losses, registry
from softmax_mi.data import raw
from softmax_mi.data.synthetic import make_task
from softmax_mi.estimators import ESTIMATORS, NEURAL, NONPARAMETRIC
from softmax_mi.models import backbones, feature_backbones

from helpers import REPO

SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "params.schema.yaml").read_text())

# every enum of the schema that lists registry names, by its place in the schema
SCHEMA_ENUMS = {
    "synthetic.estimators[]": registry.ESTIMATORS,
    "benchmark.estimators[]": registry.BENCHMARK_ESTIMATORS,
    "benchmark.crossfit.estimators[]": registry.BENCHMARK_ESTIMATORS,
    "benchmark.extrapolate.estimators[]": registry.BENCHMARK_NEURAL_ESTIMATORS,
    "benchmark.tasks[].family": registry.BENCHMARK_FAMILIES,
    "localisation.data.name": registry.EMBEDDED_WSOL_DATASETS,
    "localisation.backbones[]": registry.WSOL_BACKBONES,
    "localisation.methods[]": registry.CAM_METHODS,
    "classification.faithful.datasets[]": registry.MNIST_DATASETS,
    "classification.faithful.settings[]": registry.CLS_SETTINGS,
    "classification.faithful.losses[]": registry.LOSSES,
    "classification.standard.datasets[]": registry.MNIST_DATASETS,
    "classification.standard.profiles[]": registry.IMBALANCE_PROFILES,
    "classification.standard.losses[]": registry.LOSSES,
    "classification.standard.balanced_losses[]": registry.LOSSES,
    "classification.standard.training.loss_lr_scale.propertyNames": registry.LOSSES,
    "benchmark.bmi.estimators[]": registry.BMI_ESTIMATORS,
    "classification.cub.backbone": registry.FEATURE_BACKBONES,
    "classification.cub.settings[]": registry.CLS_SETTINGS,
    "classification.cub.losses[]": registry.LOSSES,
    "label_shift.profiles[]": registry.SHIFT_PROFILES,
    "label_shift.decays[]": registry.SHIFT_DECAYS,
    "label_shift.rules[]": registry.SHIFT_RULES,
    "label_shift.synthetic.balances[]": registry.BALANCES,
}
# enums of plain options, not names of things the library implements
OPTION_ENUMS = {"device", "benchmark.bmi.encoding", "$defs.dataset_switch", "$defs.neural_training.select", "$defs.wsol_training.optimizer"}


def schema_enums(node, path=""):
    """(dotted path, enum) of every enum under ``node`` (``[]``: the items of an array)."""
    if isinstance(node, dict):
        if "enum" in node:
            yield path, node["enum"]
        for key, value in node.items():
            if key == "enum":
                continue
            step = {"properties": "", "items": "[]", "allOf": "", "oneOf": ""}.get(key)
            if step is None:
                step = f".{key}" if path or key else key
            yield from schema_enums(value, (path + step).lstrip("."))
    elif isinstance(node, list):
        for value in node:
            yield from schema_enums(value, path)


def test_schema_enums_are_the_registry_names():
    found = dict(schema_enums(SCHEMA))
    for path, names in SCHEMA_ENUMS.items():
        assert path in found, f"schema: no enum at {path} (update SCHEMA_ENUMS in this test)"
        assert found[path] == list(names), f"schema {path}: {found[path]} != registry {list(names)}"
    others = {path for path in found if path not in SCHEMA_ENUMS and path not in OPTION_ENUMS}
    assert not others, f"schema enums neither checked against the registry nor plain options: {sorted(others)}"


def test_schema_override_keys_are_wsol_datasets_and_backbones():
    pattern = SCHEMA["properties"]["localisation"]["properties"]["overrides"]["propertyNames"]["pattern"]
    expected = (f"^({registry.alternatives(registry.WSOL_DATASETS)})"
                f"(/({registry.alternatives(registry.WSOL_BACKBONES)}))?$")
    assert pattern == expected


def test_synthetic_class_count_profiles_are_the_balances():
    gaussian = SCHEMA["properties"]["synthetic"]["properties"]["gaussian"]["properties"]
    assert list(gaussian["class_counts"]["properties"]) == list(registry.BALANCES)


def test_estimator_table_is_the_registry():
    assert list(ESTIMATORS) == list(registry.ESTIMATORS)
    assert list(NEURAL) == list(registry.NEURAL_ESTIMATORS)
    assert list(NONPARAMETRIC) == list(registry.NONPARAMETRIC_ESTIMATORS)


def test_benchmark_tables_are_the_registry():
    from softmax_mi.benchmark.estimators import ESTIMATORS as BENCHMARK_ESTIMATORS
    from softmax_mi.benchmark.tasks import TASK_FAMILIES

    assert list(TASK_FAMILIES) == list(registry.BENCHMARK_FAMILIES)
    assert list(BENCHMARK_ESTIMATORS) == list(registry.BENCHMARK_ESTIMATORS)
    assert set(registry.BENCHMARK_NEURAL_ESTIMATORS) == set(registry.BENCHMARK_ESTIMATORS) - {"knn"}


@pytest.mark.parametrize("name", registry.LOSSES)
def test_every_registered_loss_builds_and_trains(name):
    assert losses.CLASSIFICATION_LOSSES is registry.LOSSES
    counts = torch.tensor([8.0, 2.0, 1.0])
    loss = losses.classification_loss(name, counts, drw_epoch=1)
    logits = torch.randn(6, 3, requires_grad=True)
    value = loss(logits, torch.tensor([0, 1, 2, 0, 0, 1]), 1)
    value.backward()
    assert value.ndim == 0 and torch.isfinite(value) and logits.grad.abs().sum() > 0
    assert set(registry.LOSS_OPTIONS) <= set(registry.LOSSES)


def test_an_unregistered_loss_is_refused():
    with pytest.raises(ValueError, match="unknown loss"):
        losses.classification_loss("focal", torch.tensor([1.0, 1.0]))


@pytest.mark.parametrize("method", registry.WEIGHT_METHODS)
def test_every_registered_cam_weight_rule_is_implemented(method):
    assert cam.WEIGHT_METHODS is registry.WEIGHT_METHODS
    weight, logits = torch.randn(4, 6), torch.randn(2, 4)
    vectors = cam.weight_vectors(method, weight, logits, torch.tensor([0, 3]))
    assert vectors.shape == (2, 6)


def test_cam_methods_are_the_weight_rules_plus_gradcam():
    assert registry.CAM_METHODS == (*registry.WEIGHT_METHODS, "gradcam")
    assert callable(cam.gradcam_maps)
    with pytest.raises(ValueError, match="unknown weight rule"):
        cam.weight_vectors("gradcam", torch.randn(4, 6), torch.randn(2, 4), torch.tensor([0, 3]))


def test_backbone_tables_are_the_registry():
    assert backbones.BACKBONES is registry.WSOL_BACKBONES
    assert list(feature_backbones.BACKBONES) == list(registry.FEATURE_BACKBONES)
    assert list(feature_backbones.HEAD_PREFIXES) == list(registry.FEATURE_BACKBONES)
    model = backbones.build_backbone("gap_cnn", 3, widths=(2, 2, 2, 2))
    assert model(torch.zeros(1, 1, 16, 16)).shape == (1, 3)
    with pytest.raises(ValueError, match="unknown backbone"):
        backbones.build_backbone("vit", 3)


def test_dataset_names_are_the_registry():
    assert list(raw.DATASETS) == list(registry.USER_DATASETS)
    assert registry.WSOL_DATASETS == (*registry.EMBEDDED_WSOL_DATASETS, *registry.USER_DATASETS)


@pytest.mark.parametrize("task", registry.SYNTHETIC_TASKS)
def test_every_registered_synthetic_task_is_built(task):
    params = {"synthetic": {"gaussian": {"class_counts": {"balanced": [3, 3]}, "mean_unit": 1.0},
                            "uniform": {"n_classes": 3, "n_per_class": 4}}}
    assert make_task(grid.synthetic_task(params, task, "2", "balanced")).class_counts


def test_the_stages_write_only_registered_protocols():
    """Every `protocol=` the WSOL code writes is a registered protocol or box convention (score_maps), or the
    classifier's accuracy rows."""
    written = set()
    for path in (REPO / "src" / "softmax_mi").rglob("*.py"):
        written |= set(re.findall(r"""protocol\s*=\s*["'](\w+)["']""", path.read_text()))
    assert "maxboxacc_v2" in written  # the scan sees the rows
    known = {*registry.WSOL_PROTOCOLS, *registry.BOX_CONVENTIONS, "classification"}
    assert written <= known, written - known


def test_alternatives_match_exactly_one_name():
    pattern = re.compile(f"(?:{registry.alternatives(registry.LOSSES)})")
    assert all(pattern.fullmatch(name) for name in registry.LOSSES)
    assert not pattern.fullmatch("softmax_pc")
