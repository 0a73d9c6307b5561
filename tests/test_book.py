"""chapter13.book holds the chapter's listings as printed, and every erratum it states is true.

Two kinds of check:

- verbatim: the listings of all six modules, read in order, are the printed code blocks line for line
  (``printed_listings.txt``, itself checked against the chapter's text where it is at hand); a line
  tagged ``# ch13: completed`` must start with the printed (cut-off) line, one tagged ``# ch13: added``
  is ours and skipped;
- errata: each ``Erratum`` is shown by running the printed code (one test per finding below).
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from chapter13 import book
from chapter13.book import sec13_1, sec13_2, sec13_3, sec13_4, sec13_5, sec13_6

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT.parent / "shared" / "chapter" / "000_9fbdce5825f172ce.txt"
MODULES = (sec13_1, sec13_2, sec13_3, sec13_4, sec13_5, sec13_6)
TAG = re.compile(r"\s*# ch13: (added|completed)\b.*$")
START = "# ch13: added - from here to LISTINGS, the chapter's listings as printed"


def listing_region(module) -> list[tuple[str, str | None]]:
    """(stripped code, tag) for each non-blank line between the module's START marker and LISTINGS."""
    lines = inspect.getsource(module).splitlines()
    begin = lines.index(START) + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("# ch13: added - what running"))
    out = []
    for line in lines[begin:end]:
        match = TAG.search(line)
        code = (line[: match.start()] if match else line).strip()
        tag = match.group(1) if match else None
        if code:
            out.append((code, tag))
        elif tag is None and line.strip():
            out.append((line.strip(), None))
    return out


def test_printed_listings_are_the_chapters_code_blocks():
    if not CHAPTER.is_file():
        pytest.skip(
            f"the chapter's text is not at {CHAPTER}; printed_listings.txt is checked against it there"
        )
    assert book.PRINTED_LISTINGS.read_text(encoding="utf-8") == book.extract_code_blocks(
        CHAPTER.read_text(encoding="utf-8")
    ), "printed_listings.txt is stale: run python -m chapter13.book " + str(CHAPTER)


def test_the_modules_hold_every_printed_line_in_order_and_nothing_else():
    printed = [line.strip() for line in book.printed_lines() if line.strip()]
    ours = [entry for module in MODULES for entry in listing_region(module)]
    i = 0
    for code, tag in ours:
        if tag == "added":
            continue
        assert i < len(printed), f"{code!r} is not in the print (the modules hold more than the chapter)"
        if tag == "completed":
            assert code.startswith(printed[i]) and code != printed[i], (
                f"a completed line must extend the printed one:\n print: {printed[i]!r}\n ours:  {code!r}"
            )
        else:
            assert code == printed[i], f"not as printed:\n print: {printed[i]!r}\n ours:  {code!r}"
        i += 1
    assert i == len(printed), f"printed lines missing from chapter13.book from {printed[i]!r} on"


def test_every_change_is_marked_and_explained():
    for module in MODULES:
        for code, tag in listing_region(module):
            if tag is not None:
                line = next(raw for raw in inspect.getsource(module).splitlines() if code in raw)
                assert len(line.split("# ch13:")[1].split("-", 1)[-1].strip()) > 10, f"say why: {line}"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_listings_and_errata_name_real_things(module):
    source = inspect.getsource(module)
    region = source[source.index(START) :]
    for name, section in module.LISTINGS.items():
        obj = getattr(module, name)
        assert inspect.getsource(obj).strip() in region, f"{name} is not one of the printed listings"
        assert section.startswith(module.__name__[-4:].replace("_", "."))
    assert module.ERRATA, f"{module.__name__} has no errata (say where the book is right, too)"
    for erratum in module.ERRATA:
        assert erratum.listing in module.LISTINGS, erratum
        assert (ROOT / "notebooks" / f"{erratum.notebook}.ipynb").is_file(), erratum.notebook
        parts = erratum.package.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
                break
            except ImportError:
                continue
        for part in parts[cut:]:
            obj = getattr(obj, part)
    assert book.all_errata()[0].section == "13.1.1"
    table = book.errata_table(module.ERRATA).splitlines()
    assert len(table) == 2 + len(module.ERRATA) and all(line.count(" | ") == 4 for line in table[2:])
    with pytest.raises(ValueError, match="kind must be one of"):
        book.Erratum("13.1", "x", "wrong", "", "", "", "")


# --- 13.1 -------------------------------------------------------------------------------------------


def test_13_1_encoder_count_and_loss_agree_with_the_package():
    from chapter13 import multimodal

    encoder = sec13_1.MultimodalEncoder(128, 64, 32)
    assert sum(p.numel() for p in encoder.parameters()) == 16_576
    v, t = encoder(torch.randn(5, 128), torch.randn(5, 64))
    torch.testing.assert_close(torch.cat([v, t]).norm(dim=-1), torch.ones(10))
    g = torch.Generator().manual_seed(3)
    a = F.normalize(torch.randn(6, 8, generator=g), dim=-1)
    b = F.normalize(torch.randn(6, 8, generator=g), dim=-1)
    assert sec13_1.contrastive_loss(a, b).item() == pytest.approx(
        multimodal.contrastive_loss(a, b).item(), rel=1e-6
    )
    src = inspect.getsource(sec13_1.contrastive_loss)
    assert "device=visual_emb.device" in src  # the book creates its labels on the right device
    with pytest.raises((RuntimeError, ValueError, IndexError)):
        sec13_1.contrastive_loss(a, b[:4])  # no message of its own


# --- 13.2 -------------------------------------------------------------------------------------------


def test_13_2_1_forward_diffusion_uses_alpha_not_alpha_bar():
    scheduler = sec13_6.DiffusionScheduler()
    x0 = torch.rand(64, 1, 28, 28) * 2 - 1
    torch.manual_seed(0)
    x_t, eps = sec13_2.forward_diffusion(x0, 999, scheduler)
    torch.testing.assert_close(x_t, math.sqrt(0.98) * x0 + math.sqrt(0.02) * eps)
    corr = torch.corrcoef(torch.stack([x_t.flatten(), x0.flatten()]))[0, 1]
    assert corr > 0.95  # "x_T" is still the image
    assert scheduler.alphas_cumprod[999] < 1e-4  # where it should be pure noise


def test_13_2_1_forward_diffusion_breaks_on_a_batch_of_timesteps():
    scheduler = sec13_6.DiffusionScheduler()
    with pytest.raises(
        RuntimeError, match=r"must match the size of tensor b \(28\) at non-singleton dimension 3"
    ):
        sec13_2.forward_diffusion(torch.rand(4, 1, 28, 28), torch.tensor([1, 2, 3, 999]), scheduler)
    t = torch.arange(0, 1000, 36)[:28]  # 28 timesteps for 28 images of width 28: runs, silently wrong
    x0 = torch.ones(28, 1, 28, 28)
    torch.manual_seed(0)
    x_t, eps = sec13_2.forward_diffusion(x0, t, scheduler)
    a = scheduler.alphas[t]
    torch.testing.assert_close(x_t[0, 0, 0], a.sqrt() + (1 - a).sqrt() * eps[0, 0, 0])  # column j gets t_j


def test_13_2_2_training_loss_fails_on_a_batch():
    zero = lambda x, t: torch.zeros_like(x)
    with pytest.raises(RuntimeError, match="must match the size"):
        sec13_2.diffusion_training_loss(zero, torch.rand(8, 1, 28, 28), sec13_6.DiffusionScheduler())
    assert sec13_2.diffusion_training_loss(zero, torch.rand(1, 1, 28, 28), sec13_6.DiffusionScheduler()) > 0


def gaussian_oracle(scheduler, std):
    """The exact ε-prediction for data N(0, std² I): E[ε | x_t] = sqrt(1-ᾱ) x_t / (ᾱ std² + 1 - ᾱ)."""

    def model(x, t):
        a = scheduler.alphas_cumprod[t].view(-1, *([1] * (x.dim() - 1)))
        return (1 - a).sqrt() * x / (a * std**2 + 1 - a)

    return model


def test_13_2_3_sample_collapses_even_with_the_exact_model():
    scheduler = sec13_6.DiffusionScheduler()
    oracle = gaussian_oracle(scheduler, 0.5)
    torch.manual_seed(0)
    book_std = sec13_2.sample(oracle, scheduler, (2048, 2), "cpu").std().item()
    torch.manual_seed(0)
    lab_std = (sec13_6.sample_from_model(oracle, scheduler, (2048, 2)) * 2 - 1).std().item()
    assert book_std < 0.05  # 13.2.3: the spread collapses
    assert 0.45 < lab_std < 0.52  # 13.6 at its default: DDPM Algorithm 2 (the clamp trims the tails)
    coef2 = (1 - scheduler.alphas) / torch.sqrt(1 - scheduler.alphas)
    right = scheduler.betas / torch.sqrt(1 - scheduler.alphas_cumprod)
    assert (coef2 / right)[999] == pytest.approx(math.sqrt(1 / 0.02), rel=1e-3)


def test_13_2_4_simple_unet_raw_timestep_and_no_skips():
    from chapter13.unet import UNet

    torch.manual_seed(0)
    net = sec13_2.SimpleUNet(channels=1)
    assert net(torch.randn(2, 1, 28, 28), torch.tensor([1, 999])).shape == (2, 1, 28, 28)
    t = torch.arange(1, 1000)
    with torch.no_grad():
        emb = net.time_embed(t.unsqueeze(-1).float())
        late = emb[99:] - emb[99:].mean(dim=0)
        s = torch.linalg.svdvals(late)
        ours = UNet(base_channels=16).time_embed(t)[99:]
        s_ours = torch.linalg.svdvals(ours - ours.mean(dim=0))
    assert s[1] / s[0] < 1e-3 and s_ours[1] / s_ours[0] > 0.1
    assert emb[-1].norm() > 100 * emb[0].norm()
    # no skip connections: the output depends on the input only through the 7 x 7 bottleneck
    seen = []
    net.mid_conv1.register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    net.up1.register_forward_pre_hook(lambda m, i: seen.append(i[0].shape))
    net(torch.randn(1, 1, 28, 28), torch.tensor([5]))
    assert seen == [(1, 256, 7, 7), (1, 256, 7, 7)]
    assert "cat" not in inspect.getsource(sec13_2.SimpleUNet.forward)


# --- 13.3 -------------------------------------------------------------------------------------------


def test_13_3_2_guidance_formula_is_right_and_two_passes():
    calls = []

    def model(x, t, emb):
        calls.append(emb.abs().sum().item())
        return x * 0 + emb.mean()

    x, t, emb = torch.zeros(2, 1, 4, 4), torch.tensor([3, 4]), torch.full((2, 5, 8), 2.0)
    out = sec13_3.classifier_free_guidance(model, x, t, emb, guidance_scale=7.5)
    torch.testing.assert_close(out, torch.full_like(x, 0 + 7.5 * (2.0 - 0)))  # ε_u + s (ε_c - ε_u)
    assert calls == [0.0, 160.0]  # the null is zeros, then the text; two passes


def test_13_3_3_latent_diffusion_is_an_outline():
    with pytest.raises(NameError, match="VAEEncoder"):
        sec13_3.LatentDiffusionModel()
    model = object.__new__(sec13_3.LatentDiffusionModel)
    model.text_encoder = lambda text: torch.zeros(1, 4)
    with pytest.raises(AttributeError, match="diffusion_step"):
        model.generate("a 3")
    visited = []
    model.diffusion_step = lambda latent, t, emb: visited.append(t) or latent
    model.vae_decoder = lambda z: z
    assert model.generate("a 3").shape == (1, 4, 64, 64)
    assert visited == list(range(49, -1, -1))  # only the last 50 of a 1000-step schedule


def test_13_3_4_cross_attention_groupnorm_and_scale():
    with pytest.raises(ValueError, match=r"num_channels \(48\) must be divisible by num_groups \(32\)"):
        sec13_3.CrossAttentionBlock(48, text_dim=32)
    torch.manual_seed(0)
    block = sec13_3.CrossAttentionBlock(64, text_dim=32)
    x, text = torch.randn(2, 64, 4, 4), torch.randn(2, 5, 32)
    h = block.norm(x).reshape(2, 64, -1).transpose(1, 2)
    ref = F.scaled_dot_product_attention(block.q(h), block.k(text), block.v(text))
    ref = block.proj_out(ref).transpose(1, 2).reshape(2, 64, 4, 4) + x
    torch.testing.assert_close(block(x, text), ref, rtol=1e-5, atol=1e-5)


# --- 13.4 -------------------------------------------------------------------------------------------


def test_13_4_outlines_and_the_consistency_loss():
    from chapter13.temporal import consistency_loss

    video, audio = sec13_4.VideoUNet(), sec13_4.AudioDiffusion()
    assert [sum(p.numel() for p in m.parameters()) for m in video.children()] == [5_248, 221_312]
    assert [sum(p.numel() for p in m.parameters()) for m in audio.children()] == [256, 24_704]
    with pytest.raises(NotImplementedError, match="elides"):
        video(torch.randn(1, 3, 4, 8, 8), torch.tensor([1]), None)
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        audio(torch.randn(1, 1, 64))
    pred, target = torch.randn(2, 1, 8, 16, 16), torch.randn(2, 1, 8, 16, 16)
    torch.testing.assert_close(sec13_4.consistency_loss(pred, target), consistency_loss(pred, target))


# --- 13.5 -------------------------------------------------------------------------------------------


def test_13_5_binding_and_hierarchy_fail_as_stated():
    printed = book.PRINTED_LISTINGS.read_text(encoding="utf-8")
    assert "semantic_congruence)\n" in printed  # the print has no colon
    with pytest.raises(TypeError):
        sec13_5.simulate_cross_modal_binding("ga", "ba", 0.5)
    assert sec13_5.simulate_cross_modal_binding(2.0, 0.0, 0.5) == "da"
    assert sec13_5.simulate_cross_modal_binding(0.0, 2.0, 0.5) == "da"  # the reverse pairing too
    assert sec13_5.simulate_cross_modal_binding(2.0, 0.0, 1.0) == pytest.approx(0.8)  # 0.4 * 2, fixed
    assert sec13_5.simulate_cross_modal_binding(2.0, 0.0, 0.2) == pytest.approx(0.16)  # 0.4 * 0.2 * 2
    model = sec13_5.hierarchical_sensory_model()
    assert sum(p.numel() for p in model.parameters()) == 8_765_066
    assert sum(p.numel() for p in model[9].parameters()) == 8_389_120
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    for shape in [(1, 1, 28, 28), (1, 3, 28, 28)]:
        with pytest.raises(RuntimeError):
            model(torch.zeros(shape))


# --- 13.6 -------------------------------------------------------------------------------------------


def test_13_6_scheduler_matches_the_package():
    from chapter13.diffusion import NoiseSchedule

    ours, lab = NoiseSchedule.linear(1000), sec13_6.DiffusionScheduler()
    torch.testing.assert_close(lab.alphas_cumprod.double(), ours.alpha_bars, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(
        lab.posterior_variance[1:].double(), ours.posterior_variance[1:], rtol=1e-3, atol=1e-8
    )


def test_13_6_simple_unet_fails_as_printed_and_attached():
    source = book.PRINTED_LISTINGS.read_text(encoding="utf-8")
    assert "\ndef forward(self, x, t):\n" in source  # column 0: outside the class in print
    assert sec13_6.SimpleUNet.forward is sec13_6.forward  # attached by our marked line
    with pytest.raises(RuntimeError, match=r"tensor a \(128\) must match the size of tensor b \(64\)"):
        sec13_6.SimpleUNet()(torch.randn(2, 1, 28, 28), torch.tensor([1, 2]))


class TimeIgnoringConv(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 1)

    def forward(self, x, t):
        return self.conv(x)


def test_13_6_training_loop_fails_on_labelled_batches():
    images = torch.rand(8, 1, 28, 28)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, torch.zeros(8)), batch_size=4)
    scheduler = sec13_6.DiffusionScheduler()
    zero = TimeIgnoringConv()
    with pytest.raises(AttributeError, match="'list' object has no attribute 'to'"):
        sec13_6.train_diffusion_model(zero, loader, scheduler, epochs=1)
    images_only = torch.utils.data.DataLoader(images, batch_size=4)
    assert sec13_6.train_diffusion_model(zero, images_only, scheduler, epochs=1) is zero  # the step is right


def test_13_6_sampler_right_at_1000_steps_wrong_when_skipping():
    scheduler = sec13_6.DiffusionScheduler()
    oracle = gaussian_oracle(scheduler, 0.25)  # narrow, so the clamp to [-1, 1] does not matter
    visited = []
    recording = lambda x, t: visited.append(int(t[0])) or oracle(x, t)
    torch.manual_seed(0)
    full = sec13_6.sample_from_model(recording, scheduler, (4096, 2)) * 2 - 1
    assert full.std().item() == pytest.approx(0.25, abs=0.015) and len(visited) == 1000
    visited.clear()
    torch.manual_seed(0)
    fifty = sec13_6.sample_from_model(recording, scheduler, (4096, 2), steps=50) * 2 - 1
    assert visited[0] == 980 and visited[-1] == 0 and len(visited) == 50
    assert fifty.std().item() > 0.45  # still noisy: one step's worth of noise removed per visit


def test_the_extract_command(tmp_path, monkeypatch, capsys):
    from chapter13.book import __main__ as command

    chapter = tmp_path / "chapter.txt"
    chapter.write_text(
        "Text\n```\n\ndef f():  \n    return 1\n\n```\nMore\n```python\nx = 2\n```\n", encoding="utf-8"
    )
    monkeypatch.setattr(command, "PRINTED_LISTINGS", tmp_path / "out.txt")
    command.main([str(chapter)])
    assert (tmp_path / "out.txt").read_text(encoding="utf-8") == (
        "# --- listing 1 (line 3)\ndef f():\n    return 1\n# --- listing 2 (line 10)\nx = 2\n"
    )
    with pytest.raises(SystemExit):
        command.main([str(tmp_path / "missing.txt")])
    assert "is not a file" in capsys.readouterr().err
