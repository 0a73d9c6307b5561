"""A checkpoint save is one transaction (issue 17.3): killed at any point, the old or the new checkpoint
loads, never neither; the next save leaves no temporary file; files get the usual permissions.

The kill tests fork this test process (torch already imported, so each kill costs milliseconds) and
SIGKILL the child at the k-th file-system call that ``checkpoints`` makes (``os.open``, ``os.write``,
``os.fsync``, ``os.replace``, ``os.unlink``, ``os.close``; a write is cut in half first), for every k
until the save completes, and then again at every point of the following save from each distinct
state the first kill left. A further test kills a loop of saves at random moments. No exception
handler runs in a SIGKILLed child, exactly as after a power cut of the process.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import torch
from torch import nn

from chapter13 import checkpoints, config, recipes
from chapter13.checkpoints import CheckpointError
from chapter13.recipes import Recipe

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the kill tests fork (POSIX only)")

NAME = "codelab-mnist"
OPS = ("open", "write", "fsync", "replace", "unlink", "close")
ROOT = Path(__file__).resolve().parents[1]


class Tiny(nn.Module):
    def __init__(self, width: int = 4):
        super().__init__()
        self.layer = nn.Linear(width, 2)

    def forward(self, x):
        return self.layer(x)


@pytest.fixture(autouse=True)
def tiny_family(monkeypatch):
    """``codelab-mnist`` rebuilt as ``Tiny`` through the real registry lookup (see test_checkpoints)."""
    family = types.ModuleType("chapter13.recipes.tiny_safety_family")
    family.RECIPES = (Recipe(NAME, "a tiny stand-in", Tiny, lambda: None),)
    monkeypatch.setitem(sys.modules, family.__name__, family)
    monkeypatch.setitem(recipes.FAMILIES, NAME, "tiny_safety_family")


@pytest.fixture(autouse=True)
def no_shipped_folder(monkeypatch, tmp_path):
    """Whatever goes wrong, nothing here can write data/checkpoints: the default folder is a stand-in."""
    monkeypatch.setattr(checkpoints, "CHECKPOINT_DIR", tmp_path / "shipped")


@pytest.fixture(autouse=True)
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def version(v: float) -> Tiny:
    """A model whose every weight is ``v`` (so a loaded model tells which save it came from)."""
    model = Tiny(4)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(v)
    return model


def save(directory: Path, v: float) -> Path:
    return checkpoints.save(
        NAME, version(v), {"width": 4}, train_seconds=v, quality={"version": v}, directory=directory
    )


def loaded_version(directory: Path) -> float:
    """The version that loads, checked against the manifest entry that served it."""
    model = checkpoints.load_model(NAME, directory=directory)
    values = torch.cat([p.detach().flatten() for p in model.parameters()]).unique()
    assert len(values) == 1, values
    v = float(values[0])
    assert checkpoints.entry(NAME, directory)["quality"]["version"] == v, "manifest and weights disagree"
    return v


def state_of(directory: Path) -> tuple:
    """What a directory holds: (file name, SHA-256) pairs, the lock file left out."""
    return tuple(
        sorted(
            (p.name, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in directory.iterdir()
            if p.name != ".manifest.lock"
        )
    )


def litter(directory: Path) -> list[str]:
    return sorted(
        p.name for p in directory.iterdir() if p.name not in {f"{NAME}.pt", "manifest.json", ".manifest.lock"}
    )


def run_in_child(work, kill_at: int | None, timeout: float = 20.0) -> tuple[bool, int]:
    """Run ``work()`` in a forked child that SIGKILLs itself at its ``kill_at``-th file-system call.

    Returns (killed, calls made): killed is False when ``work`` finished before call ``kill_at``.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 3
        try:
            os.close(read_end)
            real = {op: getattr(os, op) for op in OPS}
            calls = 0

            def wrapped(op):
                def call(*args, **kwargs):
                    nonlocal calls
                    calls += 1
                    if calls == kill_at:
                        if op == "write":  # a torn write: half the bytes reach the file
                            real["write"](args[0], bytes(args[1][: max(1, len(args[1]) // 2)]))
                        os.kill(os.getpid(), signal.SIGKILL)
                    return real[op](*args, **kwargs)

                return call

            for op in OPS:
                setattr(os, op, wrapped(op))
            work()
            for op in OPS:
                setattr(os, op, real[op])
            os.write(write_end, str(calls).encode())
            code = 0
        except BaseException:  # pragma: no cover - reported through the exit code
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(write_end)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_end)
            pytest.fail(f"the child saving with a kill at call {kill_at} hung")
        time.sleep(0.001)
    with os.fdopen(read_end) as pipe:
        reported = pipe.read()
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True, kill_at or 0
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"the child failed (status {status})"
    return False, int(reported)


def kill_every_point(directory: Path, work) -> list[tuple[int, Path]]:
    """Copy ``directory`` once per kill point, kill ``work(copy)`` there; return (k, copy) for each kill."""
    import shutil

    results = []
    for k in range(1, 200):
        copy = directory.parent / f"{directory.name}-k{k}"
        shutil.copytree(directory, copy)
        killed, calls = run_in_child(lambda c=copy: work(c), kill_at=k)
        if not killed:
            shutil.rmtree(copy)
            assert calls == k - 1, (calls, k)
            return results
        results.append((k, copy))
    pytest.fail("a save made more than 200 file-system calls")


def test_save_killed_at_every_point_loads_old_or_new(tmp_path):
    """Version 1 is saved; a save of version 2 is killed at each of its file-system calls; from every
    distinct state that leaves, a save of version 3 is killed at each of its calls. Every state loads
    a version that was either in place or being saved, and a final save cleans up after all of them."""
    started = time.monotonic()
    base = tmp_path / "base"
    save(base, 1.0)
    first = kill_every_point(base, lambda d: save(d, 2.0))
    assert len(first) >= 10, "the save makes fewer file-system calls than expected"
    outcomes, states = {}, {}
    for k, copy in first:
        outcomes[k] = loaded_version(copy)
        assert outcomes[k] in (1.0, 2.0), (k, outcomes[k])
        states.setdefault(state_of(copy), copy)
    assert set(outcomes.values()) == {1.0, 2.0}, "no kill point left the new version committed"
    second = 0
    for copy in states.values():
        before = loaded_version(copy)
        for k, again in kill_every_point(copy, lambda d: save(d, 3.0)):
            second += 1
            assert loaded_version(again) in (before, 3.0), k
            save(again, 4.0)  # the next run: completes, loads, leaves nothing behind
            assert loaded_version(again) == 4.0 and litter(again) == []
    for _, copy in first:
        save(copy, 4.0)
        assert loaded_version(copy) == 4.0 and litter(copy) == []
        for name in (f"{NAME}.pt", "manifest.json"):
            assert (copy / name).stat().st_mode & 0o777 == 0o644, name
    print(
        f"\nkilled the first save at {len(first)} points ({len(states)} distinct states), the second at "
        f"{second} points; all loaded; {time.monotonic() - started:.1f} s"
    )
    assert second >= len(states) * 10


def test_save_killed_at_random_moments(tmp_path):
    """A child saves versions 1, 2, 3, ... as fast as it can and is SIGKILLed after a random delay,
    20 times in the same folder: each time a version loads and the manifest matches it."""
    rng = random.Random(17)
    directory = tmp_path / "loop"
    save(directory, 0.0)
    t0 = time.perf_counter()
    for v in range(1, 6):
        save(directory, float(v))
    per_save = (time.perf_counter() - t0) / 5
    highest = 5.0
    for round_ in range(20):
        start = highest + 1

        def saves_forever(start=start):
            for i in range(10_000):
                save(directory, start + i)

        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            os.write(write_end, b"x")
            try:
                saves_forever()
            finally:
                os._exit(0)
        os.close(write_end)
        os.read(read_end, 1)  # the child is running
        os.close(read_end)
        time.sleep(rng.uniform(0, 6 * per_save))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        v = loaded_version(directory)
        assert v == highest or v >= start, (round_, v, highest)
        highest = max(highest, v)
    save(directory, highest + 1)
    assert loaded_version(directory) == highest + 1 and litter(directory) == []


@pytest.mark.parametrize("op", ["open", "write", "fsync", "replace", "unlink", "close"])
def test_save_that_fails_at_any_call_keeps_a_loadable_checkpoint(tmp_path, monkeypatch, op):
    """A save whose k-th call of ``os.<op>`` raises (disk full, permission, I/O error), for every k:
    the error reaches the caller (or is harmless), the old or the new version loads, and the only file
    left behind is the committed new version waiting for its rename."""
    real = getattr(os, op)
    for k in range(1, 50):
        directory = tmp_path / f"{op}-{k}"
        save(directory, 1.0)
        calls = {"n": 0}

        def failing(*args, real=real, k=k, calls=calls, **kwargs):
            calls["n"] += 1
            if calls["n"] == k:
                raise OSError(28, "No space left on device (injected)")
            return real(*args, **kwargs)

        monkeypatch.setattr(os, op, failing)
        try:
            save(directory, 2.0)
            raised = False
        except OSError:
            raised = True
        finally:
            monkeypatch.setattr(os, op, real)
        v = loaded_version(directory)
        assert v in (1.0, 2.0)
        if raised:
            left = litter(directory)
            assert left == [] or (v == 2.0 and len(left) == 1 and left[0].startswith(f".{NAME}.")), left
        save(directory, 3.0)
        assert loaded_version(directory) == 3.0 and litter(directory) == []
        if calls["n"] < k:  # the save made fewer calls of os.<op> than k: every one has been tried
            break


def test_loader_reads_a_save_killed_between_manifest_and_rename(tmp_path):
    """The one intermediate state: the manifest records the new SHA-256, the new weights sit in
    ``.NAME.<sha256>.tmp`` and ``NAME.pt`` is still the old file. The new version loads; the next
    save finishes the rename before it starts (so that a kill during it still leaves a loadable pair)."""
    directory = tmp_path / "d"
    save(directory, 1.0)
    old = (directory / f"{NAME}.pt").read_bytes()
    save(directory, 2.0)
    sha = checkpoints.entry(NAME, directory)["sha256"]
    staged = directory / f".{NAME}.{sha}.tmp"
    os.replace(directory / f"{NAME}.pt", staged)
    (directory / f"{NAME}.pt").write_bytes(old)
    assert loaded_version(directory) == 2.0
    staged.unlink()
    with pytest.raises(CheckpointError, match="corrupt or was changed"):
        checkpoints.load_model(NAME, directory=directory)


def test_stale_temporary_files_are_removed_by_the_next_save(tmp_path):
    directory = tmp_path / "d"
    save(directory, 1.0)
    junk = [f".{NAME}.{'0' * 64}.tmp", f".{NAME}.pt.k2j4h6_x.tmp", ".manifest.json.tmp", "manifest.json.tmp"]
    for name in junk:
        (directory / name).write_bytes(b"half a file")
    assert loaded_version(directory) == 1.0  # litter never disturbs loading
    save(directory, 2.0)
    assert litter(directory) == [] and loaded_version(directory) == 2.0


def test_files_get_the_usual_permissions(tmp_path):
    directory = tmp_path / "d"
    save(directory, 1.0)
    checkpoints.atomic_torch_save({"a": torch.ones(1)}, directory / "state.pt")
    for name in (f"{NAME}.pt", "manifest.json", "state.pt"):
        assert (directory / name).stat().st_mode & 0o777 == 0o644, name
    os.umask(0o077)
    save(directory, 2.0)
    assert (directory / f"{NAME}.pt").stat().st_mode & 0o777 == 0o600  # the umask is respected


def test_atomic_torch_save_killed_at_every_point(tmp_path):
    """The training-state writer of ``train.fit``: a kill leaves the old file; the next write cleans up."""
    path = tmp_path / "base" / "state.pt"
    checkpoints.atomic_torch_save({"v": 1}, path)
    kills = kill_every_point(path.parent, lambda d: checkpoints.atomic_torch_save({"v": 2}, d / "state.pt"))
    assert len(kills) >= 4
    for _, copy in kills:
        assert torch.load(copy / "state.pt", weights_only=True)["v"] in (1, 2)
        checkpoints.atomic_torch_save({"v": 3}, copy / "state.pt")
        assert [p.name for p in copy.iterdir()] == ["state.pt"]


# --- where notebooks and builds write (issue 17.4) ---------------------------------------------------------


def test_user_checkpoint_dir_is_outside_the_repository_and_follows_the_environment(tmp_path):
    assert config.USER_CHECKPOINT_DIR != config.CHECKPOINT_DIR
    assert config.CHECKPOINT_DIR not in config.USER_CHECKPOINT_DIR.parents
    code = "from chapter13 import config; print(config.USER_CHECKPOINT_DIR)"
    env = {**os.environ, "CH13_CHECKPOINTS": str(tmp_path / "mine")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(tmp_path / "mine")


WRITERS = {"build", "save", "save_run", "atomic_torch_save"}


def _notebook_calls():
    for path in sorted((ROOT / "notebooks").glob("13.*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for cell in cells:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
            for node in ast.walk(ast.parse("\n".join(lines))):
                if isinstance(node, ast.Call):
                    name = getattr(node.func, "attr", getattr(node.func, "id", None))
                    if name in WRITERS:
                        yield path.name, name, node


def test_notebooks_never_write_the_shipped_checkpoints():
    """Every checkpoint a notebook writes goes to a folder it names, and that folder is never the
    shipped one (``CHECKPOINT_DIR`` or a literal ``data/checkpoints``): ``train.build`` and
    ``checkpoints.save`` without ``directory=`` would write data/checkpoints."""
    found = list(_notebook_calls())
    assert any(n.startswith("13.3") and call == "build" for n, call, _ in found)  # 13.3's TRAIN cell is seen
    for notebook, call, node in found:
        directory = [k.value for k in node.keywords if k.arg == "directory"]
        if call == "save_run" and not directory:
            continue  # its default is config.USER_CHECKPOINT_DIR
        assert directory, f"{notebook}: {call}(...) without directory= writes data/checkpoints"
        text = ast.unparse(directory[0])
        assert "USER_CHECKPOINT_DIR" in text, f"{notebook}: {call}(directory={text})"
        assert "CHECKPOINT_DIR" not in text.replace("USER_CHECKPOINT_DIR", ""), f"{notebook}: {text}"
        assert "data/checkpoints" not in text, f"{notebook}: {text}"
