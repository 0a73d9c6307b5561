"""Self-checks for the exercises of notebook 13.1 (multimodal foundations).

Each ``check_*`` prints what is wrong (or "not attempted yet" for ``None``) and returns False, or
prints a confirmation and returns True. None of them raises on a student's answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from chapter13.exercises import as_number, not_attempted
from chapter13.multimodal import contrastive_loss, recall_at_k

RECALL_EXERCISE_SIMILARITY = torch.tensor(
    [
        [0.82, 0.10, 0.35, 0.05],
        [0.20, 0.41, 0.64, 0.12],
        [0.15, 0.30, 0.77, 0.02],
        [0.58, 0.11, 0.09, 0.49],
    ]
)
"""Cosine similarities of 4 images (rows) with their 4 captions (columns); caption i belongs to image i."""


ENCODERS = ("chapter", "package")
"""Whose ``MultimodalEncoder`` Exercise 13.1.1 counts: the chapter's listing (two-layer MLP heads with
biases, :mod:`chapter13.book.sec13_1`) or the package's (one bias-free Linear per modality, as CLIP)."""


def encoder_parameters(visual_dim: int, text_dim: int, joint_dim: int, encoder: str = "chapter") -> int:
    """Parameters of ``MultimodalEncoder(visual_dim, text_dim, joint_dim)``.

    ``"chapter"`` (13.1.1 as printed): per modality ``Linear(d, 2 j) -> ReLU -> Linear(2 j, j)``, each
    Linear with its bias: ``d * 2j + 2j + 2j * j + j``. ``"package"``
    (:class:`chapter13.multimodal.MultimodalEncoder`): one bias-free ``Linear(d, j)``: ``d * j``.
    """
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
    hidden = 2 * joint_dim
    if encoder == "chapter":
        return sum(d * hidden + hidden + hidden * joint_dim + joint_dim for d in (visual_dim, text_dim))
    return (visual_dim + text_dim) * joint_dim


def check_projection_parameters(answer: Any, encoder: str = "chapter") -> bool:
    """Exercise 13.1.1: the parameter count of ``MultimodalEncoder(visual_dim=128, text_dim=64,
    joint_dim=32)``: the chapter's listing (``encoder="chapter"``, 16,576) or the package's bias-free
    CLIP-style heads (``encoder="package"``, 6,144)."""
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
    if encoder == "chapter":
        hint = (
            "count the parameters of the chapter's MultimodalEncoder(128, 64, 32) as printed above. "
            "Each head is Linear(input_dim, 2 * joint_dim) -> ReLU -> Linear(2 * joint_dim, joint_dim), "
            "and a Linear(a, b) holds a * b weights plus b biases; add the four Linears."
        )
    else:
        hint = (
            "count the parameters of the package's mm.MultimodalEncoder(128, 64, 32): one "
            "Linear(input_dim, joint_dim, bias=False) per modality, i.e. one joint_dim x input_dim matrix each."
        )
    if not_attempted(answer, hint):
        return False
    value = as_number(answer)
    if value is None:
        return False
    dims = (128, 64, 32)
    expected = encoder_parameters(*dims, encoder)
    chapter, package = encoder_parameters(*dims, "chapter"), encoder_parameters(*dims, "package")
    if value == expected:
        if encoder == "chapter":
            print(
                f"Correct: visual head 128 x 64 + 64 + 64 x 32 + 32 = 10,336, text head 64 x 64 + 64 + "
                f"64 x 32 + 32 = 6,240; {chapter:,} in all."
            )
        else:
            print(f"Correct: 32 x 128 + 32 x 64 = {package:,} weights, one bias-free matrix per modality.")
        return True
    if encoder == "chapter":
        no_bias = chapter - 2 * (2 * 32 + 32)
        if value == no_bias:
            print("That counts the weights only: each nn.Linear also has a bias of out_features numbers.")
        elif value == package:
            print(
                "That is the package's head (one bias-free Linear per modality, as in CLIP); the chapter's "
                "has two Linears per modality, with a hidden width of 2 * joint_dim = 64, and biases."
            )
        elif value == encoder_parameters(128, 64, 64, "chapter"):
            print("That is joint_dim=64; the question asks for joint_dim=32 (hidden width 64).")
        else:
            print(
                "Not quite: per modality Linear(d, 64) has d * 64 + 64 parameters and Linear(64, 32) has "
                "64 * 32 + 32; do it for d = 128 and d = 64 and add."
            )
        return False
    if value == chapter:
        print(
            "That is the chapter's encoder (MLP heads with biases); the package's is one Linear per modality."
        )
    elif value == package + 2 * 32:
        print("That counts a bias per head; CLIP's projections (and the package's) have none.")
    elif value == encoder_parameters(128, 64, 64, "package"):
        print("That is the shipped model (joint_dim=64); the question asks for joint_dim=32.")
    else:
        print("Not quite: each head is a (joint_dim x input_dim) matrix; add the two.")
    return False


def check_contrastive_loss(fn: Callable[..., torch.Tensor] | None) -> bool:
    """Exercise 13.1.2: ``fn(image_emb, text_emb, temperature)`` must equal CLIP's symmetric loss."""
    if not_attempted(
        fn, "define my_contrastive_loss(image_emb, text_emb, temperature) and pass the function."
    ):
        return False
    if not callable(fn):
        print(f"Expected a function fn(image_emb, text_emb, temperature), got {type(fn).__name__}.")
        return False
    g = torch.Generator().manual_seed(13)
    for batch, tau in ((2, 0.5), (5, 0.07), (8, 1.0)):
        a = torch.nn.functional.normalize(torch.randn(batch, 6, generator=g), dim=-1)
        b = torch.nn.functional.normalize(torch.randn(batch, 6, generator=g), dim=-1)
        expected = contrastive_loss(a, b, temperature=tau).item()
        try:
            out = fn(a, b, tau)
            if out is None:
                print(
                    "Not attempted yet: your function returns None. Return the loss: logits = "
                    "image_emb @ text_emb.T / temperature, targets = torch.arange(B), and the mean of "
                    "F.cross_entropy over the rows (logits) and over the columns (logits.T)."
                )
                return False
            got = float(out)
        except Exception as error:  # the student's code may raise anything
            print(f"Your function raised {type(error).__name__}: {error}")
            return False
        if not math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-6):
            one_way = torch.nn.functional.cross_entropy(a @ b.T / tau, torch.arange(batch)).item()
            hint = (
                " That is only the image->text direction; average it with the text->image one."
                if math.isclose(got, one_way, rel_tol=1e-4)
                else " Check the division by the temperature and that the targets are arange(B)."
            )
            print(f"For B={batch}, tau={tau} your loss is {got:.5f}, expected {expected:.5f}.{hint}")
            return False
    print("Correct: your loss matches CLIP's symmetric cross-entropy on three batches.")
    return True


def check_high_temperature_loss(answer: Any, batch_size: int = 8) -> bool:
    """The temperature exercise (beyond the chapter, after 13.1.2): the loss of a batch of
    ``batch_size`` pairs as tau -> infinity."""
    hint = (
        f"as tau grows, every logit s_ij / tau goes to 0. What is the softmax of {batch_size} equal logits, "
        "and the cross-entropy -log p of the matching pair under it? Give the number (the widget's loss "
        "at the largest tau comes close)."
    )
    if not_attempted(answer, hint):
        return False
    value = as_number(answer)
    if value is None:
        return False
    expected = math.log(batch_size)
    if math.isclose(value, expected, rel_tol=1e-3):
        print(
            f"Correct: every softmax becomes uniform, so each cross-entropy is log {batch_size} = {expected:.4f}."
        )
        return True
    if value == 0:
        print("That is the tau -> 0 limit for a perfectly aligned batch; think of a uniform softmax instead.")
    else:
        print(f"Not quite: with all logits equal, what is -log(1/B) for B = {batch_size}?")
    return False


def check_recall_at_1(answer: Any) -> bool:
    """Exercise 13.1.4: image->text Recall@1 of :data:`RECALL_EXERCISE_SIMILARITY`."""
    hint = (
        "for each row (an image), is its diagonal entry (its own caption) the largest in the row? "
        "Recall@1 is the fraction of rows where it is, a number between 0 and 1."
    )
    if not_attempted(answer, hint):
        return False
    value = as_number(answer)
    if value is None:
        return False
    expected = recall_at_k(RECALL_EXERCISE_SIMILARITY, torch.eye(4, dtype=torch.bool), ks=(1,))[1]
    if math.isclose(value, expected, abs_tol=1e-6):
        print(f"Correct: images 0 and 2 rank their own caption first; Recall@1 = {expected}.")
        return True
    if math.isclose(value, expected * 100, abs_tol=1e-4):
        print("Right idea, but give a fraction between 0 and 1, not a percentage.")
    else:
        print("Not quite: for each row, is the diagonal entry the largest in its row? Count and divide by 4.")
    return False
