"""softmax_mi.grid on small hand-written parameter sets: which jobs exist and the settings each one gets."""

from __future__ import annotations

import pytest

from softmax_mi import grid

SYNTHETIC = {
    "gaussian": {"dims": [1, 4], "class_counts": {"balanced": [5, 5], "imbalanced": [9, 1]}, "mean_unit": 0.5},
    "uniform": {"enabled": True, "n_classes": 3, "n_per_class": 7},
    "estimators": ["softmax", "knn", "sklearn_knn"],
    "neural": {"epochs": 2, "lr": 0.1},
    "softmax": {"hidden": 8},
    "knn": {"k": 3},
}


def cls_params(**faithful_seeds):
    return {
        "seeds": [10, 11, 12],
        "classification": {
            "fashion_mnist_dir": None,
            "faithful": {"datasets": ["mnist"], "settings": ["imbalanced"], "losses": ["softmax", "ldam_drw"],
                         "seeds": {"imbalanced": None, "balanced": None, **faithful_seeds}},
            "standard": {"datasets": ["mnist"], "profiles": ["step"], "ratios": [10, 2.5],
                         "losses": ["pc_softmax", "ldam_drw"], "balanced_losses": ["softmax"], "n_seeds": 2,
                         "drw_epoch": 9},
            "logit_adjusted": {"taus": [1.0]},
            "class_balanced": {"beta": 0.99},
            "ldam_drw": {"max_margin": 0.5, "scale": 30, "drw_epoch": 6},
            "cub": {"settings": ["imbalanced", "balanced"], "losses": ["softmax"]},
        },
    }


def test_synthetic_grid_keeps_sklearn_knn_at_d1_only():
    params = {"synthetic": SYNTHETIC}
    assert grid.synthetic_settings(params) == [("gaussian", 1, "balanced"), ("gaussian", 1, "imbalanced"),
                                               ("gaussian", 4, "balanced"), ("gaussian", 4, "imbalanced"),
                                               ("uniform", 1, "balanced")]
    assert grid.synthetic_estimators(params, 1) == ["softmax", "knn", "sklearn_knn"]
    assert grid.synthetic_estimators(params, 4) == ["softmax", "knn"]
    assert list(grid.synthetic_estimator_settings(params, 4)) == ["softmax", "knn"]
    assert grid.synthetic_estimator_settings(params, 1)["sklearn_knn"] == {}
    assert grid.synthetic_trains(params, 4)
    assert not grid.synthetic_trains({"synthetic": {**SYNTHETIC, "estimators": ["knn", "sklearn_knn"]}}, 1)


def test_synthetic_uniform_task_can_be_switched_off():
    params = {"synthetic": {**SYNTHETIC, "uniform": {**SYNTHETIC["uniform"], "enabled": False}}}
    assert all(task == "gaussian" for task, *_ in grid.synthetic_settings(params))


def test_synthetic_task_from_wildcard_strings():
    params = {"synthetic": SYNTHETIC}
    assert grid.synthetic_task(params, "gaussian", "4", "imbalanced") == {
        "kind": "gaussian", "dim": 4, "class_counts": [9, 1], "mean_unit": 0.5}
    assert grid.synthetic_task(params, "uniform", "1", "balanced") == {
        "kind": "uniform", "dim": 1, "class_counts": [7, 7, 7]}


def test_estimator_settings_merge_the_neural_section_only_for_neural_estimators():
    params = {"synthetic": SYNTHETIC}
    assert grid.estimator_settings(params, "softmax") == {"epochs": 2, "lr": 0.1, "hidden": 8}
    assert grid.estimator_settings(params, "knn") == {"k": 3}
    assert grid.estimator_settings(params, "sklearn_knn") == {}


def test_classification_jobs_seeds_and_gathered_runs():
    params = cls_params(imbalanced=[7])
    datasets = ["mnist"]
    assert grid.cls_faithful_jobs(params, datasets) == [
        ("mnist", "faithful-imbalanced", "softmax"), ("mnist", "faithful-imbalanced", "ldam_drw")]
    # the standard protocol: one job per setting, the balanced reference last
    assert grid.cls_standard_jobs(params, datasets) == [("mnist", "step-r10"), ("mnist", "step-r2.5"),
                                                        ("mnist", "balanced")]
    assert grid.cls_faithful_jobs(params, []) == grid.cls_standard_jobs(params, []) == []  # a dataset not in use
    assert grid.cls_standard_losses(params, "step-r10") == ["pc_softmax", "ldam_drw"]
    assert grid.cls_standard_losses(params, "balanced") == ["softmax"]
    # LDAM-DRW's options with the standard recipe's re-weighting epoch; the balanced reference reads none
    assert grid.cls_standard_options(params, "step-r10") == {
        "ldam_drw": {"max_margin": 0.5, "scale": 30}, "class_balanced": {"beta": 0.99}, "drw_epoch": 9}
    assert grid.cls_standard_options(params, "balanced") == {}
    assert grid.cls_seeds(params, "faithful-imbalanced") == [7]
    assert grid.cls_seeds(params, "faithful-balanced") == [10, 11, 12]  # null: the global seeds
    assert grid.cls_seeds(params, "step-r10") == grid.cls_seeds(params, "balanced") == [10, 11]
    assert grid.cub_head_jobs(params, cub_runs=False) == []
    assert grid.cls_leaves(params, datasets, cub_runs=True) == [
        "mnist/faithful-imbalanced/softmax", "mnist/faithful-imbalanced/ldam_drw", "mnist/step-r10",
        "mnist/step-r2.5", "mnist/balanced", "cub/imbalanced/softmax", "cub/balanced/softmax"]
    assert grid.cls_curve_leaves(params, datasets) == ["mnist/step-r10", "mnist/step-r2.5", "mnist/balanced"]
    params["classification"]["standard"]["balanced_losses"] = []  # no reference
    assert grid.cls_standard_jobs(params, datasets)[-1] == ("mnist", "step-r2.5")


def test_fashion_mnist_without_its_files_is_skipped_with_a_notice(tmp_path, monkeypatch):
    monkeypatch.setattr(grid, "fashion_mnist_folder", lambda folder: None)
    params = cls_params()
    params["classification"]["standard"]["datasets"] = ["mnist", "fashion_mnist"]
    datasets, notice = grid.cls_datasets(params)
    assert datasets == ["mnist"] and "Fashion-MNIST IDX files not found" in notice
    monkeypatch.setattr(grid, "fashion_mnist_folder", lambda folder: tmp_path)
    assert grid.cls_datasets(params) == (["fashion_mnist", "mnist"], None)


def test_loss_options_hold_only_the_sections_a_loss_reads():
    params = cls_params()
    assert grid.loss_options(params, "softmax") == {}
    assert grid.loss_options(params, "logit_adjusted") == {"logit_adjusted": {"taus": [1.0]}}
    assert grid.loss_options(params, "ldam_drw") == {"ldam_drw": {"max_margin": 0.5, "scale": 30, "drw_epoch": 6},
                                                     "class_balanced": {"beta": 0.99}}
    # CUB: its own DRW epoch replaces MNIST's; the other losses are unchanged
    assert grid.loss_options(params, "ldam_drw", drw_epoch=40) == {
        "ldam_drw": {"max_margin": 0.5, "scale": 30}, "class_balanced": {"beta": 0.99}, "drw_epoch": 40}
    assert grid.loss_options(params, "class_balanced", drw_epoch=40) == {"class_balanced": {"beta": 0.99}}


LOCALISATION = {
    "n_seeds": 2,
    "data": {"name": "cluttered_mnist", "seed": 0},
    "backbones": ["gap_cnn"],
    "adl": [False, True],
    "adl_settings": {"gamma": 0.9},
    "pretrained": "none",
    "input_size": None,
    "gap_cnn": {"widths": [4, 4, 4, 4]},
    "training": {"epochs": 1, "lr": 0.1},
    "methods": ["cam"],
    "figure_images": 4,
    "overrides": {"cub": {"backbones": ["vgg16_gap", "resnet50"], "adl": [False]},
                  "cub/resnet50": {"training": {"lr": 0.01}}},
}


def test_wsol_grid_per_dataset_with_overrides():
    params = {"seeds": [3, 4], "localisation": LOCALISATION}
    datasets = grid.wsol_datasets(params, {"cub": True, "tiny_imagenet": False})
    assert datasets == ["cluttered_mnist", "cub"]
    assert grid.wsol_runs(params, "cluttered_mnist") == [("gap_cnn", "noadl"), ("gap_cnn", "adl")]
    assert grid.wsol_runs(params, "cub") == [("vgg16_gap", "noadl"), ("resnet50", "noadl")]
    jobs = grid.wsol_jobs(params, datasets)
    assert jobs[:3] == [("cluttered_mnist", "gap_cnn", "noadl", 3), ("cluttered_mnist", "gap_cnn", "noadl", 4),
                        ("cluttered_mnist", "gap_cnn", "adl", 3)]
    assert len(jobs) == 8
    assert grid.wsol_figure_run(params, "cub") == {"backbone": "vgg16_gap", "adl": "noadl", "seed": 3}


def test_wsol_train_and_evaluate_settings_split_the_section():
    params = {"seeds": [3], "localisation": LOCALISATION}
    train = grid.wsol_train_settings(params, "cub", "resnet50")
    assert set(train) == {"adl_settings", "pretrained", "input_size", "gap_cnn", "training"}
    assert train["training"] == {"epochs": 1, "lr": 0.01}  # dataset/backbone override merged, deep
    evaluate = grid.wsol_evaluate_settings(params, "cluttered_mnist", "gap_cnn")
    assert "data" not in evaluate and "figure_images" not in evaluate and "overrides" not in evaluate
    assert evaluate["methods"] == ["cam"]
    assert grid.wsol_figure_settings(params, "cub")["backbones"] == ["vgg16_gap", "resnet50"]


@pytest.mark.parametrize("enabled, expected", [("off", "is switched off"), (False, "is switched off"),
                                               ("auto", "not found: put the official")])
def test_dataset_unavailable_says_why(enabled, expected):
    params = {"datasets": {"raw_dir": "data/raw", "cub": {"enabled": enabled, "archive": "CUB.tgz",
                                                          "folder": "CUB", "md5": None, "image_size": 64}}}
    assert expected in grid.dataset_unavailable(params, "cub")
    assert grid.dataset_settings(params, "cub") == {"md5": None, "image_size": 64}


def test_an_estimator_section_overrides_the_shared_stopping_rule():
    params = {"synthetic": {**SYNTHETIC, "neural": {"min_steps": 540, "patience": 2}, "nwj": {"min_steps": 720}}}
    assert grid.estimator_settings(params, "nwj") == {"min_steps": 720, "patience": 2}
    assert grid.estimator_settings(params, "softmax") == {"min_steps": 540, "patience": 2, "hidden": 8}
