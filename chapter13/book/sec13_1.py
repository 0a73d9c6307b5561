"""Section 13.1 (multimodal foundations): the chapter's ``MultimodalEncoder`` and ``contrastive_loss``.

Provenance: the printed text of 13.1 was not available when this module was written. These two
listings are reconstructed from the call forms the project's issue quotes from the chapter
(``MultimodalEncoder(visual_dim, text_dim, joint_dim)`` with two projection heads and L2-normalised
outputs; ``contrastive_loss(image_emb, text_emb, temperature=0.07)``) in the standard form of CLIP's
Fig. 3 pseudo-code. Check them against the printed page before quoting them as the book's.

Verdict: for unit-length embeddings the loss below is CLIP's symmetric cross-entropy, and our
:func:`chapter13.multimodal.contrastive_loss` gives the same number (the notebook asserts it). What
the package adds, and why:

- the temperature is a fixed argument here; CLIP *learns* it as a log logit scale initialised to
  log(1/0.07) and clamped at 100 (:class:`chapter13.multimodal.TinyCLIP`, ``logit_scale=...``);
- ``torch.arange(len(logits))`` creates the targets on the CPU, so the listing fails with a device
  mismatch when the embeddings live on a GPU; ours creates them on the logits' device;
- no checks: mismatched batch sizes give a cryptic shape error from ``cross_entropy`` (or, for a
  non-square similarity, a silently wrong loss); ours says what is wrong.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MultimodalEncoder(nn.Module):
    """The chapter's 13.1.1 joint embedding (reconstructed; see the module docstring).

    Correct: two linear projection heads, L2-normalised outputs. The package's version is
    :class:`chapter13.multimodal.MultimodalEncoder` (bias-free projections as in CLIP, input checks).
    """

    def __init__(self, visual_dim, text_dim, joint_dim):
        super().__init__()
        self.visual_proj = nn.Linear(visual_dim, joint_dim)
        self.text_proj = nn.Linear(text_dim, joint_dim)

    def forward(self, visual_features, text_features):
        visual_emb = F.normalize(self.visual_proj(visual_features), dim=-1)
        text_emb = F.normalize(self.text_proj(text_features), dim=-1)
        return visual_emb, text_emb


def contrastive_loss(image_emb, text_emb, temperature=0.07):
    """The chapter's contrastive loss (reconstructed; see the module docstring).

    Correct for unit-length inputs on the CPU; fixed temperature; targets on the CPU (fails on a GPU).
    Use :func:`chapter13.multimodal.contrastive_loss` (same call form, plus ``logit_scale=``).
    """
    logits = torch.matmul(image_emb, text_emb.T) / temperature
    labels = torch.arange(len(logits))
    loss_i2t = F.cross_entropy(logits, labels)
    loss_t2i = F.cross_entropy(logits.T, labels)
    return (loss_i2t + loss_t2i) / 2
