"""Tests for the sampling command line, ``python -m chapter13.sample``."""

from __future__ import annotations

import runpy
import sys
import types
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from chapter13 import recipes
from chapter13 import sample as cli
from chapter13.sample import SamplerSpec


def _stub_draw(n, *, steps, eta, seed, device, progress, **cond):
    """Images filled with label/10 (or 0), so the test can see which condition arrived."""
    value = cond.get("label", 0) / 10.0
    return torch.full((n, 1, 28, 28), value) + 0.0 * steps


def _stub_conditional():
    return SamplerSpec(draw=_stub_draw, accepts=frozenset({"label", "guidance"}), max_steps=100)


@pytest.fixture
def stub(monkeypatch):
    """A registered checkpoint family of its own (``chapter13.recipes.stub_family``) whose one recipe
    has the stub sampler: the command line finds it through the registry, as it finds real ones."""
    family = types.ModuleType("chapter13.recipes.stub_family")
    family.RECIPES = (
        recipes.Recipe("stub-conditional", "a stub", nn.Module, lambda: None, _stub_conditional),
    )
    monkeypatch.setitem(sys.modules, family.__name__, family)
    monkeypatch.setitem(recipes.FAMILIES, "stub-conditional", "stub_family")
    return "stub-conditional"


def _run(argv, capsys):
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_unconditional_checkpoint_refuses_conditions(tmp_path, capsys):
    out = str(tmp_path / "x.png")
    code, _, err = _run(["codelab-mnist", "--label", "3", "--out", out], capsys)
    assert code == 2 and "unconditional" in err and "--label" in err
    code, _, err = _run(["codelab-mnist", "--prompt", "a seven", "--guidance", "3", "--out", out], capsys)
    assert code == 2 and "--prompt, --guidance" in err
    assert not Path(out).exists()


def test_bad_requests_give_clear_errors(tmp_path, capsys):
    out = str(tmp_path / "x.pt")
    code, _, err = _run(["nope", "--out", out], capsys)
    assert code == 2 and "no sampler for checkpoint 'nope'" in err and "codelab-mnist" in err
    code, _, err = _run(["codelab-mnist", "--steps", "0", "--out", out], capsys)
    assert code == 2 and "--steps must lie in 1..1000" in err
    code, _, err = _run(["codelab-mnist", "--steps", "1001", "--out", out], capsys)
    assert code == 2 and "1..1000" in err
    code, _, err = _run(["codelab-mnist", "--n", "0", "--out", out], capsys)
    assert code == 2 and "--n must be a positive" in err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["codelab-mnist", "--out", str(tmp_path / "x.jpg")])
    assert exit_info.value.code == 2
    assert ".pt (tensor) or .png" in capsys.readouterr().err


def test_conditions_reach_a_conditional_sampler(stub, tmp_path, capsys):
    out = tmp_path / "s.pt"
    code, text, _ = _run([stub, "--n", "5", "--label", "7", "--out", str(out)], capsys)
    assert code == 0 and "wrote 5 samples" in text
    saved = torch.load(out, weights_only=True)
    assert saved.shape == (5, 1, 28, 28) and saved.dtype == torch.float32
    assert torch.allclose(saved, torch.full_like(saved, 0.7))
    code, _, err = _run([stub, "--prompt", "a seven", "--out", str(out)], capsys)
    assert code == 2 and "does not take --prompt; it takes --guidance, --label" in err
    code, _, err = _run([stub, "--label", "12", "--out", str(out)], capsys)
    assert code == 2 and "digit 0-9" in err
    code, _, err = _run([stub, "--guidance", "-1", "--out", str(out)], capsys)
    assert code == 2 and "--guidance must be" in err
    code, _, err = _run([stub, "--steps", "101", "--out", str(out)], capsys)
    assert code == 2 and "1..100" in err


def test_png_grid_layout(stub, tmp_path, capsys):
    out = tmp_path / "grid.png"
    code, _, _ = _run([stub, "--n", "5", "--label", "9", "--out", str(out)], capsys)
    assert code == 0
    image = Image.open(out)
    # 5 samples -> 3 per row, 2 rows; torchvision's make_grid puts 2 pixels of padding around each
    assert image.size == (3 * 30 + 2, 2 * 30 + 2)


def test_codelab_samples_are_reproducible(tmp_path, capsys):
    paths = [tmp_path / f"{k}.pt" for k in "abc"]
    for path, seed in zip(paths, ["1", "1", "2"], strict=True):
        code, _, err = _run(
            ["codelab-mnist", "--n", "3", "--steps", "3", "--seed", seed, "--out", str(path)], capsys
        )
        assert code == 0, err
    a, b, c = (torch.load(p, weights_only=True) for p in paths)
    assert a.shape == (3, 1, 28, 28) and a.dtype == torch.float32
    assert a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


@pytest.mark.filterwarnings("ignore:'chapter13.sample' found in sys.modules:RuntimeWarning")
def test_module_entry_point(tmp_path, monkeypatch, capsys):
    """``python -m chapter13.sample`` runs ``main`` and exits with its status (run in-process with runpy,
    which executes the module as ``__main__`` exactly as ``-m`` does, without a second interpreter)."""
    out = tmp_path / "digits.png"
    argv = ["chapter13.sample", "codelab-mnist", "--n", "4", "--steps", "2", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("chapter13.sample", run_name="__main__", alter_sys=True)
    assert exit_info.value.code == 0, capsys.readouterr().err
    assert out.exists() and Image.open(out).size == (2 * 30 + 2, 2 * 30 + 2)


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")  # imported above, as -m does not
def test_module_entry_point_reports_a_bad_request(monkeypatch, capsys):
    """An error raised inside a checkpoint's sampler reaches ``python -m chapter13.sample`` as a
    one-line message and exit status 2, not a traceback (the ``__main__`` module-identity fix)."""
    argv = ["chapter13.sample", "text2image-digits", "--prompt", "a purple 3", "--n", "1", "--steps", "2"]
    monkeypatch.setattr(sys, "argv", [*argv, "--out", "unused.pt"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("chapter13.sample", run_name="__main__", alter_sys=True)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "purple" in err and "Traceback" not in err, err
