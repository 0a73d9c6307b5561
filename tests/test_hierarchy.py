"""Tests of chapter13.hierarchy (13.5.3) and of the chapter's listings in chapter13.book.sec13_5."""

import numpy as np
import pytest
import torch

from chapter13 import hierarchy as H
from chapter13.book import sec13_5 as book
from chapter13.evaluate import accuracy
from chapter13.recipes import hierarchy as recipe
from chapter13.train import TrainResult


@pytest.mark.parametrize(
    "in_channels, size, want",
    [(1, 28, 32 * 7 * 7), (3, 32, 32 * 8 * 8), (1, (20, 36), 32 * 5 * 9), (2, 30, 32 * 7 * 7)],
)
def test_flatten_size_is_derived_from_the_input(in_channels, size, want):
    model = H.HierarchicalCNN(in_channels, size, widths=(4, 8, 32))
    assert model.flatten_size == want  # two 2x2 poolings: floor(floor(n / 2) / 2)
    hw = (size, size) if isinstance(size, int) else size
    x = torch.randn(2, in_channels, *hw)
    assert model(x).shape == (2, 10)
    stages = model.stages(x)
    assert list(stages) == list(H.STAGES)
    assert stages["V1"].shape == (2, 4, *hw)
    assert stages["IT"].shape[1:] == (32, hw[0] // 4, hw[1] // 4)
    assert stages["association"].shape == (2, 64)


def test_wrong_input_shape_says_how_to_fix():
    model = H.HierarchicalCNN()
    with pytest.raises(ValueError, match="image_size"):
        model(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match="widths"):
        H.HierarchicalCNN(widths=(8, 16))


def test_receptive_fields_by_hand_and_by_gradient():
    model = H.HierarchicalCNN()
    fields = {rf.stage: rf for rf in H.receptive_fields(model)}
    # V1: 3; V2/V4: 3 + 2 = 5, pool: 5 + 1 = 6 (jump 2); IT: 6 + 2*2 = 10, pool: 10 + 1*2 = 12 (jump 4)
    assert [fields[s].size for s in ("V1", "V2/V4", "IT")] == [3, 6, 12]
    assert [fields[s].jump for s in ("V1", "V2/V4", "IT")] == [1, 2, 4]
    assert fields["IT"].spatial == (7, 7)
    for stage in ("V1", "V2/V4", "IT"):
        mask = H.empirical_receptive_field(model, stage, n_probes=4).numpy()
        rows, cols = np.nonzero(mask)
        assert rows.max() - rows.min() + 1 == fields[stage].size
        assert cols.max() - cols.min() + 1 == fields[stage].size
        assert mask.sum() == fields[stage].size ** 2


def test_book_listings_fail_as_documented():
    with pytest.raises(TypeError):
        book.simulate_cross_modal_binding("ga", "ba", 0.5)  # strings, as its docstring suggests
    assert book.simulate_cross_modal_binding(2.0, 0.0, 0.5) == "da"
    assert book.simulate_cross_modal_binding(2.0, 0.0, 1.0) == pytest.approx(0.8)  # 0.4 * 2
    assert book.simulate_cross_modal_binding(2.0, 0.0, 0.2) == pytest.approx(0.16)  # 0.4 * 0.2 * 2
    assert book.simulate_cross_modal_binding(2.0, 0.0, 0.3) == pytest.approx(0.24)  # 0.3 is not in (0.3, 0.7)
    model = book.hierarchical_sensory_model()
    assert sum(p.numel() for p in model.parameters()) == (
        (3 * 64 * 9 + 64)
        + (64 * 128 * 9 + 128)
        + (128 * 256 * 9 + 256)
        + (256 * 8 * 8 * 512 + 512)
        + (512 * 10 + 10)
    )
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    with pytest.raises(RuntimeError):
        model(torch.randn(1, 1, 28, 28))  # MNIST: one channel
    with pytest.raises(RuntimeError):
        model(torch.randn(1, 3, 28, 28))  # 256 * 7 * 7 inputs to a Linear(256 * 8 * 8, ...)


def test_auditory_code_holds_the_two_dtmf_tones():
    labels = torch.arange(10)
    sound = H.auditory_code(
        labels, 0.0, n_samples=800, jitter=0.0, generator=torch.Generator().manual_seed(0)
    )
    assert sound.shape == (10, 1, 800)
    spectrum = np.abs(np.fft.rfft(sound[:, 0].numpy(), axis=1))
    freqs = np.fft.rfftfreq(800, d=1 / 8000)  # 10 Hz bins
    for digit in range(10):
        top2 = np.sort(freqs[np.argsort(spectrum[digit])[-2:]])
        np.testing.assert_allclose(top2, H.DTMF_HZ[digit], atol=10.0)
    a = H.auditory_code(labels, 1.0, generator=torch.Generator().manual_seed(3))
    b = H.auditory_code(labels, 1.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    clean = H.auditory_code(labels, 0.0, generator=torch.Generator().manual_seed(3))
    noisy = H.auditory_code(labels, 2.0, generator=torch.Generator().manual_seed(3))
    assert (noisy - clean).std().item() == pytest.approx(2.0, rel=0.05)  # same phases, added noise
    with pytest.raises(ValueError, match="0-9"):
        H.auditory_code(torch.tensor([10]))


def test_fusion_network_shapes_and_errors():
    model = H.TwoStreamFusion()
    out = model(torch.randn(4, 1, 28, 28), H.auditory_code(torch.tensor([1, 2, 3, 4])))
    assert set(out) == {"visual", "auditory", "fused"} and all(v.shape == (4, 10) for v in out.values())
    with pytest.raises(ValueError, match="pair them"):
        model(torch.randn(3, 1, 28, 28), H.auditory_code(torch.tensor([1, 2])))
    with pytest.raises(ValueError, match="sound must be"):
        model(torch.randn(2, 1, 28, 28), torch.randn(2, 1, 100))


def test_training_runs_through_fit():
    result = recipe.train_hierarchy(6, train_limit=64, batch_size=16, device="cpu", progress=False)
    assert isinstance(result, TrainResult)
    model = result.ema_model
    assert isinstance(model, H.HierarchicalCNN) and not model.training
    assert len(result.losses) == 6 and np.isfinite(result.losses).all()
    assert H.HierarchicalCNN(**model.config).flatten_size == model.flatten_size
    result = recipe.train_fusion(4, train_limit=64, batch_size=16, device="cpu", progress=False)
    assert isinstance(result, TrainResult)
    assert len(result.losses) == 4 and isinstance(result.ema_model, H.TwoStreamFusion)


def test_shipped_checkpoints_quality_and_size():
    from chapter13.checkpoints import CHECKPOINT_DIR, load_model
    from chapter13.data import load_mnist

    x, y = load_mnist("test")
    x, y = x[::4], y[::4]  # 250 digits, 25 per class
    cnn = load_model("hierarchy-digits")
    assert accuracy(cnn, x, y) >= 0.95
    fusion = load_model("av-fusion-digits")
    rows = H.evaluate_fusion(fusion, x, y, noise_levels=[(0.0, 0.0), (1.5, 1.2), (3.5, 2.0)])
    clean, mid, weak = rows
    assert clean["fused"] >= 0.97
    for row in rows:
        best = max(row["visual"], row["auditory"])
        assert row["enhancement"] == pytest.approx(100 * (row["fused"] - best) / best)
        assert row["fused"] >= best - 0.02  # fusion never much worse than the better stream
    assert weak["enhancement"] > mid["enhancement"] > clean["enhancement"]  # inverse effectiveness
    for name in ("hierarchy-digits", "av-fusion-digits"):
        assert (CHECKPOINT_DIR / f"{name}.pt").stat().st_size < 1_000_000


# matplotlib gets NumPy arrays, never tensors (NumPy 2 deprecates converting tensors implicitly)
@pytest.mark.filterwarnings("error::DeprecationWarning")
def test_hierarchy_figures_moved_to_plotting():
    """The 13.5 figures (chapter13.plotting since the hierarchy module lost its plots) draw what they
    say: one panel per receptive field, every stage's maps, the fusion rows' numbers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from chapter13.plotting import plot_fusion_accuracy, plot_receptive_fields, plot_stage_activations

    torch.manual_seed(0)
    model = H.HierarchicalCNN(widths=(4, 8, 16)).eval()
    try:
        fig = plot_receptive_fields(model, torch.zeros(1, 1, 28, 28))
        fields = H.receptive_fields(model)
        assert len(fig.axes) == len(fields)
        assert [ax.get_title().split(":")[0] for ax in fig.axes] == [rf.stage for rf in fields]
        fig = plot_stage_activations(model, torch.zeros(1, 28, 28), n_maps=3)
        titles = [ax.get_title(loc="left") or ax.get_title() for ax in fig.axes]
        assert titles[0] == "input" and {"V1", "V2/V4", "IT"} <= {t.split(" (")[0] for t in titles}
        rows = [
            dict(image_noise=0.0, sound_noise=0.0, visual=0.9, auditory=0.8, fused=0.95, product=0.96),
            dict(image_noise=2.0, sound_noise=1.0, visual=0.5, auditory=0.6, fused=0.75, product=0.7),
        ]
        for r in rows:
            best = max(r["visual"], r["auditory"])
            r["enhancement"] = 100 * (r["fused"] - best) / best
        fig = plot_fusion_accuracy(rows)
        accuracy_ax, enhancement_ax = fig.axes
        lines = {line.get_label(): line.get_ydata() for line in accuracy_ax.get_lines()}
        assert np.allclose(lines["fused"], [95, 75]) and np.allclose(lines["auditory"], [80, 60])
        assert np.allclose(enhancement_ax.get_lines()[0].get_ydata(), [r["enhancement"] for r in rows])
    finally:
        plt.close("all")


# --- bad input (issue 17) ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"noise_std": float("nan")},
        {"noise_std": float("inf")},
        {"noise_std": -1.0},
        {"noise_std": torch.ones(2)},
        {"sample_rate": float("nan")},
        {"sample_rate": 0.0},
        {"jitter": float("nan")},
        {"n_samples": 0},
    ],
)
def test_auditory_code_refuses_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        H.auditory_code(torch.tensor([1, 2, 3]), **kwargs)  # nan/inf/0 Hz used to give NaN sounds


def test_auditory_code_takes_a_list_and_refuses_fractional_labels():
    assert H.auditory_code([1, 2]).shape == (2, 1, 256)
    with pytest.raises(TypeError, match="integer"):
        H.auditory_code(torch.tensor([1.5]))


def test_image_noise_sizes_and_model_inputs_are_checked():
    x = torch.zeros(4, 1, 28, 28)
    for std in (float("nan"), float("inf"), torch.ones(3)):
        with pytest.raises(ValueError, match="noise_std"):
            H.add_image_noise(x, std)
    with pytest.raises(TypeError, match="tensor"):
        H.add_image_noise(x.numpy(), 0.1)
    with pytest.raises(ValueError, match="image_size"):
        H.HierarchicalCNN(image_size="28")  # was read as (2, 8)
    with pytest.raises(ValueError, match="in_channels"):
        H.HierarchicalCNN(in_channels=0)
    model = H.TwoStreamFusion()
    with pytest.raises(TypeError, match="float16"):
        model.visual(x.half())
    y = torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="batch_size"):
        H.evaluate_fusion(model, x, y, [(0.1, 0.1)], batch_size=0)
    with pytest.raises(ValueError, match="non-empty"):
        H.evaluate_fusion(model, x[:0], y[:0], [(0.1, 0.1)])
    with pytest.raises(ValueError, match="n_probes"):
        H.empirical_receptive_field(model.visual, "V1", -1)


def test_fusion_evaluation_does_not_depend_on_the_batch_size():
    """The noise of the whole set is drawn before the model is called in batches (it used to be drawn
    batch by batch, so the figures changed with batch_size)."""
    from chapter13.checkpoints import load_model
    from chapter13.data import load_mnist

    model = load_model("av-fusion-digits")
    x, y = load_mnist("test", limit=60)
    rows = [H.evaluate_fusion(model, x, y, [(3.5, 2.0), (5.5, 3.0)], seed=4, batch_size=b) for b in (7, 60)]
    assert rows[0] == rows[1]
    x, y = x[:12], y[:12]
    p = H.fusion_posteriors(model, x, y, 1.0, 1.0, generator=torch.Generator().manual_seed(1), batch_size=5)
    assert set(p) == {"visual", "auditory", "fused"} and all(v.shape == (12, 10) for v in p.values())
    torch.testing.assert_close(p["fused"].sum(1), torch.ones(12, dtype=torch.float64))
