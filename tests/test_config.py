import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from chapter13 import config


@pytest.mark.parametrize("text", ["1", "true", "TRUE", "yes", "on", " 1 "])
def test_quick_true_values(text):
    assert config._read_quick(text) is True


@pytest.mark.parametrize("text", [None, "", "0", "false", "no", "off", "False"])
def test_quick_false_values(text):
    assert config._read_quick(text) is False


@pytest.mark.parametrize("text", ["2", "maybe", "quick", "-1"])
def test_quick_ambiguous_is_an_error(text):
    with pytest.raises(ValueError, match="neither true nor false"):
        config._read_quick(text)


def test_quick_bad_env_fails_at_import():
    env = {**os.environ, "CH13_QUICK": "maybe"}
    run = subprocess.run(
        [sys.executable, "-c", "import chapter13.config"], env=env, capture_output=True, text=True
    )
    assert run.returncode != 0
    assert "CH13_QUICK='maybe'" in run.stderr


def test_quick_env_is_read(monkeypatch):
    for value, expected in (("1", "quick"), ("0", "full")):
        env = {**os.environ, "CH13_QUICK": value}
        code = "from chapter13.config import pick; print(pick(full='full', quick='quick'))"
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert out.stdout.strip() == expected, out.stderr


def test_pick_follows_mode(monkeypatch):
    monkeypatch.setattr(config, "QUICK", True)
    assert config.pick(full=100, quick=2) == 2
    monkeypatch.setattr(config, "QUICK", False)
    assert config.pick(full=100, quick=2) == 100
    assert config.pick(full=None, quick=0) is None  # falsy values are legitimate sizes


@pytest.mark.parametrize("kwargs,missing", [({"full": 1}, "quick"), ({"quick": 1}, "full"), ({}, "full")])
def test_pick_missing_value(kwargs, missing):
    with pytest.raises(TypeError, match=f"missing.*{missing}"):
        config.pick(**kwargs)


def test_seed_everything_reproduces():
    config.seed_everything(123)
    a = (torch.rand(3), np.random.rand(3))  # noqa: NPY002 - the legacy global RNG is what is seeded
    config.seed_everything(123)
    b = (torch.rand(3), np.random.rand(3))  # noqa: NPY002 - the legacy global RNG is what is seeded
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    g = config.seed_everything(5)
    expected = torch.rand(2, generator=torch.Generator().manual_seed(5))
    assert torch.equal(torch.rand(2, generator=g), expected)


def test_seed_must_be_int():
    with pytest.raises(TypeError):
        config.seed_everything(1.5)


def test_default_device(monkeypatch):
    monkeypatch.delenv("CH13_DEVICE", raising=False)
    device = config.default_device()
    if torch.cuda.is_available():
        assert device.type == "cuda"
    else:
        assert device.type in {"mps", "cpu"}
    monkeypatch.setenv("CH13_DEVICE", "cpu")
    assert config.default_device() == torch.device("cpu")


def test_describe_mentions_mode_and_device():
    text = config.describe()
    assert "torch" in text and "mode" in text and "device" in text


def test_torch_threads_sets_and_restores():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with config.torch_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with config.torch_threads(None):
            assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), config.torch_threads(1):
            raise RuntimeError("restored also when the block raises")
        assert torch.get_num_threads() == 2
        with pytest.raises(ValueError, match="at least 1"), config.torch_threads(0):
            pass
    finally:
        torch.set_num_threads(before)
