import json
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
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["codelab-mnist"]["model"] = "PatchUNet"
    (directory / "manifest.json").write_text(json.dumps(manifest))
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
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["codelab-mnist"]["sha256"] = checkpoints.sha256_of(evil)
    (directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="could not read"):
        checkpoints.load_state("codelab-mnist", directory=directory)


def test_shape_mismatch_after_code_change(saved):
    directory, _ = saved
    manifest = json.loads((directory / "manifest.json").read_text())
    blob = checkpoints.load_state("codelab-mnist", directory=directory)
    blob["config"] = {"width": 5}
    checkpoints.atomic_torch_save(blob, directory / "codelab-mnist.pt")
    manifest["codelab-mnist"]["sha256"] = checkpoints.sha256_of(directory / "codelab-mnist.pt")
    (directory / "manifest.json").write_text(json.dumps(manifest))
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
