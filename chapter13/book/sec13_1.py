"""Section 13.1 as printed: ``MultimodalEncoder`` (13.1.1) and ``contrastive_loss`` (13.1.2).

Both listings are right. ``MultimodalEncoder`` projects each modality through a two-layer MLP with
biases and L2-normalises; ``contrastive_loss`` is CLIP's symmetric cross-entropy (Radford et al.
2021, Fig. 3), with its targets created on the embeddings' device. What the package adds is listed in
``ERRATA`` (a learned temperature, input checks); the notebook ``13.1-multimodal-foundations`` runs
both next to :mod:`chapter13.multimodal`.
"""

from chapter13.book.erratum import Erratum  # ch13: added - for the notes at the end

# ch13: added - from here to LISTINGS, the chapter's listings as printed

import torch
import torch.nn as nn

class MultimodalEncoder(nn.Module):
    def __init__(self, visual_dim=2048, text_dim=768, joint_dim=512):
        super().__init__()
        # Visual encoder projection
        self.visual_encoder = nn.Sequential(
            nn.Linear(visual_dim, joint_dim*2),
            nn.ReLU(),
            nn.Linear(joint_dim*2, joint_dim)
        )

        # Text encoder projection
        self.text_encoder = nn.Sequential(
            nn.Linear(text_dim, joint_dim*2),
            nn.ReLU(),
            nn.Linear(joint_dim*2, joint_dim)
        )

    def forward(self, visual_features, text_features):
        # Project both modalities to same dimension
        visual_emb = self.visual_encoder(visual_features)
        text_emb = self.text_encoder(text_features)

        # Normalize embeddings for cosine similarity
        visual_emb = visual_emb / visual_emb.norm(dim=-1, keepdim=True)
        text_emb = text_emb / text_emb.norm(dim=-1, keepdim=True)

        return visual_emb, text_emb


def contrastive_loss(visual_emb, text_emb, temperature=0.07):
    """
    Compute contrastive loss between visual and text embeddings
    """
    # Compute similarities between all possible image-text pairs
    logits = torch.matmul(visual_emb, text_emb.t()) / temperature

    # Labels: diagonal elements are the matching pairs (= True pairs)
    labels = torch.arange(len(visual_emb), device=visual_emb.device)

    # Compute cross entropy loss in both directions
    loss_i = nn.CrossEntropyLoss()(logits, labels)
    loss_t = nn.CrossEntropyLoss()(logits.t(), labels)


    # Average both directions
    return (loss_i + loss_t) / 2.0


# ch13: added - what running the listings above shows (chapter13.book.Erratum)

LISTINGS = {"MultimodalEncoder": "13.1.1", "contrastive_loss": "13.1.2"}

ERRATA = (
    Erratum(
        section="13.1.1",
        listing="MultimodalEncoder",
        kind="correct",
        finding="Two towers, each Linear -> ReLU -> Linear with biases, L2-normalised outputs; for "
        "(128, 64, 32) it has 16,576 parameters.",
        why="A nonlinear projection head on each side and unit-length embeddings, so that the dot product "
        "is the cosine similarity CLIP's loss needs. CLIP itself uses one linear, bias-free projection per "
        "encoder (Radford et al. 2021, Fig. 3); the MLP head is SimCLR's choice (Chen et al. 2020). "
        "Either works; the package's TinyCLIP follows CLIP.",
        package="chapter13.multimodal.MultimodalEncoder",
        notebook="13.1-multimodal-foundations",
    ),
    Erratum(
        section="13.1.2",
        listing="contrastive_loss",
        kind="correct",
        finding="On unit-length embeddings it gives the package's loss to float precision, on any device "
        "(its labels are created with device=visual_emb.device).",
        why="The symmetric InfoNCE of CLIP (Radford et al. 2021, Fig. 3): cross-entropy over rows "
        "(image -> text) and columns (text -> image) of the similarity matrix, averaged.",
        package="chapter13.multimodal.contrastive_loss",
        notebook="13.1-multimodal-foundations",
    ),
    Erratum(
        section="13.1.2",
        listing="contrastive_loss",
        kind="simplification",
        finding="The temperature is a fixed argument (0.07), and nothing is checked: 8 images with 5 "
        "captions raise IndexError ('Target 5 is out of bounds'), 5 with 8 a cross_entropy batch-size "
        "ValueError; neither says what is wrong.",
        why="CLIP learns the temperature as a log logit scale initialised at log(1/0.07) and clipped at "
        "100 (Radford et al. 2021, Sec. 2.5); the notebook's 'Beyond the chapter: the temperature' shows "
        "what a fixed one costs.",
        package="chapter13.multimodal.TinyCLIP",
        notebook="13.1-multimodal-foundations",
    ),
)
