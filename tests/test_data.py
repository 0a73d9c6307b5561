from pathlib import Path

import numpy as np
import pytest
import torch

from chapter13 import data
from chapter13.config import DATA_DIR

SHARED_NPZ = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist5k.npz"


def test_bundled_split_sizes_and_balance():
    x, y = data.load_mnist("train")
    assert x.shape == (4000, 1, 28, 28) and x.dtype == torch.float32
    assert y.dtype == torch.int64
    assert torch.bincount(y, minlength=10).tolist() == [400] * 10
    xt, yt = data.load_mnist("test")
    assert xt.shape == (1000, 1, 28, 28)
    assert torch.bincount(yt, minlength=10).tolist() == [100] * 10


def test_range_is_minus_one_to_one():
    x, _ = data.load_mnist("test")
    assert x.min().item() == -1.0 and x.max().item() == 1.0
    # a pixel of 0 maps to -1 and 255 to +1 exactly
    assert torch.equal(
        data.to_model_range(torch.tensor([[[0, 255]]], dtype=torch.uint8)), torch.tensor([[[[-1.0, 1.0]]]])
    )


def test_train_and_test_do_not_overlap():
    x, _ = data.load_mnist("train")
    xt, _ = data.load_mnist("test")
    train_rows = {row.numpy().tobytes() for row in x.flatten(1)}
    overlap = sum(row.numpy().tobytes() in train_rows for row in xt.flatten(1))
    assert overlap == 0


def test_raw_dataset_is_torchvision_mnist():
    from torchvision.datasets import MNIST

    ds = data.mnist_dataset("test")
    assert isinstance(ds, MNIST)
    image, label = ds[0]
    assert image.size == (28, 28) and 0 <= label <= 9


def test_limit():
    x, y = data.load_mnist("train", limit=10)
    assert len(x) == len(y) == 10
    assert sorted(y.tolist()) == list(range(10))  # the subset is sorted by class; a limit takes each in turn
    full_x, full_y = data.load_mnist("train")
    assert (full_y[:-1] <= full_y[1:]).all()  # the files' order is unchanged
    assert any(torch.equal(x[3], image) for image in full_x[full_y == 3])


def test_interleave_classes():
    order = data.interleave_classes(torch.tensor([2, 0, 0, 1, 2, 2]))
    assert order.tolist() == [1, 3, 0, 2, 4, 5]
    assert data.interleave_classes(torch.tensor([], dtype=torch.long)).tolist() == []
    with pytest.raises(ValueError, match="one-dimensional"):
        data.interleave_classes(torch.zeros(2, 2))


def test_unknown_split():
    with pytest.raises(ValueError, match="unknown split 'validation'"):
        data.load_mnist("validation")


def test_missing_files_say_how_to_restore(tmp_path):
    with pytest.raises(FileNotFoundError, match="git checkout -- data/MNIST"):
        data.load_mnist("train", root=tmp_path)


def test_full_downloads_into_cache_not_repo(monkeypatch, tmp_path):
    calls = {}

    class FakeMNIST:
        def __init__(self, root, train, download):
            calls.update(root=root, train=train, download=download)

    monkeypatch.setattr(data, "MNIST", FakeMNIST)
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    data.mnist_dataset("train", full=True)
    assert calls == {"root": str(tmp_path / "cache"), "train": True, "download": True}
    assert not str(calls["root"]).startswith(str(DATA_DIR))


def test_idx_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(30, 28, 28), dtype=np.uint8)
    labels = np.repeat(np.arange(10), 3)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split in data.SPLITS:
        data.write_idx_images(raw / data.RAW_FILES[split][0], images)
        data.write_idx_labels(raw / data.RAW_FILES[split][1], labels)
    ds = data.mnist_dataset("train", root=tmp_path)
    assert np.array_equal(ds.data.numpy(), images)
    assert np.array_equal(ds.targets.numpy(), labels)


def test_split_balanced_is_disjoint_and_ordered():
    labels = np.tile(np.arange(10), 6)
    train, test = data.split_balanced(labels, train_per_class=4, test_per_class=2)
    assert len(set(train) & set(test)) == 0
    assert np.bincount(labels[train]).tolist() == [4] * 10
    with pytest.raises(ValueError, match="needs 7"):
        data.split_balanced(labels, train_per_class=5, test_per_class=2)


@pytest.mark.skipif(not SHARED_NPZ.exists(), reason="the source archive is only beside the repository")
def test_shipped_files_match_the_source_archive(tmp_path):
    data.write_bundled_subset(SHARED_NPZ, root=tmp_path)
    for name in (*data.RAW_FILES["train"], *data.RAW_FILES["test"]):
        assert (tmp_path / "MNIST" / "raw" / name).read_bytes() == (
            DATA_DIR / "MNIST" / "raw" / name
        ).read_bytes()


# --- bad input (issue 17) ------------------------------------------------------------------------------


def test_load_mnist_refuses_limits_that_are_not_positive_ints():
    for limit in (-5, 0):
        with pytest.raises(ValueError, match="positive"):
            data.load_mnist("test", limit=limit)  # -5 used to return 995 digits
    for limit in (2.5, "5", True):
        with pytest.raises(TypeError, match="limit"):
            data.load_mnist("test", limit=limit)
    assert len(data.load_mnist("test", limit=3)[0]) == 3


def test_as_model_range_checks_or_converts():
    x = torch.tensor([[-1.0, 0.2, 1.0]])
    assert data.as_model_range(x) is x
    with pytest.raises(ValueError, match=r"value_range=\(0, 1\)"):
        data.as_model_range((x + 1) / 2)
    with pytest.raises(ValueError, match=r"value_range=\(0, 255\)"):
        data.as_model_range((x + 1) * 127.5)
    with pytest.raises(ValueError, match=r"model range \[-1, 1\]"):
        data.as_model_range(x * 1.8)
    unit = torch.tensor([0.0, 0.5, 1.0])
    assert torch.allclose(data.as_model_range(unit, (0, 1)), torch.tensor([-1.0, 0.0, 1.0]))
    assert torch.allclose(
        data.as_model_range(torch.tensor([0.0, 255.0]), (0, 255)), torch.tensor([-1.0, 1.0])
    )
    bright = torch.tensor([0.1, 0.9])
    assert data.as_model_range(bright, (-1, 1)) is bright  # told the range: no [0, 1] guess
    for bad in ((1, 0), (float("nan"), 1)):
        with pytest.raises(ValueError, match="value_range"):
            data.as_model_range(unit, bad)
    with pytest.raises(TypeError, match="value_range"):
        data.as_model_range(unit, "01")
    with pytest.raises(ValueError, match="outside value_range"):
        data.as_model_range(torch.tensor([5.0]), (0, 1))


def test_to_model_range_takes_only_bytes():
    with pytest.raises(TypeError, match="uint8"):
        data.to_model_range(torch.zeros(1, 28, 28))  # floats in [-1, 1] would be shifted again
    with pytest.raises(TypeError, match="from_numpy"):
        data.to_model_range(np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="train_per_class"):
        data.split_balanced(np.arange(50) % 10, -1, 1)
