"""Tiny CLIP: the contrastive loss against hand-computed cases, the tokenizer, the towers, retrieval."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from chapter13 import multimodal as M
from chapter13.captions import TEMPLATES, attribute_combinations, caption_for, captioned_digits, normalize
from chapter13.recipes import clip as recipe
from chapter13.train import TrainResult


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are tiny: one thread is as fast, and much faster when the cores are shared."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def unit(*rows: tuple[float, ...]) -> torch.Tensor:
    return F.normalize(torch.tensor(rows, dtype=torch.float64), dim=-1)


# --- the loss -------------------------------------------------------------------------------------------


def test_loss_two_pairs_by_hand():
    # S = [[1, 0.6], [0, 0.8]], tau = 0.5, so logits = 2 S.
    # rows (image -> text):  -log softmax([2, 1.2])[0] = log(1 + e^-0.8); -log softmax([0, 1.6])[1] = log(1 + e^-1.6)
    # cols (text -> image):  -log softmax([2, 0])[0]   = log(1 + e^-2);   -log softmax([1.2, 1.6])[1] = log(1 + e^-0.4)
    images = unit((1.0, 0.0), (0.0, 1.0))
    texts = unit((1.0, 0.0), (0.6, 0.8))
    rows = (math.log(1 + math.exp(-0.8)) + math.log(1 + math.exp(-1.6))) / 2
    cols = (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(-0.4))) / 2
    expected = (rows + cols) / 2
    assert M.contrastive_loss(images, texts, temperature=0.5).item() == pytest.approx(expected, rel=1e-12)


def test_loss_three_pairs_by_hand():
    images = unit((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.6, 0.8))
    texts = unit((0.8, 0.6, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    s = [[sum(a * b for a, b in zip(u, v, strict=True)) for v in texts.tolist()] for u in images.tolist()]
    tau = 0.2

    def nll(logits: list[float], i: int) -> float:
        return -logits[i] + math.log(sum(math.exp(z) for z in logits))

    rows = sum(nll([s[i][j] / tau for j in range(3)], i) for i in range(3)) / 3
    cols = sum(nll([s[j][i] / tau for j in range(3)], i) for i in range(3)) / 3
    assert M.contrastive_loss(images, texts, temperature=tau).item() == pytest.approx(
        (rows + cols) / 2, rel=1e-12
    )


def test_loss_symmetric_and_permutation_invariant():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    loss = M.contrastive_loss(a, b)
    assert M.contrastive_loss(b, a).item() == pytest.approx(loss.item(), rel=1e-6)
    perm = torch.randperm(6, generator=g)
    assert M.contrastive_loss(a[perm], b[perm]).item() == pytest.approx(loss.item(), rel=1e-6)
    # un-normalised inputs are normalised: scaling a row changes nothing
    assert M.contrastive_loss(3 * a, b).item() == pytest.approx(loss.item(), rel=1e-6)


def test_loss_limit_small_temperature():
    """As tau -> 0, tau * loss -> 1/2 [mean_i (max_j S_ij - S_ii) + mean_j (max_i S_ij - S_jj)]."""
    g = torch.Generator().manual_seed(1)
    a = F.normalize(torch.randn(5, 4, generator=g, dtype=torch.float64), dim=-1)
    b = F.normalize(torch.randn(5, 4, generator=g, dtype=torch.float64), dim=-1)
    s = a @ b.T
    diag = s.diagonal()
    limit = 0.5 * ((s.max(dim=1).values - diag).mean() + (s.max(dim=0).values - diag).mean())
    assert limit > 0
    tau = 1e-5
    assert (tau * M.contrastive_loss(a, b, temperature=tau)).item() == pytest.approx(limit.item(), rel=1e-3)
    # with matching pairs the loss vanishes as tau -> 0 (and log B at tau -> infinity)
    assert M.contrastive_loss(a, a, temperature=1e-3).item() < 1e-6
    assert M.contrastive_loss(a, b, temperature=1e6).item() == pytest.approx(math.log(5), rel=1e-5)


def test_single_pair_loss_is_zero():
    a = torch.randn(1, 8)
    assert M.contrastive_loss(a, torch.randn(1, 8)).item() == pytest.approx(0.0, abs=1e-7)


def test_learnable_scale_gradient_and_clamp():
    model = M.TinyCLIP()
    assert model.logit_scale.item() == pytest.approx(math.log(1 / 0.07))
    assert model.temperature == pytest.approx(0.07, rel=1e-6)
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    loss = M.contrastive_loss(a, b, logit_scale=model.logit_scale)
    # the chapter's call form gives the same number
    assert M.contrastive_loss(a, b, temperature=0.07).item() == pytest.approx(loss.item(), rel=1e-5)
    loss.backward()
    assert model.logit_scale.grad is not None and model.logit_scale.grad.abs() > 0
    # d loss / d logit_scale = scale * d loss / d scale; check against a finite difference
    h = 1e-3
    with torch.no_grad():
        up = M.contrastive_loss(a, b, logit_scale=model.logit_scale + h)
        down = M.contrastive_loss(a, b, logit_scale=model.logit_scale - h)
    assert model.logit_scale.grad.item() == pytest.approx(((up - down) / (2 * h)).item(), rel=1e-2)
    # the clamp: a scale above 100 is used as 100 and gets no gradient
    with torch.no_grad():
        model.logit_scale.fill_(math.log(1000.0))
    assert model.scale().item() == pytest.approx(100.0, rel=1e-6)
    assert model.temperature == pytest.approx(0.01, rel=1e-6)
    model.logit_scale.grad = None
    capped = M.contrastive_loss(a, b, logit_scale=model.logit_scale)
    capped.backward()
    assert model.logit_scale.grad.item() == 0.0
    assert capped.item() == pytest.approx(M.contrastive_loss(a, b, temperature=0.01).item(), rel=1e-5)


def test_loss_bad_input():
    a = torch.randn(4, 8)
    with pytest.raises(ValueError, match="batch sizes differ: 4 images but 3 captions"):
        M.contrastive_loss(a, torch.randn(3, 8))
    with pytest.raises(ValueError, match="embedding sizes differ"):
        M.contrastive_loss(a, torch.randn(4, 7))
    with pytest.raises(ValueError, match="empty batch"):
        M.contrastive_loss(torch.randn(0, 8), torch.randn(0, 8))
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        M.contrastive_loss(torch.randn(8), torch.randn(8))
    with pytest.raises(ValueError, match="positive"):
        M.contrastive_loss(a, a, temperature=0.0)


# --- tokenizer ------------------------------------------------------------------------------------------


def test_tokenizer_round_trip():
    tok = M.Tokenizer()
    texts = [
        caption_for(*c, template=k) for c in attribute_combinations()[::7] for k in range(len(TEMPLATES))
    ]
    ids, mask = tok.encode(texts)
    assert ids.dtype == torch.long and mask.dtype == torch.bool and ids.shape == mask.shape
    assert ids.shape[1] == max(len(normalize(t)) for t in texts)
    assert tok.decode(ids, mask) == texts
    assert (ids[~mask] == 0).all() and (ids[mask] > 1).all()
    assert mask.sum(dim=1).tolist() == [len(normalize(t)) for t in texts]
    # normalisation: case and punctuation do not matter
    assert tok.decode(*tok.encode(["A Thick 3!"])) == ["a thick 3"]
    # the ids are the positions in the fixed vocabulary
    assert tok.encode(["3"])[0].item() == tok.vocabulary.index("3") == 5
    ids, mask = tok.encode(["digit 3"], pad_to=6)
    assert ids.shape == (1, 6) and mask.tolist() == [[True, True, False, False, False, False]]


def test_tokenizer_unknown_words():
    tok = M.Tokenizer()
    with pytest.raises(ValueError, match=r"unknown word\(s\) \['purple', 'giraffe'\]"):
        tok.encode(["a purple 3", "a giraffe", "a purple 4"])
    ids, _ = tok.encode(["a purple 3"], strict=False)
    assert ids.tolist() == [[tok.index["a"], tok.unk_id, tok.index["3"]]]
    assert tok.unknown_words("a purple 3") == ["purple"]


def test_tokenizer_bad_input():
    tok = M.Tokenizer()
    with pytest.raises(ValueError, match="no words"):
        tok.encode(["a 3", "  ?! "])
    with pytest.raises(ValueError, match="no captions"):
        tok.encode([])
    with pytest.raises(ValueError, match="at most 16"):
        tok.encode(["a " * 17])
    with pytest.raises(ValueError, match="shorter than the longest"):
        tok.encode(["a handwritten digit 3"], pad_to=2)
    with pytest.raises(ValueError, match="must start with"):
        M.Tokenizer(["a", "b"])


# --- towers ---------------------------------------------------------------------------------------------


def test_text_encoder_shapes_and_masking():
    torch.manual_seed(0)
    tok, enc = M.Tokenizer(), M.TextEncoder(dim=32, depth=1, heads=4).eval()
    ids, mask = tok.encode(["a thick 3", "a small handwritten digit 7 in the top left corner"])
    tokens, pooled = enc(ids, mask)
    assert tokens.shape == (2, ids.shape[1], 32) and pooled.shape == (2, 32)
    assert (tokens[0, 3:] == 0).all()  # padded positions are zero
    # padding does not change a caption's encoding
    alone_tokens, alone = enc(*tok.encode(["a thick 3"]))
    assert torch.allclose(alone, pooled[:1], atol=1e-5)
    assert torch.allclose(alone_tokens[0], tokens[0, :3], atol=1e-5)
    # pooled is the mean of the real tokens
    assert torch.allclose(pooled[1], tokens[1].mean(dim=0), atol=1e-6)
    # word order matters (positions are embedded)
    _, swapped = enc(*tok.encode(["3 thick a"]))
    assert not torch.allclose(swapped, alone, atol=1e-4)


def test_text_encoder_bad_input():
    enc = M.TextEncoder(dim=32, depth=1)
    ids = torch.ones(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        enc(ids, torch.ones(2, 3))
    with pytest.raises(ValueError, match="empty"):
        enc(ids, torch.tensor([[True, True, True], [False, False, False]]))
    with pytest.raises(ValueError, match="int64"):
        enc(ids.float(), ids.bool())
    with pytest.raises(ValueError, match="divisible"):
        M.TextEncoder(dim=30, heads=4)


def test_image_encoder_and_projection_shapes():
    enc = M.ImageEncoder(width=8, dim=24)
    assert enc(torch.randn(3, 1, 28, 28)).shape == (3, 24)
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        enc(torch.randn(3, 28, 28))
    heads = M.MultimodalEncoder(visual_dim=24, text_dim=16, joint_dim=8)
    image_emb, text_emb = heads(torch.randn(3, 24), torch.randn(5, 16))
    assert image_emb.shape == (3, 8) and text_emb.shape == (5, 8)
    assert torch.allclose(image_emb.norm(dim=-1), torch.ones(3)) and torch.allclose(
        text_emb.norm(dim=-1), torch.ones(5)
    )
    with pytest.raises(ValueError, match="visual_features must be"):
        heads(torch.randn(3, 16), torch.randn(5, 16))
    with pytest.raises(ValueError, match="text_features must be"):
        heads(torch.randn(3, 24), torch.randn(5, 24))
    with pytest.raises(ValueError, match="joint_dim must be a positive int"):
        M.MultimodalEncoder(4, 4, 0)


def test_tiny_clip_forward():
    torch.manual_seed(0)
    model = M.TinyCLIP(image_width=8, image_dim=32, text_dim=32, text_depth=1, joint_dim=16)
    ids, mask = M.Tokenizer().encode(["a handwritten digit 3", "a thin two"])
    image_emb, text_emb = model(torch.randn(2, 1, 28, 28), ids, mask)
    assert image_emb.shape == text_emb.shape == (2, 16)
    assert torch.allclose(text_emb.norm(dim=-1), torch.ones(2), atol=1e-6)


# --- retrieval and zero-shot ----------------------------------------------------------------------------


def test_recall_at_k_by_hand():
    sim = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8], [0.7, 0.6, 0.1]])
    relevant = torch.eye(3, dtype=torch.bool)
    # query 0 ranks item 0 first; query 1 ranks item 1 second; query 2 ranks item 2 third
    assert M.recall_at_k(sim, relevant, ks=(1, 2, 3)) == {
        1: pytest.approx(1 / 3),
        2: pytest.approx(2 / 3),
        3: 1.0,
    }
    several = relevant | torch.tensor([[False, False, False], [False, False, True], [False, False, False]])
    assert M.recall_at_k(sim, several, ks=(1,))[1] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="at least one relevant"):
        M.recall_at_k(sim, torch.zeros(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="must match"):
        M.recall_at_k(sim, relevant[:2])


def test_zero_shot_outputs():
    torch.manual_seed(0)
    model = M.TinyCLIP(image_width=8, image_dim=32, text_dim=32, text_depth=1, joint_dim=16)
    predictions, probs = M.zero_shot_classify(model, torch.randn(7, 1, 28, 28))
    assert predictions.shape == (7,) and probs.shape == (7, 10)
    assert torch.allclose(probs.sum(dim=1), torch.ones(7), atol=1e-5)
    assert len(M.digit_prompts()) == 10 and M.digit_prompts([0])[3] == ["a handwritten digit 3"]
    with pytest.raises(ValueError, match="unknown word"):
        M.zero_shot_classify(model, torch.randn(2, 1, 28, 28), prompts=[["a purple 3"]])


def test_training_lowers_the_loss():
    """A few steps of the real training path (fit) on 64 pairs lower the contrastive loss."""
    from chapter13.captions import captioned_digits

    data = captioned_digits("train", limit=64)
    torch.manual_seed(0)
    model = M.TinyCLIP(image_width=8, image_dim=32, text_dim=32, text_depth=1, joint_dim=16)
    images, ids, mask = recipe.clip_training_tensors(data)
    with torch.no_grad():
        before = M.clip_loss(model, (images, ids, mask)).item()
    torch.set_num_threads(2)  # train_clip(threads=1) must put this back afterwards
    threads = torch.get_num_threads()
    result = recipe.train_clip(
        model, data, steps=30, batch_size=64, lr=3e-3, progress=False, device="cpu", warmup=5, threads=1
    )
    assert torch.get_num_threads() == threads == 2  # restored after training
    assert isinstance(result, TrainResult) and len(result.losses) == 30
    torch.set_num_threads(1)
    with torch.no_grad():
        after = M.clip_loss(result.model, (images, ids, mask)).item()
    assert after < before - 0.5


def test_shipped_checkpoint_quality():
    """The shipped clip-digits checkpoint loads (checksum verified) and classifies >= 90 % zero-shot."""
    from chapter13 import checkpoints
    from chapter13.data import load_mnist

    try:
        checkpoints.entry("clip-digits")
    except checkpoints.CheckpointError:
        pytest.skip("clip-digits not built yet: python -m chapter13.train clip-digits")
    model, _ = recipe.load_clip()
    x, y = load_mnist("test")
    assert M.zero_shot_accuracy(model, x, y) >= 0.90
    tok, encoder = recipe.load_text_encoder()
    tokens, pooled = encoder(
        *tok.encode(["a handwritten digit 3", "a thick small seven in the top left corner"])
    )
    assert tokens.shape == (2, 9, 64) and pooled.shape == (2, 64)
    assert not any(p.requires_grad for p in encoder.parameters())


# --- the temperature widget's pure functions -----------------------------------------------------------


def test_temperature_softmax_numbers():
    from chapter13.widgets.temperature import temperature_softmax

    g = torch.Generator().manual_seed(4)
    a = F.normalize(torch.randn(6, 5, generator=g, dtype=torch.float64), dim=-1)
    b = F.normalize(torch.randn(6, 5, generator=g, dtype=torch.float64), dim=-1)
    s = a @ b.T
    out = temperature_softmax(s, 0.1)
    rows, cols = out["p_image_to_text"], out["p_text_to_image"]
    assert rows.shape == cols.shape == (6, 6)
    assert torch.allclose(torch.from_numpy(rows).sum(dim=1), torch.ones(6, dtype=torch.float64))
    assert torch.allclose(torch.from_numpy(cols).sum(dim=0), torch.ones(6, dtype=torch.float64))
    # row i is exp(s_ij / tau) / sum_k exp(s_ik / tau), written out
    e = torch.exp(s / 0.1)
    assert torch.allclose(torch.from_numpy(rows), e / e.sum(dim=1, keepdim=True))
    assert out["loss"] == pytest.approx(M.contrastive_loss(a, b, temperature=0.1).item(), rel=1e-9)
    assert out["loss"] == pytest.approx((out["loss_i2t"] + out["loss_t2i"]) / 2, rel=1e-12)
    assert temperature_softmax(s, 1e6)["loss"] == pytest.approx(math.log(6), rel=1e-6)
    sharp = temperature_softmax(s, 1e-3)["p_image_to_text"]
    assert (sharp.argmax(axis=1) == s.argmax(dim=1).numpy()).all() and sharp.max(axis=1).min() > 0.99
    with pytest.raises(ValueError, match="square"):
        temperature_softmax(s[:3], 0.1)
    with pytest.raises(ValueError, match="positive"):
        temperature_softmax(s, -1.0)


def test_temperature_figure_updates_in_place():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from chapter13.widgets.temperature import temperature_figure

    s = torch.eye(4) * 0.8 + 0.1
    fig = temperature_figure(s, 0.07, labels=list("abcd"))
    assert len(fig.axes) == 5  # three panels and two colour bars
    assert temperature_figure(s, 0.5, fig=fig) is fig
    assert len(fig.axes) == 5  # drawn again, not drawn twice
    image = fig.axes[1].images[0]  # the image->text softmax
    e = torch.exp(s.double() / 0.5)
    assert torch.allclose(torch.as_tensor(image.get_array()), e / e.sum(dim=1, keepdim=True))
    plt.close(fig)


# --- exercise checkers ----------------------------------------------------------------------------------


def test_exercise_checkers(capsys):
    from chapter13.book import sec13_1 as book
    from chapter13.exercises import sec13_1 as ex

    # the chapter's encoder as printed: per modality Linear(d, 64) -> ReLU -> Linear(64, 32), with biases
    chapter = sum(p.numel() for p in book.MultimodalEncoder(128, 64, 32).parameters())
    package = sum(p.numel() for p in M.MultimodalEncoder(128, 64, 32).parameters())
    assert chapter == ex.encoder_parameters(128, 64, 32) == 16_576
    assert package == ex.encoder_parameters(128, 64, 32, "package") == 32 * 128 + 32 * 64
    for dims in ((12, 10, 8), (2048, 768, 512)):  # the formulas are the modules' counts at any size
        assert ex.encoder_parameters(*dims) == sum(
            p.numel() for p in book.MultimodalEncoder(*dims).parameters()
        )
        assert ex.encoder_parameters(*dims, "package") == sum(
            p.numel() for p in M.MultimodalEncoder(*dims).parameters()
        )
    assert ex.check_projection_parameters(chapter)  # the exercise asks for the chapter's encoder first
    assert ex.check_projection_parameters("16576")
    assert not ex.check_projection_parameters(package)
    assert "the package's head" in capsys.readouterr().out
    assert not ex.check_projection_parameters(chapter - 2 * (64 + 32))  # the biases left out
    assert "weights only" in capsys.readouterr().out
    assert ex.check_projection_parameters(package, encoder="package")  # W_v: (32, 128), W_t: (32, 64)
    assert not ex.check_projection_parameters(chapter, encoder="package")
    assert not ex.check_projection_parameters(package + 2 * 32, encoder="package")
    assert not ex.check_projection_parameters(128 * 64 + 64 * 64, encoder="package")
    for encoder in ex.ENCODERS:
        assert not ex.check_projection_parameters(None, encoder=encoder)
        assert "Not attempted yet: count the parameters" in capsys.readouterr().out
    with pytest.raises(ValueError, match="encoder must be one of"):
        ex.check_projection_parameters(chapter, encoder="clip")

    def reference(image_emb, text_emb, temperature):
        logits = image_emb @ text_emb.T / temperature
        targets = torch.arange(len(logits))
        return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2

    def one_way(image_emb, text_emb, temperature):
        return F.cross_entropy(image_emb @ text_emb.T / temperature, torch.arange(len(image_emb)))

    def broken(image_emb, text_emb, temperature):
        raise RuntimeError("oops")

    assert ex.check_contrastive_loss(reference)
    assert not ex.check_contrastive_loss(one_way)
    assert "only the image->text direction" in capsys.readouterr().out
    assert not ex.check_contrastive_loss(broken)
    assert not ex.check_contrastive_loss(lambda a, b, t: None)
    assert "Return the loss: logits" in capsys.readouterr().out  # the notebook's stub gets a hint
    assert not ex.check_contrastive_loss("not a function")

    assert ex.check_high_temperature_loss(math.log(8))
    assert not ex.check_high_temperature_loss(0.0)
    assert not ex.check_high_temperature_loss("many")
    assert not ex.check_high_temperature_loss(None)
    assert "softmax of 8 equal logits" in capsys.readouterr().out

    # rows 0 and 2 have their maximum on the diagonal, rows 1 and 3 do not: 2 / 4
    assert ex.check_recall_at_1(0.5)
    assert not ex.check_recall_at_1(50)
    assert not ex.check_recall_at_1(0.75)
    assert not ex.check_recall_at_1(None)
    assert "is its diagonal entry" in capsys.readouterr().out


def test_temperature_view_renders_png():
    from chapter13.widgets.temperature import TemperatureView, temperature_widget

    s = torch.eye(3) * 0.9
    view = TemperatureView(s, labels=["a", "b", "c"])
    png = view.render(0.2)
    assert png.startswith(b"\x89PNG")
    e = torch.exp(s.double() / 0.2)
    assert torch.allclose(torch.as_tensor(view.softmax_image.get_array()), e / e.sum(dim=1, keepdim=True))
    assert view.render(0.5) != png and (view.full_draws, view.blits) == (1, 1)  # the update is blitted
    box = temperature_widget(s)
    slider, image, description = box.children
    assert description is box.description
    before = image.value
    slider.value = 1.0
    assert image.value != before  # moving the slider redraws the picture
    assert len(box.timer) == 2  # the first picture and the update, timed by the view's timer
    with pytest.raises(ValueError, match="labels"):
        TemperatureView(s, labels=["a"])


def test_caption_similarity_is_the_cosine_matrix_of_the_pairs():
    from chapter13.captions import captioned_digits

    torch.manual_seed(0)
    model = M.TinyCLIP()
    data = captioned_digits("test").subset(list(range(5)))
    sim = M.caption_similarity(model, data)
    assert sim.shape == (5, 5)
    expected = M.similarity_matrix(M.embed_images(model, data.images), M.embed_texts(model, data.captions))
    torch.testing.assert_close(sim, expected, rtol=1e-5, atol=1e-6)


# --- bad input (issue 17) ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_clip():
    torch.manual_seed(0)
    return M.TinyCLIP(
        image_width=8, image_dim=16, text_dim=16, text_depth=1, text_heads=2, joint_dim=8
    ).eval()


def test_embed_texts_reads_one_string_as_one_caption(tiny_clip):
    one = M.embed_texts(tiny_clip, "a digit 3")  # used to split into characters
    assert one.shape == (1, 8)
    assert torch.allclose(one, M.embed_texts(tiny_clip, ["a digit 3"]))
    with pytest.raises(TypeError, match="list of strings"):
        M.embed_texts(tiny_clip, None)


def test_contrastive_loss_blames_the_embeddings_dtype_not_the_temperature():
    emb = F.normalize(torch.randn(4, 8), dim=-1)
    with pytest.raises(TypeError, match="image_emb must be a floating-point tensor"):
        M.contrastive_loss(emb.long(), emb.long())
    with pytest.raises(TypeError, match="float16"):
        M.contrastive_loss(emb.half(), emb)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_contrastive_loss_refuses_a_non_finite_logit_scale(value):
    emb = F.normalize(torch.randn(4, 8), dim=-1)
    with pytest.raises(ValueError, match="logit_scale"):
        M.contrastive_loss(emb, emb, logit_scale=torch.tensor(value))


def test_scales_and_embeddings_are_checked():
    emb = F.normalize(torch.randn(4, 8), dim=-1)
    with pytest.raises(ValueError, match="NaN"):
        M.contrastive_loss(emb * math.nan, emb)
    with pytest.raises(ValueError, match="max_scale"):
        M.clamped_scale(torch.tensor(1.0), 0.0)  # was "math domain error"
    with pytest.raises(ValueError, match="max_logit_scale"):
        M.TinyCLIP(max_logit_scale=math.inf)
    with pytest.raises(ValueError, match="NaN or infinity"):
        M.symmetric_cross_entropy(torch.eye(3) * math.nan)
    a_float = M.contrastive_loss(emb, emb, logit_scale=2.0)
    assert a_float == M.contrastive_loss(emb, emb, logit_scale=torch.tensor(2.0))


def test_recall_at_k_refuses_empty_nan_and_fractional_k():
    sim, rel = torch.randn(3, 5), torch.eye(3, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match="at least one query"):
        M.recall_at_k(sim[:0], rel[:0])  # was {1: nan, ...}
    with pytest.raises(ValueError, match="NaN"):
        M.recall_at_k(sim * math.nan, rel)
    with pytest.raises(ValueError, match="int >= 1"):
        M.recall_at_k(sim, rel, [2.5])
    with pytest.raises(TypeError, match="tensors"):
        M.recall_at_k(sim.numpy(), rel.numpy())


def test_towers_and_helpers_name_the_fix(tiny_clip):
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    with pytest.raises(TypeError, match="float16"):
        tiny_clip.encode_image(x.half())
    with pytest.raises(ValueError, match="empty batch"):
        M.embed_images(tiny_clip, x[:0])  # was torch.cat of nothing
    with pytest.raises(ValueError, match="batch_size"):
        M.embed_images(tiny_clip, x, batch_size=0)
    ids, mask = M.Tokenizer().encode(["a digit 3"])
    with pytest.raises(ValueError, match="vocabulary"):
        tiny_clip.text_encoder(ids + 1000, mask)
    with pytest.raises(ValueError, match="vocabulary"):
        M.Tokenizer().decode(torch.tensor([[999]]))
    with pytest.raises(TypeError, match="string or a list"):
        M.Tokenizer().encode(5)
    for prompts in ("a zero", ["a zero", "a one"]):
        with pytest.raises(TypeError, match="per class"):
            M.class_embeddings(tiny_clip, prompts)
    accuracy = M.zero_shot_accuracy(tiny_clip, x, [0, 1])  # labels as a list
    assert 0.0 <= accuracy <= 1.0


def test_retrieval_metrics_reports_none_for_a_kind_the_data_lack(tiny_clip):
    seen_only = captioned_digits("train", limit=12)  # the training split holds no held-out pair
    metrics = M.retrieval_metrics(tiny_clip, seen_only)
    assert metrics["i2t_R@1_held_out"] is None and 0.0 <= metrics["i2t_R@1_seen"] <= 1.0
