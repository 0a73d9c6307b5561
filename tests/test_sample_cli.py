"""Tests for the sampling command line, ``python -m chapter13.sample``."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from chapter13 import checkpoints, recipes
from chapter13 import cli as chapter13_cli
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


# --- One convention for user errors (chapter13.cli): `error: ...` on stderr, exit 2, no traceback ------


def _user_error(argv, capsys):
    """Run ``main(argv)`` in-process; return its stderr after checking the convention: status 2 (returned,
    or through argparse's SystemExit), one ``error: ...`` line, no traceback."""
    try:
        code = cli.main(argv)
    except SystemExit as exit_info:
        code = exit_info.code
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, f"exit status {code}, stderr: {err}"
    assert err.startswith("error: ") and err.count("\n") == 1, f"not one `error: ...` line: {err!r}"
    assert "Traceback" not in err and not captured.out, (captured.out, err)
    return err


@pytest.fixture
def no_sampling(stub, monkeypatch):
    """The stub checkpoint, whose sampler fails the test if called: the error must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("sampled before the error was found")

    monkeypatch.setattr(cli, "get_spec", lambda name: SamplerSpec(draw=refuse, accepts=frozenset()))
    return stub


def test_device_this_machine_lacks(no_sampling, tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "x.pt")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    err = _user_error([no_sampling, "--device", "cuda", "--out", out], capsys)
    assert "needs a CUDA GPU" in err and "--device cpu" in err
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    err = _user_error([no_sampling, "--device", "cuda:3", "--out", out], capsys)
    assert "1 CUDA GPU(s), numbered 0..0" in err
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert "MPS, which is not available" in _user_error(
        [no_sampling, "--device", "mps", "--out", out], capsys
    )


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "", "meta"])
def test_device_names_torch_does_not_run_here(no_sampling, device, tmp_path, capsys):
    err = _user_error([no_sampling, "--device", device, "--out", str(tmp_path / "x.pt")], capsys)
    assert "--device" in err and "cpu" in err


@pytest.mark.parametrize("seed", ["99999999999999999999999", str(2**63), "-1"])
def test_seed_out_of_range(no_sampling, seed, tmp_path, capsys):
    err = _user_error([no_sampling, "--seed", seed, "--out", str(tmp_path / "x.pt")], capsys)
    assert "--seed must be a whole number from 0 to 2**63 - 1" in err


def test_metrics_of_one_sample(no_sampling, tmp_path, capsys):
    err = _user_error([no_sampling, "--n", "1", "--metrics", "--out", str(tmp_path / "x.pt")], capsys)
    assert "--metrics needs at least 2 samples" in err and "--n 2" in err


def test_unwritable_out(no_sampling, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    err = _user_error([no_sampling, "--out", str(blocker / "x.pt")], capsys)
    assert "cannot write --out" in err and "is a file, not a folder" in err
    (tmp_path / "folder.png").mkdir()
    err = _user_error([no_sampling, "--out", str(tmp_path / "folder.png")], capsys)
    assert "is a folder; give a file name" in err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_folder(no_sampling, tmp_path, capsys):
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o500)
    err = _user_error([no_sampling, "--out", str(folder / "x.png")], capsys)
    assert "cannot write --out" in err and "Permission denied" in err


def test_write_samples_reports_an_unwritable_file(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    (tmp_path / "folder.pt").mkdir()
    for out in (blocker / "x.pt", tmp_path / "folder.pt"):  # the folder cannot be made; the file opened
        with pytest.raises(cli.SampleError, match="cannot write --out"):
            cli.write_samples(torch.zeros(1, 1, 28, 28), out)


MANIFESTS = {
    "invalid JSON": '{"codelab-mnist": ',
    "not an object": "[1, 2]",
    "entry without sha256": None,  # the shipped entry less its "sha256"
    "entry missing": "{}",
}


def _corrupt_data_dir(root: Path, case: str) -> Path:
    """A CH13_DATA folder whose checkpoints/manifest.json is broken as ``case`` says."""
    text = MANIFESTS[case]
    if text is None:
        entry = json.loads(
            (Path(cli.__file__).parents[1] / "data/checkpoints/manifest.json").read_text(encoding="utf-8")
        )
        entry = {k: v for k, v in entry["codelab-mnist"].items() if k != "sha256"}
        text = json.dumps({"codelab-mnist": entry})
    (root / "checkpoints").mkdir(parents=True)
    (root / "checkpoints" / "manifest.json").write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize("case", sorted(MANIFESTS))
def test_corrupt_manifest(case, tmp_path, monkeypatch, capsys):
    folder = _corrupt_data_dir(tmp_path / "data", case) / "checkpoints"
    monkeypatch.setattr(checkpoints, "CHECKPOINT_DIR", folder)
    err = _user_error(["codelab-mnist", "--n", "2", "--steps", "2", "--out", str(tmp_path / "x.pt")], capsys)
    assert "manifest" in err and ("git checkout" in err or "python -m chapter13.train" in err), err
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--device", "gpu"], "unknown device 'gpu'"),
        (["--data", "invalid JSON"], "manifest"),
    ],
    ids=["device", "manifest"],
)
def test_python_dash_m_prints_one_error_line(args, says, tmp_path):
    """The real ``python -m chapter13.sample``, in its own interpreter: status 2, one line, no traceback
    (an argparse error and one raised inside the run; the other cases run in-process above, each
    interpreter costs seconds of torch import)."""
    env = {**os.environ, "CH13_DEVICE": "cpu"}
    if args[0] == "--data":
        env["CH13_DATA"] = str(_corrupt_data_dir(tmp_path / "data", args[1]))
        args = []
    command = [sys.executable, "-m", "chapter13.sample", "codelab-mnist", "--steps", "2", *args]
    command += ["--out", str(tmp_path / "x.pt")]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr


def test_cli_run_reports_user_errors_and_lets_bugs_through(capsys):
    """``chapter13.cli.run``: named user errors -> one line, 2; Ctrl-C -> 130; anything else is a bug
    and keeps its traceback."""

    def raising(error):
        def body():
            raise error

        return body

    assert chapter13_cli.run(raising(chapter13_cli.CliError("bad\n  thing"))) == 2
    assert capsys.readouterr().err == "error: bad thing\n"
    assert chapter13_cli.run(raising(cli.SampleError("no")), user_errors=(cli.SampleError,)) == 2
    assert chapter13_cli.run(raising(json.JSONDecodeError("Expecting value", "", 0))) == 2
    assert capsys.readouterr().err.startswith("error: no\nerror: invalid JSON: Expecting value")
    assert chapter13_cli.run(raising(KeyboardInterrupt())) == 130
    with pytest.raises(ZeroDivisionError):
        chapter13_cli.run(raising(ZeroDivisionError()), user_errors=(cli.SampleError,))
    assert chapter13_cli.run(lambda: None) == 0 and chapter13_cli.run(lambda: 3) == 3
