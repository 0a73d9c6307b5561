import json

import pytest
import torch
from torch import nn

from chapter13 import checkpoints
from chapter13.checkpoints import CheckpointError


class Tiny(nn.Module):
    def __init__(self, width: int = 4):
        super().__init__()
        self.layer = nn.Linear(width, 2)

    def forward(self, x):
        return self.layer(x)


@pytest.fixture
def saved(tmp_path):
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
    assert info["builder"].endswith(":Tiny") and info["parameters"] == 10


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
    manifest["codelab-mnist"]["builder"] = f"{__name__}:Tiny"
    (directory / "manifest.json").write_text(json.dumps(manifest))
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
    for name, recipe in checkpoints.REGISTRY.items():
        module, _, function = recipe.recipe.partition(":")
        assert module.startswith("chapter13.") and function.startswith("build_"), name


SHIPPED = sorted(checkpoints.read_manifest())


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoint_verifies_and_loads(name):
    info = checkpoints.entry(name)
    assert info["bytes"] <= 8_000_000, f"{name} is {info['bytes'] / 1e6:.1f} MB; keep checkpoints small"
    model = checkpoints.load_model(name)
    assert sum(p.numel() for p in model.parameters()) == info["parameters"]
    assert info["quality"], f"{name} records no measured quality"
