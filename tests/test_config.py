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


# --- checks shared by the package (issue 17) --------------------------------------------------------------


def test_check_device_names_the_fix(monkeypatch):
    assert config.check_device("cpu") == torch.device("cpu") and config.check_device(None) is None
    for bad in ("gpu", "cpu:x", ""):
        with pytest.raises(ValueError, match="unknown device"):
            config.check_device(bad)
    with pytest.raises(TypeError, match="string"):
        config.check_device(5)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="none is available here"):
        config.check_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match=r"1 CUDA GPU\(s\), numbered 0\.\.0"):
        config.check_device("cuda:3")


def test_default_device_refuses_a_misspelt_override(monkeypatch):
    monkeypatch.setenv("CH13_DEVICE", "gpu")
    with pytest.raises(ValueError, match="CH13_DEVICE='gpu'"):
        config.default_device()


def test_seeds_threads_and_numbers_are_checked():
    for bad in (2**70, -(2**63) - 1):
        with pytest.raises(ValueError, match="seed"):
            config.check_seed(bad)
    with pytest.raises(ValueError, match="seed"):
        config.check_seed(-1, 0)
    with pytest.raises(TypeError, match="seed"):
        config.check_seed(2.5)
    with pytest.raises(ValueError, match="seed"):
        config.seed_everything(2**70)  # was an overflow inside Python's random
    assert config.check_seed(np.int64(3)) == 3
    with pytest.raises(ValueError, match="int"), config.torch_threads(2.5):
        pass
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite"):
            config.check_finite(bad, "x")
    for bad in ("1", True, torch.tensor(1.0)):
        with pytest.raises(TypeError, match="number"):
            config.check_finite(bad, "x")
    assert config.check_finite(np.float32(2.0), "x") == 2.0


def test_check_model_input_names_dtype_and_device():
    model = torch.nn.Linear(2, 2)
    x = torch.zeros(1, 2)
    config.check_model_input(x, model)
    with pytest.raises(TypeError, match="from_numpy"):
        config.check_model_input(x.numpy(), model)
    with pytest.raises(TypeError, match=r"x\.float\(\)"):
        config.check_model_input(x.long(), model)
    with pytest.raises(TypeError, match=r"x\.to\(torch\.float32\)"):
        config.check_model_input(x.half(), model)
    with pytest.raises(ValueError, match="is on meta but the model is on cpu"):
        config.check_model_input(x.to("meta"), model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        config.check_model_input(x.bfloat16(), model)  # mixed precision is fine
    config.check_model_input(x.long(), torch.nn.ReLU())  # no weights: nothing to compare with
