"""Tests for the training command line, ``python -m chapter13.train``: user errors follow
``chapter13.cli``'s convention (one ``error: ...`` line on stderr, exit 2, no traceback), found before
any training starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chapter13 import checkpoints, recipes, train
from chapter13.checkpoints import CheckpointError

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_MANIFEST = ROOT / "data" / "checkpoints" / "manifest.json"


@pytest.fixture
def builds(monkeypatch, tmp_path):
    """``train.build`` replaced by a recorder, and the checkpoint folder by a temporary copy of the
    shipped manifest: no test here trains or writes into data/checkpoints."""
    calls: list[str] = []
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "manifest.json").write_text(SHIPPED_MANIFEST.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(checkpoints, "CHECKPOINT_DIR", folder)
    monkeypatch.setattr(train, "build", calls.append)
    return calls


def _status(argv):
    try:
        return train.main(argv)
    except SystemExit as exit_info:
        return exit_info.code


def _user_error(argv, capsys):
    code = _status(argv)
    captured = capsys.readouterr()
    assert code == 2, f"exit status {code}, stderr: {captured.err}"
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err
    return captured.err


def test_a_good_request_builds(builds, capsys):
    assert _status(["codelab-mnist"]) == 0
    assert builds == ["codelab-mnist"]
    assert _status(["--all"]) == 0
    assert builds[1:] == recipes.names()
    assert _status(["--list"]) == 0 and "codelab-mnist" in capsys.readouterr().out


def test_unknown_name(builds, capsys):
    err = _user_error(["bogus"], capsys)
    assert "unknown checkpoint 'bogus'" in err and "codelab-mnist" in err and "--list" in err
    assert builds == []


@pytest.mark.parametrize(
    ("argv", "says"),
    [(["codelab-mnist", "--all"], "not both"), (["--frobnicate"], "unrecognized arguments")],
)
def test_bad_arguments(builds, argv, says, capsys):
    err = _user_error(argv, capsys)
    assert says in err and builds == []


@pytest.mark.parametrize("text", ['{"codelab-mnist": ', "[1, 2]", '{"codelab-mnist": 3}'])
def test_corrupt_manifest_fails_before_training(builds, text, capsys):
    (checkpoints.CHECKPOINT_DIR / "manifest.json").write_text(text, encoding="utf-8")
    err = _user_error(["codelab-mnist"], capsys)
    assert "manifest" in err and "git checkout" in err
    assert builds == [], "trained although the manifest could not take the result"


def test_unwritable_checkpoint_folder_fails_before_training(builds, monkeypatch, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setattr(checkpoints, "CHECKPOINT_DIR", blocker / "checkpoints")
    err = _user_error(["codelab-mnist"], capsys)
    assert "cannot write the checkpoint folder" in err and "is a file, not a folder" in err
    assert builds == []


def test_checkpoint_errors_while_saving_are_one_line(builds, monkeypatch, capsys):
    def failing(name):
        raise CheckpointError(f"checkpoint {name!r} has non-finite weights\n  at step 7")

    monkeypatch.setattr(train, "build", failing)
    err = _user_error(["codelab-mnist"], capsys)
    assert err == "error: checkpoint 'codelab-mnist' has non-finite weights at step 7\n"


def test_ctrl_c_exits_130_without_a_traceback(builds, monkeypatch, capsys):
    def interrupted(name):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "build", interrupted)
    try:
        status = _status(["codelab-mnist"])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped main with a traceback")
    assert status == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_a_bug_keeps_its_traceback(builds, monkeypatch):
    def buggy(name):
        raise ZeroDivisionError

    monkeypatch.setattr(train, "build", buggy)
    with pytest.raises(ZeroDivisionError):
        train.main(["codelab-mnist"])


@pytest.mark.parametrize("case", ["unknown name", "corrupt manifest"])
def test_python_dash_m_prints_one_error_line(case, tmp_path):
    """The real ``python -m chapter13.train``, in its own interpreter (``raise SystemExit(main())``)."""
    env = {**os.environ}
    argv = ["bogus"] if case == "unknown name" else ["codelab-mnist"]
    if case == "corrupt manifest":
        (tmp_path / "checkpoints").mkdir()
        (tmp_path / "checkpoints" / "manifest.json").write_text(json.dumps([1])[:-1], encoding="utf-8")
        env["CH13_DATA"] = str(tmp_path)
    command = [sys.executable, "-m", "chapter13.train", *argv]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr and not done.stdout
