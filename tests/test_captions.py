"""Captioned digits: captions say what the images show, deterministically, with held-out pairs."""

from __future__ import annotations

import itertools

import pytest
import torch

from chapter13 import captions as C
from chapter13.data import load_mnist


@pytest.fixture(scope="module")
def test_set() -> C.CaptionedDigits:
    return C.captioned_digits("test", limit=300, copies=2)


@pytest.fixture(scope="module")
def train_set() -> C.CaptionedDigits:
    return C.captioned_digits("train")


def test_default_caption_and_prompts():
    assert C.default_caption(3) == "a handwritten digit 3"
    assert [C.default_caption(d) for d in range(10)] == [f"a handwritten digit {d}" for d in range(10)]
    assert C.zero_shot_prompts(8) == [
        "a handwritten digit 8",
        "an eight",
        "a picture of an 8",
        "digit 8",
        "an image of the number eight",
    ]


def test_caption_grammar():
    assert C.caption_for(1, template=1) == "a one"
    assert C.caption_for(8, "thick", template=1) == "a thick eight"
    assert C.caption_for(7, "thin", "small", "top left", 1) == "a thin small seven in the top left corner"
    assert C.caption_for(2, "regular", "small", "bottom right", 0) == (
        "a small handwritten digit 2 in the bottom right corner"
    )
    assert C.caption_for(5, "thick", template=4) == "an image of the thick number five"


def test_vocabulary_covers_every_caption():
    words = set()
    for combo, template in itertools.product(C.attribute_combinations(), range(len(C.TEMPLATES))):
        words.update(C.normalize(C.caption_for(*combo, template=template)))
    assert words <= set(C.VOCABULARY)
    assert len(C.VOCABULARY) == len(set(C.VOCABULARY))
    assert C.VOCABULARY[:2] == ("<pad>", "<unk>")
    # every vocabulary word (but the specials) is used, so none has an untrained embedding
    assert set(C.VOCABULARY[2:]) == words
    assert len(C.attribute_combinations()) == 10 * 3 * 5


def test_normalize():
    assert C.normalize("A Thick 3, in the TOP-left corner!") == [
        "a",
        "thick",
        "3",
        "in",
        "the",
        "top",
        "left",
        "corner",
    ]
    assert C.normalize("10") == ["1", "0"]
    with pytest.raises(TypeError, match="must be a str"):
        C.normalize(3)


def test_deterministic(test_set):
    again = C.captioned_digits("test", limit=300, copies=2)
    assert again.captions == test_set.captions
    assert torch.equal(again.images, test_set.images)
    other = C.captioned_digits("test", limit=300, copies=2, seed=1)
    assert other.captions != test_set.captions


def test_shapes_and_range(test_set):
    n = 600
    assert test_set.images.shape == (n, 1, 28, 28)
    assert test_set.images.dtype == torch.float32
    assert test_set.images.min() >= -1 and test_set.images.max() <= 1
    for t in (test_set.labels, test_set.thickness, test_set.size, test_set.position, test_set.source):
        assert t.shape == (n,)
    assert len(test_set.captions) == n
    _, y = load_mnist("test", limit=300)
    assert torch.equal(test_set.labels, y.repeat(2))


def test_captions_state_the_attributes(test_set):
    for i in range(len(test_set)):
        words = C.normalize(test_set.captions[i])
        digit, thickness, size, position = test_set.attributes(i)
        assert str(digit) in words or C.DIGIT_WORDS[digit] in words
        assert ("thin" in words) == (thickness == "thin")
        assert ("thick" in words) == (thickness == "thick")
        assert ("small" in words) == (size == "small")
        if size == "small":
            assert " ".join(words).endswith(f"in the {position} corner")
        else:
            assert "corner" not in words


def test_images_show_the_attributes(test_set):
    """Checked on the pixels, independently of the rendering code."""
    x, _ = load_mnist("test", limit=300)
    original = x[test_set.source]
    ink = (test_set.images > 0).sum(dim=(1, 2, 3)).float()
    ink_original = (original > 0).sum(dim=(1, 2, 3)).float()
    large = test_set.size == 0
    # a plain digit is the MNIST digit unchanged
    plain = large & (test_set.thickness == 0)
    assert plain.any()
    assert torch.allclose(test_set.images[plain], original[plain], atol=1e-6)
    # thick digits have more ink than the original, thin digits less
    assert (ink[large & (test_set.thickness == 2)] > ink_original[large & (test_set.thickness == 2)]).all()
    assert (ink[large & (test_set.thickness == 1)] < ink_original[large & (test_set.thickness == 1)]).all()
    # small digits lie inside their 16x16 corner
    for p, name in enumerate(C.POSITIONS[1:], start=1):
        where = test_set.position == p
        assert where.any()
        rows = slice(0, 16) if name.startswith("top") else slice(12, 28)
        cols = slice(0, 16) if name.endswith("left") else slice(12, 28)
        outside = test_set.images[where].clone()
        outside[..., rows, cols] = -1.0
        assert (outside <= -1 + 1e-6).all(), f"ink outside the {name} corner"


def test_measured_attributes_agree(test_set):
    width = C.stroke_width(test_set.images)
    large = test_set.size == 0
    means = [width[large & (test_set.thickness == k)].mean() for k in range(3)]
    assert means[1] < means[0] < means[2]  # thin < regular < thick
    height = C.ink_extent(test_set.images)
    assert height[test_set.size == 1].max() <= 16
    assert height[large].mean() > 17
    centre = C.ink_centroid(test_set.images)
    small = test_set.size == 1
    top = small & torch.tensor([C.POSITIONS[int(p)].startswith("top") for p in test_set.position])
    assert (centre[top, 0] < 14).all() and (centre[small & ~top, 0] > 14).all()


def test_stroke_width_of_rectangles():
    # a w x l rectangle has area w*l and perimeter 2(w + l): 2A/P = w*l/(w + l)
    for w, length in ((1, 20), (3, 20), (5, 10)):
        image = -torch.ones(1, 1, 28, 28)
        image[..., 2 : 2 + w, 3 : 3 + length] = 1.0
        assert C.stroke_width(image).item() == pytest.approx(w * length / (w + length))
    dot = -torch.ones(1, 1, 5, 5)
    dot[..., 1, 3] = 1.0
    assert C.ink_centroid(dot).tolist() == [[1.0, 3.0]]


def test_held_out_pairs(train_set):
    assert not train_set.held_out_mask().any()
    for attribute, digit in C.HELD_OUT:
        assert not any(
            digit == train_set.attributes(i)[0] and attribute in train_set.attributes(i)
            for i in range(len(train_set))
        )
    test = C.captioned_digits("test")
    held = test.held_out_mask()
    assert 40 < int(held.sum()) < 200
    assert C.is_held_out(4, "thick", "large") and C.is_held_out(2, "regular", "small")
    assert not C.is_held_out(4, "thin", "small")


def test_combination_ids_and_subset(test_set):
    ids = test_set.combination_ids()
    combos = C.attribute_combinations()
    assert all(combos[int(ids[i])] == test_set.attributes(i) for i in range(0, len(test_set), 37))
    sub = test_set.subset(torch.tensor([5, 2]))
    assert sub.captions == [test_set.captions[5], test_set.captions[2]]
    assert torch.equal(sub.images[1], test_set.images[2])
    assert len(test_set.subset(test_set.labels == 3)) == int((test_set.labels == 3).sum())


def test_bad_input():
    with pytest.raises(ValueError, match="digit must be"):
        C.caption_for(10)
    with pytest.raises(ValueError, match="thickness must be"):
        C.caption_for(3, "bold")
    with pytest.raises(ValueError, match="corner"):
        C.caption_for(3, size="small")
    with pytest.raises(ValueError, match="corner"):
        C.caption_for(3, position="top left")
    with pytest.raises(ValueError, match="template"):
        C.caption_for(3, template=9)
    with pytest.raises(ValueError, match="unknown split"):
        C.captioned_digits("val")
    with pytest.raises(ValueError, match="copies"):
        C.captioned_digits("test", copies=0)
    with pytest.raises(ValueError, match="held-out attribute"):
        C.captioned_digits("test", limit=10, hold_out=[("purple", 3)])
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        C.stroke_width(torch.zeros(28, 28))


def test_render_bad_input():
    x = -torch.ones(2, 1, 28, 28)
    zeros = torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match="small digits a corner"):
        C.render(x, zeros, torch.tensor([1, 0]), zeros)
    with pytest.raises(ValueError, match=r"thickness must have shape \(2,\)"):
        C.render(x, torch.zeros(3, dtype=torch.long), zeros, zeros)


def test_template_choice():
    canonical = C.captioned_digits("test", limit=50, templates=[0])
    assert canonical.captions == canonical.attribute_captions()
    assert (canonical.template == 0).all()
    with pytest.raises(ValueError, match="templates must be"):
        C.captioned_digits("test", limit=5, templates=[7])


# --- bad input (issue 17) ------------------------------------------------------------------------------


def test_attribute_measures_refuse_other_pixel_ranges_and_nan():
    x = load_mnist("test", limit=4)[0]
    for measure in (C.stroke_width, C.ink_centroid, C.ink_extent):
        with pytest.raises(ValueError, match=r"x \* 2 - 1"):
            measure((x + 1) / 2)  # every pixel counted as ink before
        with pytest.raises(TypeError, match=r"127\.5"):
            measure(((x + 1) * 127.5).long())
        with pytest.raises(ValueError, match="NaN"):
            measure(x * float("nan"))
        assert measure(x[:0]).shape[0] == 0  # an empty batch gives empty measurements
    with pytest.raises(ValueError, match="threshold"):
        C.stroke_width(x, float("nan"))


def test_caption_and_data_set_arguments_are_checked():
    with pytest.raises(ValueError, match="template"):
        C.caption_for(3, template=1.5)
    with pytest.raises(ValueError, match="limit"):
        C.captioned_digits("test", limit=-5)
    with pytest.raises(ValueError, match="copies"):
        C.captioned_digits("test", limit=4, copies=2.5)
    with pytest.raises(ValueError, match="templates"):
        C.captioned_digits("test", limit=4, templates=[1.5])  # was truncated to template 1
    with pytest.raises(TypeError, match="seed"):
        C.captioned_digits("test", limit=4, seed=2.5)
    data = C.captioned_digits("test", limit=4)
    with pytest.raises(ValueError, match=r"0\.\.3"):
        data.subset([10**6])
    with pytest.raises(TypeError, match="integer rows"):
        data.subset([1.5])
