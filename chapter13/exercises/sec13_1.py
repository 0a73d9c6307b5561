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


def check_projection_parameters(answer: Any) -> bool:
    """Exercise 13.1.1: weights of ``MultimodalEncoder(visual_dim=128, text_dim=64, joint_dim=32)``
    with bias-free projection heads."""
    if not_attempted(answer):
        return False
    value = as_number(answer)
    if value is None:
        return False
    expected = 128 * 32 + 64 * 32
    if value == expected:
        print(f"Correct: 32 x 128 + 32 x 64 = {expected} weights, one matrix per modality.")
        return True
    if value == 128 * 64 + 64 * 64:
        print("That is the shipped model (joint_dim=64); the question asks for joint_dim=32.")
    elif value == expected + 2 * 32:
        print("That counts a bias per head; CLIP's projections (and ours) have none.")
    else:
        print("Not quite: each head is a (joint_dim x input_dim) matrix; add the two.")
    return False


def check_contrastive_loss(fn: Callable[..., torch.Tensor] | None) -> bool:
    """Exercise 13.1.2: ``fn(image_emb, text_emb, temperature)`` must equal CLIP's symmetric loss."""
    if not_attempted(fn):
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
                print("Not attempted yet: your function returns None; make it return the loss.")
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
    """Exercise 13.1.3: the loss of a batch of ``batch_size`` pairs as tau -> infinity."""
    if not_attempted(answer):
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
    if not_attempted(answer):
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
