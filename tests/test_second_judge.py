"""The benchmarks' second judge (benchmarks/second_judge.py): trained differently from the package's
classifier, cached by the hash of its recipe, and scoring samples like ``sample_metrics``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import second_judge

from chapter13.evaluate import DigitClassifier
from chapter13.recipes.classifier import CLASSIFIER_CONFIG, CLASSIFIER_TRAINING


def _layer_types(model: nn.Module) -> set[type]:
    return {type(m) for m in model.modules()}


def test_the_second_judge_shares_no_design_choice_with_the_yardstick():
    judge, yardstick = second_judge.SecondJudge(), DigitClassifier(**CLASSIFIER_CONFIG)
    assert nn.BatchNorm2d in _layer_types(judge) and nn.GroupNorm not in _layer_types(judge)
    assert nn.GroupNorm in _layer_types(yardstick) and nn.BatchNorm2d not in _layer_types(yardstick)
    assert nn.ReLU in _layer_types(judge) and nn.SiLU not in _layer_types(judge)
    kernels = {m.kernel_size for m in judge.modules() if isinstance(m, nn.Conv2d)}
    assert kernels == {(5, 5)}
    assert second_judge.JUDGE_TRAINING["seed"] != CLASSIFIER_TRAINING["seed"]
    assert judge.features(torch.zeros(2, 1, 28, 28)).shape == (2, 256)


def test_a_short_training_run_scores_samples(tmp_path, monkeypatch):
    monkeypatch.setattr(second_judge, "USER_CHECKPOINT_DIR", tmp_path)
    monkeypatch.setattr(second_judge, "JUDGE_TRAINING", dict(second_judge.JUDGE_TRAINING, steps=3, warmup=1))
    judge = second_judge.load_second_judge()
    assert not judge.training
    cached = list(tmp_path.glob("second-judge-*.pt"))
    assert len(cached) == 1
    again = second_judge.load_second_judge()  # from the cache, the same weights
    for a, b in zip(judge.state_dict().values(), again.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    x = torch.rand(20, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    metrics = second_judge.judge_metrics(x, judge, x[:10])
    assert set(metrics) >= {"confident_fraction", "class_entropy", "frechet_distance", "class_histogram"}
    assert 0.0 <= metrics["confident_fraction"] <= 1.0 and sum(metrics["class_histogram"]) == 20


def test_a_changed_recipe_is_a_new_cache_file():
    base = second_judge._cache_name(second_judge.JUDGE_TRAINING)
    assert base == second_judge._cache_name(dict(second_judge.JUDGE_TRAINING))
    assert base != second_judge._cache_name(dict(second_judge.JUDGE_TRAINING, steps=10))


def test_judge_metrics_refuses_images_in_another_range():
    with pytest.raises(ValueError, match="range"):
        second_judge.judge_metrics(
            torch.rand(4, 1, 28, 28), second_judge.SecondJudge().eval(), torch.zeros(4, 1, 28, 28)
        )
