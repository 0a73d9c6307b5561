import json
import os
import sys
import types

import pytest
import torch
from torch import nn

from chapter13 import checkpoints, recipes
from chapter13.checkpoints import CheckpointError
from chapter13.recipes import Recipe, SamplerSpec, UnknownCheckpoint


class Tiny(nn.Module):
    def __init__(self, width: int = 4):
        super().__init__()
        self.layer = nn.Linear(width, 2)

    def forward(self, x):
        return self.layer(x)


@pytest.fixture
def tiny_family(monkeypatch):
    """Serve ``codelab-mnist`` from a family of this test (``chapter13.recipes.tiny_family``) whose
    recipe rebuilds ``Tiny``: the checkpoint functions reach it through the real registry lookup."""
    family = types.ModuleType("chapter13.recipes.tiny_family")
    family.RECIPES = (Recipe("codelab-mnist", "a tiny stand-in", Tiny, lambda: None),)
    monkeypatch.setitem(sys.modules, family.__name__, family)
    monkeypatch.setitem(recipes.FAMILIES, "codelab-mnist", "tiny_family")
    return family


@pytest.fixture
def saved(tmp_path, tiny_family):
    torch.manual_seed(0)
    model = Tiny(4)
    checkpoints.save(
        "codelab-mnist", model, {"width": 4}, train_seconds=1.23, quality={"acc": 0.5}, directory=tmp_path
    )
    return tmp_path, model


def test_round_trip(saved):
    directory, model = saved
    loaded = checkpoints.load_model("codelab-mnist", directory=directory)
    assert isinstance(loaded, Tiny) and not loaded.training
    assert torch.equal(loaded.layer.weight, model.layer.weight)
    info = checkpoints.entry("codelab-mnist", directory)
    assert info["rebuild"] == "python -m chapter13.train codelab-mnist"
    assert info["quality"] == {"acc": 0.5} and info["train_seconds"] == 1.2
    assert info["model"] == "Tiny" and info["parameters"] == 10
    assert info["config"] == {"width": 4}


def test_manifest_model_must_be_the_registry_class(saved):
    """The registry, not the manifest, says which class rebuilds a name; a manifest naming another
    class (a checkpoint saved from other code) is refused with the rebuild command."""
    directory, _ = saved
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    manifest["codelab-mnist"]["model"] = "PatchUNet"
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(
        CheckpointError, match=r"'PatchUNet'.*registry builds it with Tiny.*chapter13\.train codelab-mnist"
    ):
        checkpoints.load_model("codelab-mnist", directory=directory)


def test_corrupt_file_names_the_rebuild_command(saved):
    directory, _ = saved
    path = directory / "codelab-mnist.pt"
    blob = bytearray(path.read_bytes())
    blob[-10] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match=r"corrupt.*python -m chapter13\.train codelab-mnist"):
        checkpoints.load_model("codelab-mnist", directory=directory)


def test_missing_file(saved):
    directory, _ = saved
    (directory / "codelab-mnist.pt").unlink()
    with pytest.raises(CheckpointError, match=r"missing.*python -m chapter13\.train codelab-mnist"):
        checkpoints.load_state("codelab-mnist", directory=directory)


def test_never_built_and_unknown(tmp_path):
    with pytest.raises(CheckpointError, match=r"Build it with: python -m chapter13\.train clip-digits"):
        checkpoints.load_model("clip-digits", directory=tmp_path)
    with pytest.raises(CheckpointError, match="unknown checkpoint 'nope'"):
        checkpoints.load_model("nope", directory=tmp_path)


def test_weights_only_refuses_code(saved, tmp_path):
    directory, _ = saved
    # A pickle that would run code on load: weights_only=True refuses it even with a matching checksum.
    evil = directory / "codelab-mnist.pt"
    torch.save({"state_dict": {}, "config": {}, "payload": Tiny()}, evil)
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    manifest["codelab-mnist"]["sha256"] = checkpoints.sha256_of(evil)
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(CheckpointError, match="could not read"):
        checkpoints.load_state("codelab-mnist", directory=directory)


def test_shape_mismatch_after_code_change(saved):
    directory, _ = saved
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    blob = checkpoints.load_state("codelab-mnist", directory=directory)
    blob["config"] = {"width": 5}
    checkpoints.atomic_torch_save(blob, directory / "codelab-mnist.pt")
    manifest["codelab-mnist"]["sha256"] = checkpoints.sha256_of(directory / "codelab-mnist.pt")
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(CheckpointError, match="does not fit"):
        checkpoints.load_model("codelab-mnist", directory=directory)


def test_atomic_save_leaves_no_temporary_files(tmp_path):
    checkpoints.atomic_torch_save({"a": torch.ones(2)}, tmp_path / "x.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]

    class Boom:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        checkpoints.atomic_torch_save({"a": Boom()}, tmp_path / "x.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]
    assert torch.equal(torch.load(tmp_path / "x.pt", weights_only=True)["a"], torch.ones(2))


def test_every_recipe_is_importable_by_name():
    """Every registered name imports its family module and finds its own recipe there: the class the
    manifest names, a training function and (generative models only) a sampler spec."""
    manifest = checkpoints.read_manifest()
    assert recipes.names(), "the registry is empty"
    assert set(recipes.names()) == set(manifest), "registry and shipped manifest disagree"
    for name in recipes.names():
        recipe = recipes.get(name)
        assert isinstance(recipe, Recipe) and recipe.name == name
        assert isinstance(recipe.model, type) and issubclass(recipe.model, nn.Module), name
        assert recipe.model.__name__ == manifest[name]["model"], name
        assert callable(recipe.train), name
        assert recipe.sampler is None or isinstance(recipe.sampler(), SamplerSpec), name
    assert recipes.samplable() == [n for n in recipes.names() if recipes.get(n).sampler is not None]
    assert {"codelab-mnist", "text2image-digits", "latent-text2image-digits"} <= set(recipes.samplable())


def test_unknown_name_and_misspelt_family_fail(monkeypatch):
    with pytest.raises(UnknownCheckpoint, match=r"unknown checkpoint 'nope'.*codelab-mnist"):
        recipes.get("nope")
    monkeypatch.setattr(recipes, "FAMILIES", {"x": "no_such_family"})
    with pytest.raises(ModuleNotFoundError, match=r"chapter13\.recipes\.no_such_family"):
        recipes.get("x")


def test_name_missing_from_its_family_module_is_named(monkeypatch):
    """FAMILIES sends the name to a module whose RECIPES lacks it: the error says which module."""
    monkeypatch.setitem(recipes.FAMILIES, "codelab-mnist-typo", "codelab")
    with pytest.raises(UnknownCheckpoint) as info:
        recipes.get("codelab-mnist-typo")
    message = str(info.value)
    assert "'codelab-mnist-typo'" in message and "chapter13.recipes.codelab" in message
    assert "RECIPES" in message and "codelab-mnist" in message  # what the module does have


SHIPPED = sorted(checkpoints.read_manifest())


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoint_verifies_and_loads(name):
    info = checkpoints.entry(name)
    assert info["bytes"] <= 8_000_000, f"{name} is {info['bytes'] / 1e6:.1f} MB; keep checkpoints small"
    model = checkpoints.load_model(name)
    assert sum(p.numel() for p in model.parameters()) == info["parameters"]
    assert info["quality"], f"{name} records no measured quality"


# --- doctored manifests and broken files (issue 17): refused with CheckpointError and the rebuild hint -----

REBUILD = r"python -m chapter13\.train codelab-mnist"


def _doctor(directory, blob=None, **fields):
    """Rewrite the saved ``codelab-mnist`` entry with ``fields`` (``None`` deletes one); with ``blob``,
    replace the .pt by that weights-only file and record its true SHA-256 (a sha-matching forgery)."""
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    info = manifest["codelab-mnist"]
    if blob is not None:
        torch.save(blob, directory / "codelab-mnist.pt")
        info["sha256"] = checkpoints.sha256_of(directory / "codelab-mnist.pt")
    for key, value in fields.items():
        if value is None:
            info.pop(key, None)
        else:
            info[key] = value
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


@pytest.fixture
def no_shell(monkeypatch):
    """Record any attempt to run a command instead of running it."""
    import subprocess

    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError(f"a checkpoint tried to run a command: {args}")

    for target, attr in (
        (subprocess, "getoutput"),
        (subprocess, "run"),
        (subprocess, "Popen"),
        (os, "system"),
    ):
        monkeypatch.setattr(target, attr, refuse)
    return calls


PAYLOAD = {"state_dict": {}, "config": {"cmd": "id > pwned.txt"}}


@pytest.mark.parametrize(
    "fields",
    [
        {"builder": "subprocess:getoutput", "model": "subprocess:getoutput"},
        {
            "builder": "subprocess:getoutput",
            "model": "Tiny",
        },  # the registry's class, the payload as its config
        {"builder": "subprocess:getoutput", "model": None},
    ],
    ids=["model-is-an-import-path", "builder-beside-the-right-model", "no-model"],
)
def test_doctored_manifest_runs_no_code(saved, monkeypatch, no_shell, fields):
    """Issue 17.1: a manifest naming ``subprocess:getoutput`` with a sha-matching weights-only file whose
    config is ``{"cmd": "id > pwned.txt"}``: refused, nothing imported from the manifest, no file made."""
    directory, _ = saved
    monkeypatch.chdir(directory)
    _doctor(directory, PAYLOAD, **fields)
    with pytest.raises(CheckpointError, match=REBUILD):
        checkpoints.load_model("codelab-mnist", directory=directory)
    assert not no_shell
    assert not (directory / "pwned.txt").exists()
    assert "subprocess:getoutput" not in sys.modules


def test_sample_cli_refuses_a_doctored_manifest(tmp_path):
    """The exact reproduction of issue 17.1: ``python -m chapter13.sample NAME`` on the doctored manifest
    (through ``CH13_DATA``, so that data/checkpoints is never touched) exits with an error, runs nothing."""
    import subprocess

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    torch.save(PAYLOAD, folder / "codelab-mnist.pt")
    entry = {
        "file": "codelab-mnist.pt",
        "sha256": checkpoints.sha256_of(folder / "codelab-mnist.pt"),
        "builder": "subprocess:getoutput",
        "model": "subprocess:getoutput",
        "config": PAYLOAD["config"],
    }
    (folder / "manifest.json").write_text(json.dumps({"codelab-mnist": entry}), encoding="utf-8")
    env = {**os.environ, "CH13_DATA": str(tmp_path), "CH13_DEVICE": "cpu"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "chapter13.sample",
            "codelab-mnist",
            "--n",
            "1",
            "--out",
            str(tmp_path / "x.png"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert "subprocess:getoutput" in run.stderr and "chapter13.train codelab-mnist" in run.stderr
    assert not list(tmp_path.rglob("pwned.txt")) and not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    "file", ["../outside.pt", "{outside}", "nested/codelab-mnist.pt", "./codelab-mnist.pt", "clip-digits.pt"]
)
def test_manifest_file_must_be_name_pt_inside_the_folder(saved, tmp_path, file):
    """A manifest ``file`` that leaves the folder (``..``, an absolute path) or names another file is
    refused, even when that file is a valid checkpoint whose SHA-256 matches."""
    directory, _ = saved
    outside = tmp_path.parent / f"{tmp_path.name}-outside.pt"
    outside.write_bytes((directory / "codelab-mnist.pt").read_bytes())
    try:
        if file == "../outside.pt":
            (directory.parent / "outside.pt").write_bytes(outside.read_bytes())
        _doctor(directory, file=file.format(outside=outside))
        for load in (checkpoints.load_model, checkpoints.load_state, checkpoints.entry):
            with pytest.raises(CheckpointError, match=r"always the file codelab-mnist\.pt.*" + REBUILD):
                load("codelab-mnist", directory=directory)
    finally:
        outside.unlink()
        (directory.parent / "outside.pt").unlink(missing_ok=True)


@pytest.mark.parametrize("text", ["{not json", "", '["a list"]', '{"codelab-mnist": 3}', "\xff\xfe"])
def test_unreadable_manifest_is_a_checkpoint_error(saved, text):
    directory, _ = saved
    (directory / "manifest.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(
        CheckpointError, match=r"manifest .* (cannot be read|is not a JSON object).*" + REBUILD
    ):
        checkpoints.load_model("codelab-mnist", directory=directory)
    with pytest.raises(CheckpointError, match="manifest"):
        checkpoints.read_manifest(directory)


def test_save_refuses_to_overwrite_an_unreadable_manifest(saved):
    """Saving over a manifest that does not parse would drop every other entry: refused, nothing written."""
    directory, model = saved
    (directory / "manifest.json").write_text("{truncated", encoding="utf-8")
    before = sorted(p.name for p in directory.iterdir())
    with pytest.raises(CheckpointError, match="cannot be read"):
        checkpoints.save(
            "codelab-mnist", model, {"width": 4}, train_seconds=1, quality={}, directory=directory
        )
    assert (directory / "manifest.json").read_text(encoding="utf-8") == "{truncated"
    assert sorted(p.name for p in directory.iterdir()) == before


@pytest.mark.parametrize("sha", [None, "", "abc", "0" * 63 + "/", 42])
def test_missing_or_malformed_sha256(saved, sha):
    directory, _ = saved
    _doctor(directory, sha256=sha)
    with pytest.raises(CheckpointError, match="no valid SHA-256.*" + REBUILD):
        checkpoints.load_model("codelab-mnist", directory=directory)


@pytest.mark.parametrize(
    "blob, message",
    [
        ({"state_dict": {}}, "no 'config'"),
        ({"config": {"width": 4}}, "no 'state_dict'"),
        ({"state_dict": {}, "config": [4]}, "no 'config'"),
        ([1, 2, 3], "holds a list"),
        ({"state_dict": {"layer.weight": "text"}, "config": {"width": 4}}, "does not fit"),
        ({"state_dict": {}, "config": {"width": 4, "depth": 2}}, "does not accept.*depth"),
        ({"state_dict": {}, "config": {"breadth": 4}}, "does not accept.*breadth"),
    ],
    ids=[
        "no-config",
        "no-state-dict",
        "config-not-a-dict",
        "not-a-dict",
        "bad-state",
        "extra-arg",
        "renamed-arg",
    ],
)
def test_file_that_is_not_a_checkpoint_of_its_class(saved, blob, message):
    """A sha-matching .pt without ``config``/``state_dict``, or with a config the constructor refuses
    (an argument renamed since it was saved): CheckpointError with the rebuild command, not a raw
    KeyError/TypeError."""
    directory, _ = saved
    _doctor(directory, blob)
    with pytest.raises(CheckpointError, match=message + ".*" + REBUILD):
        checkpoints.load_model("codelab-mnist", directory=directory)


def test_save_refuses_non_finite_weights(saved):
    """NaN weights never replace a good checkpoint."""
    directory, model = saved
    before = {p.name: p.read_bytes() for p in directory.iterdir()}
    broken = Tiny(4)
    with torch.no_grad():
        broken.layer.bias[0] = float("nan")
    with pytest.raises(CheckpointError, match=r"refusing to save.*layer\.bias.*NaN or inf.*kept"):
        checkpoints.save(
            "codelab-mnist", broken, {"width": 4}, train_seconds=1, quality={}, directory=directory
        )
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before
    assert torch.equal(
        checkpoints.load_model("codelab-mnist", directory=directory).layer.weight, model.layer.weight
    )


def test_save_refuses_a_config_that_is_not_json(tmp_path, tiny_family):
    with pytest.raises(CheckpointError, match="must be JSON"):
        checkpoints.save(
            "codelab-mnist",
            Tiny(4),
            {"width": torch.tensor(4)},
            train_seconds=1,
            quality={},
            directory=tmp_path,
        )
    assert not (tmp_path / "codelab-mnist.pt").exists()
