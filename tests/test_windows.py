"""The package imports and works without POSIX-only modules, as on native Windows (issue 16, item 4).

A fresh interpreter hides ``fcntl`` (importing it raises ImportError, as on Windows), provides a
stand-in ``msvcrt`` that records its calls (after importing torch and ``subprocess``, which would take
its presence for Windows itself), and removes ``os.getloadavg``; then every module of the
package must import, a checkpoint must save and load through the manifest lock (taken with
``msvcrt.locking``), and the training loop's load record must be ``None``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import importlib, json, os, pkgutil, subprocess, sys, types

    import torch  # before the stand-in: the standard library reads a present msvcrt as "on Windows"

    sys.modules.pop("fcntl", None)
    sys.modules["fcntl"] = None  # `import fcntl` now raises ImportError, as on Windows
    calls = []
    msvcrt = types.ModuleType("msvcrt")
    msvcrt.LK_LOCK, msvcrt.LK_UNLCK = 1, 0
    msvcrt.locking = lambda fd, mode, nbytes: calls.append(mode)
    sys.modules["msvcrt"] = msvcrt
    del os.getloadavg

    import chapter13

    names = [m.name for m in pkgutil.walk_packages(chapter13.__path__, "chapter13.")]
    for name in names:
        if not name.endswith("__main__"):
            importlib.import_module(name)

    from chapter13 import checkpoints, train

    assert checkpoints.fcntl is None
    model = checkpoints.load_model("digit-classifier")
    out = sys.argv[1]
    config = checkpoints.load_state("digit-classifier")["config"]
    checkpoints.save("digit-classifier", model, config, train_seconds=0.0, quality={}, directory=out)
    again = checkpoints.load_model("digit-classifier", directory=out)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    print(json.dumps({"modules": len(names), "locking": calls, "load": train._load_average()}))
    """
)


def test_the_package_works_without_posix_modules(tmp_path):
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["modules"] > 40
    assert result["locking"] and result["locking"][0] == 1 and result["locking"][-1] == 0  # lock, unlock
    assert result["load"] is None
