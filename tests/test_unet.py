"""Checks of chapter13.unet: embedding formula, shapes, conditioning hooks, config round trip."""

from __future__ import annotations

import json
import math

import pytest
import torch

from chapter13.unet import SinusoidalTimeEmbedding, UNet


def test_sinusoidal_embedding_formula():
    emb = SinusoidalTimeEmbedding(8)
    t = torch.tensor([0, 1, 37, 999])
    out = emb(t)
    assert out.shape == (4, 8)
    for i, ti in enumerate(t.tolist()):
        for k in range(4):
            freq = 10000 ** (-k / 4)
            assert out[i, k].item() == pytest.approx(math.sin(ti * freq), abs=1e-4)
            assert out[i, 4 + k].item() == pytest.approx(math.cos(ti * freq), abs=1e-4)
    with pytest.raises(ValueError, match="even"):
        SinusoidalTimeEmbedding(7)


def _randomise(model: torch.nn.Module) -> None:
    """Give every zero-initialised layer random weights so that all inputs reach the output."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


def test_shapes_on_mnist_and_odd_sizes():
    torch.manual_seed(0)
    m = UNet(base_channels=16)
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([3, 900])
    assert m(x, t).shape == (2, 1, 28, 28)
    m2 = UNet(in_channels=3, out_channels=6, base_channels=8, channel_mults=(1, 2, 2, 2), num_res_blocks=1,
              attention_resolutions=(7, 4), image_size=28)  # fmt: skip
    assert m2(torch.randn(1, 3, 28, 28), torch.tensor([5])).shape == (1, 6, 28, 28)
    assert m2(torch.randn(1, 3, 13, 21), torch.tensor([5])).shape == (1, 6, 13, 21)


def test_time_changes_the_output():
    torch.manual_seed(0)
    m = UNet(base_channels=8, channel_mults=(1, 2), num_res_blocks=1)
    _randomise(m)
    x = torch.randn(1, 1, 28, 28)
    assert not torch.allclose(m(x, torch.tensor([10])), m(x, torch.tensor([500])))


def test_class_and_context_hooks():
    torch.manual_seed(0)
    m = UNet(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, num_classes=10, context_dim=6,
             attention_resolutions=(14,))  # fmt: skip
    _randomise(m)
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([100, 100])
    base = m(x, t)
    torch.testing.assert_close(m(x, t, class_labels=torch.tensor([-1, -1])), base)
    assert not torch.allclose(m(x, t, class_labels=torch.tensor([3, 3])), base)
    ctx = torch.randn(2, 4, 6)
    assert not torch.allclose(m(x, t, context=ctx), base)
    no_tokens = torch.zeros(2, 4, dtype=torch.bool)
    torch.testing.assert_close(m(x, t, context=ctx, context_mask=no_tokens), base)
    mask = torch.tensor([[True, True, False, False]] * 2)
    padded = ctx.clone()
    padded[:, 2:] = 99.0
    torch.testing.assert_close(
        m(x, t, context=ctx, context_mask=mask), m(x, t, context=padded, context_mask=mask)
    )


def test_config_round_trips_through_json():
    """``UNet(**config)`` rebuilds the same network: same config, same weights' shapes, same output."""
    m = UNet(base_channels=8, channel_mults=[1, 2], attention_resolutions=[14], num_classes=3, heads=2)
    config = json.loads(json.dumps(m.config))
    m2 = UNet(**config)
    assert m2.config == m.config
    m2.load_state_dict(m.state_dict())
    for p in m.parameters():  # non-zero everywhere, so that every layer shapes the output
        torch.nn.init.normal_(p, std=0.2)
    m2.load_state_dict(m.state_dict())
    x, t, labels = torch.randn(2, 1, 28, 28), torch.tensor([3, 700]), torch.tensor([0, 2])
    torch.testing.assert_close(m2(x, t, class_labels=labels), m(x, t, class_labels=labels))


def test_bad_input():
    m = UNet(base_channels=8, channel_mults=(1, 2), num_res_blocks=1)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        m(torch.randn(2, 3, 28, 28), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="t must have shape"):
        m(torch.randn(2, 1, 28, 28), torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="num_classes=None"):
        m(torch.randn(2, 1, 28, 28), torch.tensor([1, 2]), class_labels=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="context_dim=None"):
        m(torch.randn(2, 1, 28, 28), torch.tensor([1, 2]), context=torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="match no level"):
        UNet(attention_resolutions=(16,))
    mc = UNet(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, num_classes=3)
    with pytest.raises(ValueError, match=r"-1\.\.2"):
        mc(torch.randn(1, 1, 28, 28), torch.tensor([1]), class_labels=torch.tensor([3]))


def test_unet_names_dtype_and_device_fixes():
    model = UNet(base_channels=8, channel_mults=(1,), num_res_blocks=1)
    t = torch.zeros(1, dtype=torch.long)
    with pytest.raises(TypeError, match="float16"):
        model(torch.zeros(1, 1, 28, 28).half(), t)
    with pytest.raises(ValueError, match="meta"):
        model(torch.zeros(1, 1, 28, 28, device="meta"), t)
